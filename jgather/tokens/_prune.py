"""Token pruning by score: EViT's top-k with its fused token, DynamicViT's batch_index_select,
EViT's complement index."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _checks
from jgather._gather import take_along_dim
from jgather._scatter import scatter
from jgather.masking._permutation import inverse_permutations, packed_argsort
from jgather.tokens._scores import check_scores


class KeptTokens(NamedTuple):
    """Result of :func:`keep_topk`.

    Attributes:
      tokens: [N, P + k, C] (``fuse=True``: [N, P + k + 1, C]) the ``P`` prefix tokens, the
        ``k`` kept tokens in descending order of score, then the fused token.
      ids: [N, k] int32 positions of the kept tokens among the ``L`` scored tokens (after
        the prefix), in the same order: EViT's ``idx``.
    """

    tokens: jax.Array
    ids: jax.Array


@functools.partial(jax.jit, static_argnames=("k", "fuse", "num_prefix"))
def _keep_topk(
    x: jax.Array, scores: jax.Array, *, k: int, fuse: bool, num_prefix: int
) -> KeptTokens:
    body = x[:, num_prefix:]
    # Descending, equal scores in position order (torch.topk leaves ties unspecified): a stable
    # sort of the negated scores, which stays on each shard of a batch-sharded input where
    # lax.top_k's partitioning exchanges data.
    iota = lax.broadcasted_iota(jnp.int32, scores.shape, 1)
    _, order = lax.sort((-lax.stop_gradient(scores), iota), dimension=1, num_keys=1, is_stable=True)
    ids = order[:, :k]
    parts = [x[:, :num_prefix], take_along_dim(body, ids[..., None], 1, mode="promise_in_bounds")]
    if fuse:
        kept = inverse_permutations(order) < k  # each token's rank in the order
        weighted = body * scores.astype(x.dtype)[..., None]
        parts.append(jnp.sum(jnp.where(kept[..., None], 0, weighted), axis=1, keepdims=True))
    return KeptTokens(jnp.concatenate(parts, axis=1), ids)


def keep_topk(
    x: jax.Array, scores: jax.Array, k: int, *, fuse: bool = False, num_prefix: int = 0
) -> KeptTokens:
    """Keeps the ``k`` tokens with the largest scores (EViT), optionally fusing the rest.

    Re-states EViT's token reorganisation (Liang et al., 2022): the tokens after the ``P``
    prefix tokens are ranked by ``scores`` (EViT: the class token's attention, averaged over
    heads), the ``k`` best are kept in descending order of score, and with ``fuse=True`` the
    others are fused into one extra token, their sum weighted by their scores
    (``sum(x_l * score_l)``, EViT's ``extra_token``; the weights are not renormalised).
    Indices are chosen without gradient; gradients flow to the kept tokens, and with
    ``fuse`` to the fused tokens and their scores, as in EViT.

    Args:
      x: [N, P + L, C] tokens.
      scores: [N, L] floating, one score per token after the prefix.
      k: static number of tokens kept, ``1 <= k <= L``. (At ``k = L`` EViT skips the
        step and keeps the original order; here the tokens are still sorted by score and
        the fused token, with ``fuse``, is zero.)
      fuse: static; append EViT's fused token.
        A NaN score ranks lowest.
      num_prefix: static number of leading tokens always kept first (EViT: 1, the class
        token).

    Returns:
      :class:`KeptTokens` ``(tokens, ids)``: [N, P + k (+ 1), C] and [N, k] int32.

    Raises:
      TypeError: ``k`` or ``num_prefix`` is traced or not an int; ``scores`` is not floating.
      ValueError: shapes disagree, or ``k`` is outside ``[1, L]``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.arange(5.0)[None, :, None]  # a class token, then 4 tokens
      >>> scores = jnp.array([[0.25, 1.0, 0.5, 0.75]])
      >>> out = tokens.keep_topk(x, scores, 2, fuse=True, num_prefix=1)
      >>> out.tokens[0, :, 0].tolist(), out.ids[0].tolist()  # fused: 1 * .25 + 3 * .5
      ([0.0, 2.0, 4.0, 1.75], [1, 3])
    """
    fn = "keep_topk"
    x, scores, num_prefix = check_scores(fn, x, scores, num_prefix, "C")
    length = scores.shape[1]
    k = _checks.static_int(fn, "k", k, minimum=1, maximum=length, what="the number of tokens kept")
    fuse = _checks.static_bool(fn, "fuse", fuse)
    if fuse and not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"{fn}: fuse=True averages tokens, so x must be floating, got {x.dtype}.")
    return _keep_topk(x, scores, k=k, fuse=fuse, num_prefix=num_prefix)


def batch_index_select(x: jax.Array, idx: jax.Array) -> jax.Array:
    """``x[b, idx[b]]`` for every sample ``b``: DynamicViT's ``batch_index_select``.

    DynamicViT adds ``b * N`` to the indices and indexes the flattened ``x``; this is
    ``jgather.take_along_dim`` along axis 1 (one gather, no offsets), with torch's bounds:
    a concrete out-of-range index is an ``IndexError`` (under ``jax.jit`` the position is
    filled with NaN, as ``jgather.gather``'s default ``mode``, and checkify reports it).

    Args:
      x: [B, N, C] or [B, N].
      idx: [B, N_new] integer positions in ``[0, N)``.

    Returns:
      [B, N_new, C] or [B, N_new], ``x``'s dtype.

    Raises:
      TypeError: ``idx`` is not an integer array.
      ValueError: ``x`` is not 2-D or 3-D, or ``idx`` is not [B, N_new].
      IndexError: a concrete index is out of range.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.arange(6.0).reshape(2, 3)
      >>> tokens.batch_index_select(x, jnp.array([[2, 0], [1, 1]])).tolist()
      [[2.0, 0.0], [4.0, 4.0]]
    """
    fn = "batch_index_select"
    x = _checks.as_array(fn, "x", x, hint="pass [B, N, C] or [B, N]")
    idx = _checks.as_array(fn, "idx", idx, hint="pass [B, N_new] integer positions")
    if x.ndim not in (2, 3):
        raise ValueError(f"{fn}: x must be [B, N, C] or [B, N], got shape {tuple(x.shape)}.")
    if idx.ndim != 2 or idx.shape[0] != x.shape[0]:
        raise ValueError(
            f"{fn}: idx must have shape [B, N_new] with B = {x.shape[0]}, got {tuple(idx.shape)}."
        )
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"{fn}: idx must be an integer array, got {idx.dtype}.")
    if not _checks.is_traced(idx) and idx.size:
        low, high = int(np.min(idx)), int(np.max(idx))
        if low < 0 or high >= x.shape[1]:
            raise IndexError(
                f"{fn}: idx must hold positions in [0, N) = [0, {x.shape[1]}), got values "
                f"from {low} to {high}."
            )
    return take_along_dim(x, idx[..., None] if x.ndim == 3 else idx, 1)


@functools.partial(jax.jit, static_argnames=("dim",))
def _complement(idx: jax.Array, *, dim: int) -> jax.Array:
    flat = idx.reshape(-1, idx.shape[-1])
    zeros = jnp.zeros((flat.shape[0], dim), jnp.uint32)
    taken = scatter(zeros, 1, flat, jnp.ones(flat.shape, jnp.uint32), mode="drop")
    # Positions not taken (key 0) first, each group in position order: a stable sort.
    order = jax.vmap(lambda t: packed_argsort(t, key_bits=1))(taken)
    return order[:, : dim - idx.shape[-1]].reshape(*idx.shape[:-1], dim - idx.shape[-1])


def complement_idx(idx: jax.Array, dim: int) -> jax.Array:
    """The positions of ``range(dim)`` not in ``idx``, ascending: EViT's ``complement_idx``.

    For every row of ``idx``'s trailing axis (all other axes are batch axes), the
    ``dim - K`` positions in ``[0, dim)`` that the row does not hold, in ascending order.
    EViT writes 0 at the given positions of ``arange(dim)`` and sorts; here the positions
    are marked with one ``jgather.scatter`` and put first with one stable sort of 1-bit keys.

    The entries of a row must be distinct (as top-k indices are): a concrete ``idx`` with a
    repeated entry is a ``ValueError``; under ``jax.jit`` it cannot be checked, and the
    result then ends with positions the row holds (EViT's then starts with zeros).

    Args:
      idx: [..., K] integer positions in ``[0, dim)``, distinct along the last axis.
      dim: static size of the range, ``dim >= K``.

    Returns:
      [..., dim - K] int32.

    Raises:
      TypeError: ``dim`` is traced or not an int; ``idx`` is not an integer array.
      ValueError: ``idx`` is 0-d, ``dim < K``, or a concrete row repeats an entry (under
        ``jax.jit``: unspecified positions; an out-of-range entry is then ignored).
      IndexError: a concrete entry is outside ``[0, dim)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> tokens.complement_idx(jnp.array([[4, 1], [0, 2]]), 5).tolist()
      [[0, 2, 3], [1, 3, 4]]
    """
    fn = "complement_idx"
    idx = _checks.as_array(fn, "idx", idx, hint="pass [..., K] integer positions")
    if not jnp.issubdtype(idx.dtype, jnp.integer):
        raise TypeError(f"{fn}: idx must be an integer array, got {idx.dtype}.")
    if idx.ndim == 0:
        raise ValueError(f"{fn}: idx must have at least one axis ([..., K]), got a 0-d array.")
    k = idx.shape[-1]
    dim = _checks.static_int(fn, "dim", dim, minimum=k, what="the output shape")
    if not _checks.is_traced(idx) and idx.size:
        rows = np.sort(np.asarray(idx).reshape(-1, k), axis=1)
        if rows[:, 0].min() < 0 or rows[:, -1].max() >= dim:
            raise IndexError(
                f"{fn}: idx must hold positions in [0, dim) = [0, {dim}), got values from "
                f"{int(rows[:, 0].min())} to {int(rows[:, -1].max())}."
            )
        bad = np.flatnonzero((rows[:, 1:] == rows[:, :-1]).any(axis=1))
        if bad.size:
            raise ValueError(
                f"{fn}: every row of idx must hold distinct positions; row {int(bad[0])} "
                f"(flattened over the leading axes) repeats one: {rows[bad[0]].tolist()}."
            )
    return _complement(idx, dim=dim)
