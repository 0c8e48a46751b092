"""ToMe's ``Merge`` (Bolya et al., 2023) and its two uses: ``merge`` and ``unmerge``.

A :class:`Merge` is a pytree of index arrays (the matching functions of ``_matching`` build
it); ``merge`` is one gather of the tokens that stay plus one ``jgather.scatter_reduce`` of
the merged-away tokens into them (ToMe's ``dst.scatter_reduce(-2, dst_idx.expand(n, r, c),
src, reduce=mode)``, ``include_self=True``), and ``unmerge`` is one gather.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator
from typing import Any, Literal

import jax
import jax.numpy as jnp

from jgather import _checks
from jgather._gather import take_along_dim
from jgather._scatter import Reduction, scatter_reduce


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

    The fields are built by the matching functions; every position in them is in range by
    construction, and ``merge`` / ``unmerge`` rely on it (a hand-built ``Merge`` with
    out-of-range positions gives unspecified values).
    """

    keep: jax.Array
    src: jax.Array
    dst: jax.Array
    slot: jax.Array
    r: int
    num_tokens: int

    def merge(
        self,
        x: jax.Array,
        mode: Literal["sum", "prod", "mean", "amax", "amin", "max", "min"] = "mean",
    ) -> jax.Array:
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


def check_tokens(fn: str, name: str, x: Any) -> jax.Array:
    x = _checks.as_array(fn, name, x, hint="pass tokens [N, T, C]")
    if x.ndim != 3:
        raise ValueError(
            f"{fn}: {name} must have shape [N, T, C] (3 dims), got shape {tuple(x.shape)}; add "
            f"a batch dim with {name}[None], or jax.vmap over extra leading dims."
        )
    return x


def _check_merge(fn: str, m: Any) -> Merge:
    if not isinstance(m, Merge):
        raise TypeError(
            f"{fn}: expected a jgather.tokens.Merge (from bipartite_soft_matching or its "
            f"variants), got {type(m).__name__}."
        )
    return m


# ----------------------------------------------------------------------------------------------
# Applying a matching.


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
    x = check_tokens(fn, "x", x)
    n = m.keep.shape[0]
    if x.shape[:2] != (n, want):
        raise ValueError(
            f"{fn}: x must have shape [N, {what}, C] = [{n}, {want}, C] for this matching, "
            f"got {tuple(x.shape)}."
        )
    return x


def merge(
    m: Merge,
    x: jax.Array,
    mode: Literal["sum", "prod", "mean", "amax", "amin", "max", "min"] = "mean",
) -> jax.Array:
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
    _checks.one_of(fn, "mode", mode, ("sum", "prod", "mean", "amax", "amin", "max", "min"))
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
