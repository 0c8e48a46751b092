"""ToMe's matchings (Bolya et al., 2023): which tokens merge, and into which.

``bipartite_soft_matching`` and its kth and random variants, re-stated from ToMe's
``tome/merge.py``; each returns a :class:`~jgather.tokens.Merge`. The facts followed (the
order of the output tokens, the clamp of ``r``, the protected class and distillation tokens)
are listed in each docstring.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import (
    argsort_noise,
    inverse_permutation,
    random_permutation,
)
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.tokens._merge import Merge, check_tokens

_Fields = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # keep, src, dst, slot


def _check_metric(fn: str, metric: Any) -> jax.Array:
    metric = check_tokens(fn, "metric", metric)
    if not jnp.issubdtype(metric.dtype, jnp.floating):
        raise TypeError(f"{fn}: metric must be floating (e.g. the keys), got {metric.dtype}.")
    return metric


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
# Public functions.


def bipartite_soft_matching(
    metric: jax.Array, r: int, *, class_token: bool = False, distill_token: bool = False
) -> Merge:
    """ToMe's bipartite soft matching: which ``r`` tokens to merge, and into which.

    Re-states ToMe's ``bipartite_soft_matching``: the ``r`` even-position tokens most similar to an
    odd-position token are merged into it. ``merge, unmerge = bipartite_soft_matching(metric, r)``
    unpacks the :class:`Merge` like ToMe's pair.

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

    Re-states ToMe's ``bipartite_soft_matching`` (``tome/merge.py``): the tokens are split
    alternately into ``A`` (even positions) and ``B`` (odd positions); each ``A`` token's best
    match in ``B`` is its largest cosine similarity of ``metric``; the ``r`` ``A`` tokens with
    the largest best similarity are merged into their matches. The matching is computed
    without gradient (``metric`` is wrapped in ``jax.lax.stop_gradient``, as ToMe's
    ``torch.no_grad()``); gradients flow through the merged values. The result is a
    :class:`Merge` (a pytree of indices: see there why not closures); ``merge, unmerge =
    bipartite_soft_matching(metric, r)`` unpacks it like ToMe's pair.

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
