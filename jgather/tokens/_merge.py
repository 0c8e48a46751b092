"""Token merging (ToMe, Bolya et al., 2023): bipartite soft matching and its merge / unmerge.

The matching functions return a :class:`Merge`, a pytree of index arrays; ``merge`` is one
gather of the tokens that stay plus one ``jgather.scatter_reduce`` of the merged-away tokens
into them (ToMe's ``dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce=mode)``,
``include_self=True``), and ``unmerge`` is one gather. The facts followed (the order of the
output tokens, the clamp of ``r``, the protected class and distillation tokens, the modes) are
those of ToMe's ``tome/merge.py`` and are listed in each docstring.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks, _dtypes
from jgather._gather import take_along_dim
from jgather._scatter import Reduction, scatter_reduce
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import (
    argsort_noise,
    inverse_permutation,
    random_permutation,
)
from jgather.masking._placement import batch_sharding, to_batch_sharding

_Fields = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # keep, src, dst, slot


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["keep", "src", "dst", "slot"],
    meta_fields=["r", "num_tokens"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class Merge:
    """Which tokens a matching merges, and where: the result of the matching functions.

    A pytree of index arrays with two static facts, rather than ToMe's pair of closures: it
    passes into and out of ``jax.jit``, ``jax.vmap`` and ``jax.lax.scan`` like any array
    (a closure cannot be an argument or result of a jitted function), it can be stored,
    inspected and reused for another tensor of the same tokens (``merge_wavg`` merges the
    features and the sizes with one matching), and its static ``r`` fixes the output shapes.
    ``merge(m, x)`` and ``unmerge(m, x)`` apply it; ``m.merge`` and ``m.unmerge`` are the
    same functions, and ``merge, unmerge = m`` unpacks it like ToMe's pair.

    The fields are built by the matching functions; every position in them is in range by
    construction, and ``merge`` / ``unmerge`` rely on it (a hand-built ``Merge`` with
    out-of-range positions gives unspecified values).

    Attributes:
      keep: [N, T_out] int32, the position in ``x`` of each output token (ToMe's order).
      src: [N, r] int32, the positions in ``x`` of the tokens merged away.
      dst: [N, r] int32, the output token each of ``src`` is merged into.
      slot: [N, T_un] int32, the output token each input token ends up in (``unmerge`` is
        ``x[slot]``); ``T_un`` is ``num_tokens`` except for the kth matching, which drops
        the tokens past the last whole group of ``k``.
      r: static number of tokens merged away (after ToMe's clamp), ``T_out = num_tokens - r``
        (the kth matching: ``T_un - r``).
      num_tokens: static number of input tokens ``T`` that ``merge`` accepts.
    """

    keep: jax.Array
    src: jax.Array
    dst: jax.Array
    slot: jax.Array
    r: int
    num_tokens: int

    def merge(self, x: jax.Array, mode: Reduction = "mean") -> jax.Array:
        """``merge(self, x, mode)``; see :func:`merge`."""
        return merge(self, x, mode)

    def unmerge(self, x: jax.Array) -> jax.Array:
        """``unmerge(self, x)``; see :func:`unmerge`."""
        return unmerge(self, x)

    def __iter__(self) -> Iterator[Callable[..., jax.Array]]:
        # ``merge, unmerge = bipartite_soft_matching(...)``, as with ToMe's pair of closures.
        return iter((self.merge, self.unmerge))


# ----------------------------------------------------------------------------------------------
# Argument checks.


def _check_tokens(fn: str, name: str, x: Any) -> jax.Array:
    x = _checks.as_array(fn, name, x, hint="pass tokens [N, T, C]")
    if x.ndim != 3:
        raise ValueError(
            f"{fn}: {name} must have shape [N, T, C] (3 dims), got shape {tuple(x.shape)}; add "
            f"a batch dim with {name}[None], or jax.vmap over extra leading dims."
        )
    return x


def _check_metric(fn: str, metric: Any) -> jax.Array:
    metric = _check_tokens(fn, "metric", metric)
    if not jnp.issubdtype(metric.dtype, jnp.floating):
        raise TypeError(f"{fn}: metric must be floating (e.g. the keys), got {metric.dtype}.")
    return metric


def _check_merge(fn: str, m: Any) -> Merge:
    if not isinstance(m, Merge):
        raise TypeError(
            f"{fn}: expected a jgather.tokens.Merge (from bipartite_soft_matching or its "
            f"variants), got {type(m).__name__}."
        )
    return m


def _unit(metric: jax.Array) -> jax.Array:
    """``metric / metric.norm(dim=-1, keepdim=True)``, as ToMe normalises its keys."""
    return metric / jnp.linalg.norm(metric, axis=-1, keepdims=True)


def _similarity(a: jax.Array, b: jax.Array) -> jax.Array:
    """``a @ b.T`` at full precision (XLA may otherwise round float32 products on GPU/TPU)."""
    return jnp.matmul(a, b.T, precision=lax.Precision.HIGHEST)


# ----------------------------------------------------------------------------------------------
# The matchings, each written for one sample and vmapped over the batch.


def _bipartite_one(metric: jax.Array, r: int, class_token: bool, distill_token: bool) -> _Fields:
    """ToMe's balanced matching of one sample's [T, C] ``metric``: (keep, src, dst, slot)."""
    t = metric.shape[0]
    metric = _unit(metric)
    a, b = metric[::2], metric[1::2]
    ta, tb = a.shape[0], b.shape[0]
    scores = _similarity(a, b)
    if class_token:  # the class token (position 0, the first of ``a``) is never merged away
        scores = jnp.where(lax.broadcasted_iota(jnp.int32, scores.shape, 0) == 0, -jnp.inf, scores)
    if distill_token:  # the distillation token (position 1, the first of ``b``) receives none
        scores = jnp.where(lax.broadcasted_iota(jnp.int32, scores.shape, 1) == 0, -jnp.inf, scores)
    node_max = scores.max(axis=-1)
    node_idx = jnp.argmax(scores, axis=-1).astype(jnp.int32)  # first maximum, as torch.max
    # Descending order of each a-token's best score; ties keep the lower index first.
    _, edge = lax.sort((-node_max, lax.iota(jnp.int32, ta)), num_keys=1, is_stable=True)
    src_idx, unm_idx = edge[:r], edge[r:]
    if class_token:  # ToMe sorts the unmerged tokens so the class token stays first
        unm_idx = jnp.sort(unm_idx)
    u = ta - r
    # The output slot of each b-token (ToMe's ``dst``) and of each unmerged a-token, and the
    # output tokens' positions. Per-sample parts are placed with pads and adds around
    # constants (a concatenation of a batched and an unbatched array under ``jax.vmap``
    # would lose the batch sharding on explicit meshes).
    iota_b = np.arange(tb, dtype=np.int32)
    if distill_token:  # [a0, b0, other a, other b]
        dst_slot = lambda j: jnp.where(j == 0, 1, u + j)
        unm_slot = lambda q: q + (q > 0).astype(jnp.int32)
        fixed = np.zeros(u + tb, np.int32)
        fixed[1], fixed[u + 1 :] = 1, 2 * iota_b[1:] + 1
        keep = jnp.pad(2 * unm_idx[:1], (0, u + tb - 1)) + jnp.pad(2 * unm_idx[1:], (2, tb - 1))
    else:  # [unmerged a, b]
        dst_slot = lambda j: u + j
        unm_slot = lambda q: q
        fixed = np.concatenate([np.zeros(u, np.int32), 2 * iota_b + 1])
        keep = jnp.pad(2 * unm_idx, (0, tb))
    keep = keep + fixed
    dst = dst_slot(node_idx[src_idx])
    # Where each a-token went: its rank in [src, unm] picks an unmerged slot or a dst.
    rank = inverse_permutation(jnp.pad(src_idx, (0, u)) + jnp.pad(unm_idx, (r, 0)))
    a_slot = jnp.where(rank >= r, unm_slot(rank - r), dst[jnp.minimum(rank, r - 1)])
    b_slot = np.zeros((ta, 2), np.int32)
    b_slot[:tb, 1] = np.where(iota_b == 0, 1, u + iota_b) if distill_token else u + iota_b
    slot = (jnp.pad(a_slot[:, None], ((0, 0), (0, 1))) + b_slot).reshape(-1)[:t]
    return keep, 2 * src_idx, dst, slot


def _kth_one(metric: jax.Array, k: int) -> _Fields:
    """ToMe's kth matching of one sample: every k-th token receives the k - 1 before it."""
    groups = metric.shape[0] // k
    ids = np.arange(groups * k, dtype=np.int32).reshape(groups, k)
    a_pos, b_pos = ids[:, : k - 1].reshape(-1), ids[:, k - 1]
    metric = _unit(metric)
    dst = jnp.argmax(_similarity(metric[a_pos], metric[b_pos]), axis=-1).astype(jnp.int32)
    last = np.zeros((groups, k), np.int32)
    last[:, k - 1] = np.arange(groups)
    slot = jnp.pad(dst.reshape(groups, k - 1), ((0, 0), (0, 1))) + last
    zero = jnp.zeros((1,), jnp.int32) * dst[:1]  # batched zeros: the constants follow the batch
    return zero + b_pos, zero + a_pos, dst, slot.reshape(-1)


def _random_one(metric: jax.Array, perm: jax.Array, r: int) -> _Fields:
    """ToMe's random matching of one sample: the first ``r`` of ``perm`` merge into the rest."""
    a_pos, b_pos = perm[:r], perm[r:]
    metric = _unit(metric)
    dst = jnp.argmax(_similarity(metric[a_pos], metric[b_pos]), axis=-1).astype(jnp.int32)
    by_rank = jnp.pad(dst, (0, perm.shape[0] - r)) + np.pad(
        np.arange(perm.shape[0] - r, dtype=np.int32), (r, 0)
    )
    return b_pos, a_pos, dst, by_rank[inverse_permutation(perm)]


@functools.partial(jax.jit, static_argnames=("r", "class_token", "distill_token"))
def _bipartite(metric: jax.Array, *, r: int, class_token: bool, distill_token: bool) -> Merge:
    one = functools.partial(
        _bipartite_one, r=r, class_token=class_token, distill_token=distill_token
    )
    return Merge(*jax.vmap(one)(lax.stop_gradient(metric)), r=r, num_tokens=metric.shape[1])


@functools.partial(jax.jit, static_argnames=("k",))
def _kth(metric: jax.Array, *, k: int) -> Merge:
    fields = jax.vmap(functools.partial(_kth_one, k=k))(lax.stop_gradient(metric))
    return Merge(*fields, r=fields[1].shape[1], num_tokens=metric.shape[1])


def _random_from_perms(metric: jax.Array, perms: jax.Array, r: int) -> Merge:
    fields = jax.vmap(functools.partial(_random_one, r=r))(lax.stop_gradient(metric), perms)
    return Merge(*fields, r=r, num_tokens=metric.shape[1])


@functools.partial(jax.jit, static_argnames=("r",))
def _random_keys(key: jax.Array, metric: jax.Array, *, r: int) -> Merge:
    sharding = batch_sharding(metric, key)
    metric = to_batch_sharding(metric, sharding)
    keys = per_sample_keys(key, metric.shape[0], sharding)
    perms = jax.vmap(lambda k: random_permutation(k, metric.shape[1]))(keys)
    return _random_from_perms(metric, perms, r)


@functools.partial(jax.jit, static_argnames=("r",))
def _random_noise(noise: jax.Array, metric: jax.Array, *, r: int) -> Merge:
    sharding = batch_sharding(metric, noise)
    metric, noise = (to_batch_sharding(a, sharding) for a in (metric, noise))
    return _random_from_perms(metric, jax.vmap(argsort_noise)(noise), r)


def _identity(metric: jax.Array) -> Merge:
    """The matching that merges nothing (ToMe's ``do_nothing``): ``merge`` returns ``x``."""
    n, t, _ = metric.shape
    ids = jnp.broadcast_to(lax.iota(jnp.int32, t), (n, t))
    empty = jnp.zeros((n, 0), jnp.int32)
    return Merge(ids, empty, empty, ids, r=0, num_tokens=t)


# ----------------------------------------------------------------------------------------------
# Public functions: the matchings.


def bipartite_soft_matching(
    metric: jax.Array, r: int, *, class_token: bool = False, distill_token: bool = False
) -> Merge:
    """ToMe's bipartite soft matching: which ``r`` tokens to merge, and into which.

    Re-states ToMe's ``bipartite_soft_matching`` (``tome/merge.py``): the tokens are split
    alternately into ``A`` (even positions) and ``B`` (odd positions); each ``A`` token's best
    match in ``B`` is its largest cosine similarity of ``metric``; the ``r`` ``A`` tokens with
    the largest best similarity are merged into their matches. The matching is computed
    without gradient (``metric`` is wrapped in ``jax.lax.stop_gradient``, as ToMe's
    ``torch.no_grad()``); gradients flow through the merged values. The result is a
    :class:`Merge` (a pytree of indices: see there why not closures); ``merge, unmerge =
    bipartite_soft_matching(metric, r)`` unpacks it like ToMe's pair.

    Args:
      metric: [N, T, C] floating, the similarity features (ToMe uses the keys averaged over
        heads).
      r: static number of tokens to merge away, ``>= 0``. As in ToMe it is clamped to
        ``(T - protected) // 2`` (``protected``: the class and distillation tokens), so a
        large ``r`` halves the tokens; ``r = 0`` after the clamp merges nothing.
      class_token: static; token 0 is a class token and is never merged (it stays first).
      distill_token: static; token 1 is a distillation token and receives no token (it
        stays second).

    Returns:
      :class:`Merge` with ``r`` = the clamped count: ``merge(m, x)`` gives [N, T - r, C].

    Raises:
      TypeError: ``r`` is traced or not an int; a flag is not a bool; ``metric`` is not a
        floating array.
      ValueError: ``metric`` is not 3-D, or ``r < 0``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.9, 1.0]]])
      >>> m = tokens.bipartite_soft_matching(x, 1)
      >>> tokens.merge(m, x)  # token 2 merged into token 3 (its best match): the mean
      Array([[[1.  , 0.  ],
              [0.  , 1.  ],
              [0.95, 0.55]]], dtype=float32)
      >>> tokens.unmerge(m, tokens.merge(m, x)).shape
      (1, 4, 2)

    Output order (ToMe's): the unmerged ``A`` tokens, in descending order of their best
    similarity (in position order with ``class_token``), then the ``B`` tokens in position
    order; with ``distill_token``: the first unmerged ``A`` token, the first ``B`` token, the
    other unmerged ``A`` tokens, the other ``B`` tokens. Equal best similarities keep the
    lower position first (torch leaves the order of ties unspecified); equal similarities
    within a row pick the lower ``B`` position (as ``torch.max``). A token of zero norm makes
    its similarities NaN, as in ToMe.
    """
    fn = "bipartite_soft_matching"
    metric = _check_metric(fn, metric)
    r = _checks.static_int(fn, "r", r, minimum=0, what="the number of output tokens")
    class_token = _checks.static_bool(fn, "class_token", class_token)
    distill_token = _checks.static_bool(fn, "distill_token", distill_token)
    protected = int(class_token) + int(distill_token)
    r = min(r, (metric.shape[1] - protected) // 2)
    if r <= 0:
        return _identity(metric)
    return _bipartite(metric, r=r, class_token=class_token, distill_token=distill_token)


def kth_bipartite_soft_matching(metric: jax.Array, k: int) -> Merge:
    """ToMe's kth matching: every ``k``-th token receives the ``k - 1`` tokens before it.

    Re-states ToMe's ``kth_bipartite_soft_matching``: the first ``(T // k) * k`` tokens form
    groups of ``k``; the last token of each group is in ``B``, the others in ``A``, and every
    ``A`` token is merged into its most similar ``B`` token (cosine similarity of
    ``metric``, over all of ``B``). ``merge`` gives the ``T // k`` ``B`` tokens and drops the
    tokens past the last whole group, as ToMe does; ``unmerge`` gives ``(T // k) * k``.

    Args:
      metric: [N, T, C] floating similarity features.
      k: static stride, ``1 <= k <= T``; ``k = 1`` merges nothing (ToMe's ``do_nothing``).

    Returns:
      :class:`Merge`: ``merge(m, x)`` is [N, T // k, C].

    Raises:
      TypeError: ``k`` is traced or not an int; ``metric`` is not floating.
      ValueError: ``metric`` is not 3-D, or ``k`` is outside ``[1, T]`` (ToMe accepts
        ``k <= 1`` as "merge nothing" and fails on ``k > T``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.arange(12.0).reshape(1, 6, 2) + 1
      >>> tokens.merge(tokens.kth_bipartite_soft_matching(x, 3), x).shape
      (1, 2, 2)
    """
    fn = "kth_bipartite_soft_matching"
    metric = _check_metric(fn, metric)
    t = metric.shape[1]
    k = _checks.static_int(fn, "k", k, minimum=1, maximum=max(t, 1), what="the output shape")
    if k == 1:
        return _identity(metric)
    return _kth(metric, k=k)


def random_bipartite_soft_matching(
    key: ArrayLike | None, metric: jax.Array, r: int, *, noise: jax.Array | None = None
) -> Merge:
    """ToMe's random matching: ``r`` random tokens merged into their best matches among the rest.

    Re-states ToMe's ``random_bipartite_soft_matching``: a random permutation of each
    sample's tokens puts its first ``r`` in ``A`` and the others in ``B``; every ``A`` token
    is merged into its most similar ``B`` token. ``merge`` gives the ``B`` tokens in the
    permutation's order. ToMe draws the permutation as ``torch.rand(N, T, 1).argsort(1)``;
    here it comes from ``key`` (one key split per sample, or a batch of ``N`` keys), or from
    ``noise`` (tokens in ascending order of ``noise``, ties by position), which reproduces
    ToMe's permutation for the same uniform values.

    Args:
      key: a PRNG key or a batch of ``N`` keys; ignored (may be ``None``) with ``noise``.
      metric: [N, T, C] floating similarity features.
      r: static number of tokens merged away, ``0 <= r < T`` (not clamped, as in ToMe).
      noise: optional [N, T] values replacing the random draw.

    Returns:
      :class:`Merge`: ``merge(m, x)`` is [N, T - r, C].

    Raises:
      TypeError: ``key`` is not a key; ``r`` is traced or not an int; ``metric`` is not
        floating.
      ValueError: ``metric`` is not 3-D, ``r`` is outside ``[0, T)``, ``noise`` has the
        wrong shape, or neither ``key`` nor ``noise`` is given.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jax.random.normal(jax.random.key(1), (2, 8, 4))
      >>> m = tokens.random_bipartite_soft_matching(jax.random.key(0), x, 3)
      >>> tokens.merge(m, x).shape
      (2, 5, 4)
    """
    fn = "random_bipartite_soft_matching"
    metric = _check_metric(fn, metric)
    n, t, _ = metric.shape
    r = _checks.static_int(fn, "r", r, minimum=0, maximum=max(t - 1, 0), what="the output shape")
    if noise is not None:
        noise = _checks.as_array(fn, "noise", noise, hint="pass [N, T] floats, or noise=None")
        if noise.shape != (n, t):
            raise ValueError(
                f"{fn}: noise must have shape [N, T] = {(n, t)} (one value per token), got "
                f"{tuple(noise.shape)}."
            )
        return _identity(metric) if r == 0 else _random_noise(noise, metric, r=r)
    if key is None:
        raise ValueError(f"{fn}: pass a PRNG key, or noise= to choose the split yourself.")
    key = check_key(fn, key, n)
    return _identity(metric) if r == 0 else _random_keys(key, metric, r=r)


# ----------------------------------------------------------------------------------------------
# Public functions: applying a matching.


@functools.partial(jax.jit, static_argnames=("mode",))
def _merge(x: jax.Array, m: Merge, *, mode: Reduction) -> jax.Array:
    n, _, c = x.shape
    kept = take_along_dim(x, m.keep[..., None], 1, mode="promise_in_bounds")
    src = take_along_dim(x, m.src[..., None], 1, mode="promise_in_bounds")
    index = jnp.broadcast_to(m.dst[..., None], (n, m.r, c))  # whole rows: one key per token
    return scatter_reduce(kept, 1, index, src, mode, include_self=True, mode="promise_in_bounds")


@jax.jit
def _unmerge(x: jax.Array, slot: jax.Array) -> jax.Array:
    return take_along_dim(x, slot[..., None], 1, mode="promise_in_bounds")


def _check_applied(fn: str, m: Merge, x: Any, want: int, what: str) -> jax.Array:
    x = _check_tokens(fn, "x", x)
    n = m.keep.shape[0]
    if x.shape[:2] != (n, want):
        raise ValueError(
            f"{fn}: x must have shape [N, {what}, C] = [{n}, {want}, C] for this matching, "
            f"got {tuple(x.shape)}."
        )
    return x


def merge(m: Merge, x: jax.Array, mode: Reduction = "mean") -> jax.Array:
    """Applies a matching: merges the tokens of ``x`` as ``m`` says (ToMe's ``merge``).

    ToMe's merge is ``dst.scatter_reduce(-2, dst_idx.expand(n, r, c), src, reduce=mode)``
    with torch's default ``include_self=True``: a token that receives others reduces them
    together with its own value (``'mean'`` divides by one more than the number it receives).
    Here it is one gather of the output tokens and one ``jgather.scatter_reduce`` with the
    same arguments, so values and gradients are torch's.

    Args:
      m: a :class:`Merge` from a matching function.
      x: [N, T, C] tokens (any tensor over the same tokens: features, sizes, sources).
      mode: static reduction, ``'mean'`` (ToMe's default), ``'sum'``, ``'amax'``, ``'amin'``
        or ``'prod'``.

    Returns:
      [N, T - r, C] (the kth matching: [N, T // k, C]), ``x``'s dtype; ``x`` itself when
      ``m`` merges nothing.

    Raises:
      TypeError: ``m`` is not a :class:`Merge`.
      ValueError: ``x`` is not [N, T, C] for ``m``'s ``N`` and ``T``; an unknown ``mode``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.array([[[1.0], [2.0], [1.1], [5.0]]])
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> tokens.merge(m, x, "sum")[0, :, 0].tolist()  # token 0 joins token 1 (a tie)
      [1.100000023841858, 3.0, 5.0]

    Exactness against ToMe's ``tome/merge.py``: float64 values equal bit for bit, and so do
    the gradients of ``'sum'`` and ``'mean'``; ``'amax'`` gradients and gradients through
    ``unmerge`` agree to a few units in the last place (the order in which a token's
    gradient adds up its copies). float32 values agree to 1e-6 and bfloat16 to 1e-2
    (relative): summation order, and bfloat16 sums accumulating in float32 here.
    """
    fn = "merge"
    m = _check_merge(fn, m)
    x = _check_applied(fn, m, x, m.num_tokens, "T")
    if m.r == 0:
        return x
    return _merge(x, m, mode=mode)


def unmerge(m: Merge, x: jax.Array) -> jax.Array:
    """Undoes a merge: every input token gets the value of the token it was merged into.

    ToMe's ``unmerge``: tokens that stayed get their own output value back, merged-away
    tokens get the value of the token they joined. Here it is one gather by ``m.slot``.
    With ``distill_token=True`` it undoes ``merge``'s order (distillation token second);
    ToMe's ``unmerge`` reads its input as ``[unmerged, dst]`` there, which its ``merge``
    does not produce, so ToMe's result differs in that case only.

    Args:
      m: a :class:`Merge`.
      x: [N, T_out, C], e.g. ``merge(m, y)`` or features computed from it.

    Returns:
      [N, T, C] (the kth matching: [N, (T // k) * k, C]); ``x`` itself when ``m`` merges
      nothing.

    Raises:
      TypeError: ``m`` is not a :class:`Merge`.
      ValueError: ``x`` is not [N, T_out, C] for ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> tokens.unmerge(m, jnp.array([[[7.0], [8.0], [9.0]]]))[0, :, 0].tolist()
      [8.0, 8.0, 7.0, 9.0]
    """
    fn = "unmerge"
    m = _check_merge(fn, m)
    x = _check_applied(fn, m, x, m.keep.shape[1], "T_out")
    if m.r == 0:
        return x
    return _unmerge(x, m.slot)


def _apply(
    fn: str, m: Merge | Callable[..., jax.Array]
) -> Callable[[jax.Array, Reduction], jax.Array]:
    if isinstance(m, Merge):
        return lambda x, mode: merge(m, x, mode)
    if callable(m):  # a ToMe-style merge function, e.g. ``m.merge`` or one's own
        return lambda x, mode: m(x, mode=mode)
    raise TypeError(f"{fn}: expected a Merge or a merge function, got {type(m).__name__}.")


def merge_wavg(
    m: Merge | Callable[..., jax.Array], x: jax.Array, size: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Merges ``x`` by its size-weighted average and returns the new sizes (ToMe's ``merge_wavg``).

    ``x = merge(x * size, 'sum') / merge(size, 'sum')``, ``size = merge(size, 'sum')``: a
    merged token is the average of the original tokens it stands for. ``size`` starts as
    ones (each token one patch).

    Args:
      m: a :class:`Merge`, or a ToMe-style function ``merge(x, mode=...)`` (``m.merge``).
      x: [N, T, C] tokens.
      size: optional [N, T, 1] token sizes (``None``: ones of ``x``'s dtype).

    Returns:
      ``(x, size)``: [N, T_out, C] and [N, T_out, 1].

    Raises:
      TypeError: ``m`` is neither a :class:`Merge` nor callable.
      ValueError: shapes do not fit ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.array([[[1.0], [2.0], [1.1], [5.0]]])
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> y, size = tokens.merge_wavg(m, x, jnp.array([[[3.0], [1.0], [1.0], [1.0]]]))
      >>> y[0, :, 0].tolist(), size[0, :, 0].tolist()
      ([1.100000023841858, 1.25, 5.0], [1.0, 4.0, 1.0])
    """
    apply = _apply("merge_wavg", m)
    if size is None:
        size = jnp.ones_like(x[..., :1])
    x = apply(x * size, "sum")
    size = apply(size, "sum")
    # ``x / size`` as torch divides (XLA would multiply by the broadcast reciprocal).
    return _dtypes.mean(x, size, x.dtype), size


def merge_source(
    m: Merge | Callable[..., jax.Array], x: jax.Array, source: jax.Array | None = None
) -> jax.Array:
    """Tracks which original tokens each merged token holds (ToMe's ``merge_source``).

    ``source`` is [N, T, T0], 1 where the current token ``t`` holds original token ``t0``;
    merging takes the maximum (``'amax'``). ``None`` starts from the identity over ``x``'s
    ``T`` tokens (float32, as ToMe's ``torch.eye``).

    Args:
      m: a :class:`Merge` or a ToMe-style merge function.
      x: [N, T, C] tokens (only their shape is read when ``source`` is ``None``).
      source: optional [N, T, T0] map from a previous layer.

    Returns:
      [N, T_out, T0] map.

    Raises:
      TypeError: ``m`` is neither a :class:`Merge` nor callable.
      ValueError: shapes do not fit ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> tokens.merge_source(m, jnp.zeros((1, 4, 1)))[0].astype(int).tolist()
      [[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]]
    """
    apply = _apply("merge_source", m)
    if source is None:
        x = _check_tokens("merge_source", "x", x)
        n, t, _ = x.shape
        source = jnp.broadcast_to(jnp.eye(t, dtype=jnp.float32), (n, t, t))
    return apply(source, "amax")


def proportional_attention_bias(size: jax.Array) -> jax.Array:
    """ToMe's proportional attention term: ``log(size)`` shaped to add to attention logits.

    ToMe's attention adds ``size.log()[:, None, None, :, 0]`` to the logits ``q @ k^T *
    scale`` of shape [N, H, T, T], so a merged token counts as many keys as it holds.

    Args:
      size: [N, T, 1] token sizes (from :func:`merge_wavg`).

    Returns:
      [N, 1, 1, T], ``log(size)``.

    Raises:
      ValueError: ``size`` is not [N, T, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> tokens.proportional_attention_bias(jnp.array([[[1.0], [4.0]]])).shape
      (1, 1, 1, 2)
    """
    fn = "proportional_attention_bias"
    size = _checks.as_array(fn, "size", size, hint="pass the [N, T, 1] sizes from merge_wavg")
    if size.ndim != 3 or size.shape[-1] != 1:
        raise ValueError(f"{fn}: size must have shape [N, T, 1], got {tuple(size.shape)}.")
    return jnp.log(size)[:, None, None, :, 0]


def r_schedule(num_layers: int, r: int | tuple[int, float] | list[int]) -> list[int]:
    """The number of tokens each layer merges: ToMe's ``parse_r``.

    ``r`` is one of ToMe's three forms: an int (the same ``r`` in every layer); a pair
    ``(r, inflection)`` with ``inflection`` in ``[-1, 1]``: a linear schedule from
    ``int(r * (1 - inflection))`` to ``2 * r`` minus that, each value truncated to an int
    (``(r, -1)`` is ToMe's decreasing schedule, ``(r, 0)`` a constant one); or a list, one
    value per layer, padded with zeros to ``num_layers`` (a longer list is returned whole, as
    in ToMe). A Python function for building models: the values fix shapes.

    Args:
      num_layers: number of layers, ``>= 1``. (ToMe divides by ``num_layers - 1``, so it
        fails on one layer with an int or a pair; here one layer gets ``int(r * (1 -
        inflection))``.)
      r: an int, a pair ``(int, float)``, or a list of ints.

    Returns:
      A list of ints.

    Raises:
      TypeError: ``r`` is none of the three forms.
      ValueError: ``num_layers < 1``.

    Example:
      >>> from jgather import tokens
      >>> tokens.r_schedule(4, 8)
      [8, 8, 8, 8]
      >>> tokens.r_schedule(4, (8, -1.0))
      [16, 10, 5, 0]
    """
    fn = "r_schedule"
    num_layers = _checks.static_int(fn, "num_layers", num_layers, minimum=1, what="the schedule")
    if isinstance(r, list):
        values = [
            _checks.static_int(fn, f"r[{i}]", v, what="a layer's tokens") for i, v in enumerate(r)
        ]
        return values + [0] * (num_layers - len(values))
    inflect = 0.0
    if isinstance(r, tuple):
        if len(r) != 2:
            raise TypeError(f"{fn}: r as a tuple must be (r, inflection), got {r!r}.")
        r, inflect = r
        inflect = _checks.static_float(fn, "inflection", inflect, what="the schedule")
    r = _checks.static_int(fn, "r", r, what="the schedule")
    min_val = int(r * (1.0 - inflect))
    max_val = 2 * r - min_val
    if num_layers == 1:
        return [min_val]
    step = (max_val - min_val) / (num_layers - 1)
    return [int(min_val + step * i) for i in range(num_layers)]
