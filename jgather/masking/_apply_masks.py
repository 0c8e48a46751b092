"""JEPA's ``apply_masks`` and its inverse ``unapply_masks``, over ``M`` index sets per sample.

``apply_masks`` gathers each index set's tokens (one ``index_select`` of whole rows per
sample and set) and concatenates the sets along the batch, mask-major, as I-JEPA's and
V-JEPA's ``apply_masks``; ``unapply_masks`` scatters a predictor's rows back to their tokens.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jgather import _checks, _indexing
from jgather._gather import index_select
from jgather._scatter import scatter
from jgather.masking._keys import batch_sharding as _batch_sharding

__all__ = ["apply_masks", "unapply_masks"]


def _check_ids(fn: str, ids: Any, n: int, length: int, name: str = "ids") -> jax.Array:
    ids, wide = _indexing.as_index(fn, name, ids)
    _indexing.check_index_dtype(fn, ids, name)
    if ids.ndim != 3 or ids.shape[1] != n:
        raise ValueError(
            f"{fn}: {name} must have shape [M, N, K] = [M, {n}, K] (M index sets of K tokens per "
            f"sample, mask-major), got shape {tuple(ids.shape)}; for multiblock_masking's "
            "[N, M, K] target_ids pass target_ids.transpose(1, 0, 2), for its [N, K] "
            "context_ids pass context_ids[None]."
        )
    _indexing.check_bounds_eagerly(fn, wide, 2, length)
    return ids


def _merge_leading(a: jax.Array, sharding: NamedSharding | None) -> jax.Array:
    """[M, N, ...] -> [M * N, ...]. With ``N`` split over explicit mesh axes the merged rows
    mix the shards, so the merged axis is given the batch's sharding (XLA moves the rows)."""
    shape = (a.shape[0] * a.shape[1], *a.shape[2:])
    if sharding is None:
        return a.reshape(shape)
    spec = P(sharding.spec[0], *([None] * (len(shape) - 1)))
    return lax.reshape(a, shape, out_sharding=NamedSharding(sharding.mesh, spec))


@jax.jit
def _apply_masks(x: jax.Array, ids: jax.Array) -> jax.Array:
    take = lambda xi, i: index_select(xi, 0, i)
    out = jax.vmap(jax.vmap(take), in_axes=(None, 0))(x, ids)  # [M, N, K, D]
    return _merge_leading(out, _batch_sharding(x))


def apply_masks(x: ArrayLike, ids: ArrayLike) -> jax.Array:
    """Gathers the tokens of ``M`` index sets, concatenated mask-major: JEPA's ``apply_masks``.

    Mirrors ``apply_masks(x, masks)`` of I-JEPA and V-JEPA: for each of the ``M`` index sets
    ``ids[m]`` ([N, K]), ``torch.gather(x, 1, ids[m][..., None].repeat(1, 1, D))``, and the
    results concatenated along the batch axis, so row ``m * N + n`` holds set ``m`` of sample
    ``n``. Here each row is one ``jgather.index_select`` of whole token rows (no ``[N, K, D]``
    index is built). Not to be confused with :func:`apply_mask`, MAE's triple from one mask.

    Out-of-range indices follow ``jgather.gather``: ``IndexError`` for concrete ``ids``; under
    ``jax.jit`` the position is filled (NaN for floats) and ``checkify`` reports it.

    On a batch-sharded mesh the gathers stay local, but the mask-major layout itself mixes the
    shards (rows ``m * N + n`` of every ``m`` come from every device), so the final flatten
    moves rows between devices; on an explicit-axis mesh the result is split over its rows like
    the batch. To keep everything local, gather per set instead (``apply_masks(x, ids[m:m +
    1])`` is ``[N, K, D]``, sharded like ``x``).

    Args:
      x: [N, L, D...] tokens.
      ids: [M, N, K] integer token indices (``multiblock_masking``'s ``target_ids.transpose(1,
        0, 2)`` or ``context_ids[None]``).

    Returns:
      [M * N, K, D...] in ``x``'s dtype.

    Raises:
      TypeError: ``ids`` is not integer.
      ValueError: ``x`` has fewer than 2 dims or ``ids`` is not [M, N, K].
      IndexError: a concrete index outside ``[0, L)``.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> x = jnp.arange(12.0).reshape(2, 6, 1)
      >>> ids = jnp.array([[[0, 5], [1, 2]], [[3, 3], [4, 0]]])  # M=2 sets, N=2, K=2
      >>> jgather.apply_masks(x, ids)[..., 0].tolist()
      [[0.0, 5.0], [7.0, 8.0], [3.0, 3.0], [10.0, 6.0]]

    References:
      Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding
      Predictive Architecture" (I-JEPA),
      https://arxiv.org/abs/2301.08243
      Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations
      from Video" (V-JEPA),
      https://arxiv.org/abs/2404.08471
    """
    fn = "apply_masks"
    x = _checks.as_array(fn, "x", x, hint="pass tokens [N, L, D]")
    if x.ndim < 2:
        raise ValueError(f"{fn}: x must have shape [N, L, D...], got {tuple(x.shape)}.")
    ids = _check_ids(fn, ids, x.shape[0], x.shape[1])
    return _apply_masks(x, ids)


@functools.partial(jax.jit, static_argnames=("length",))
def _unapply_masks(
    y: jax.Array, ids: jax.Array, valid: jax.Array | None, *, length: int
) -> jax.Array:
    k = ids.shape[2]
    sharding = _batch_sharding(y)
    rows = _merge_leading(ids, sharding)
    if valid is not None:
        rows = jnp.where(_merge_leading(valid, sharding), rows, length)  # dropped below

    def put(yi: jax.Array, i: jax.Array) -> jax.Array:
        index = jnp.broadcast_to(i.reshape((k,) + (1,) * (yi.ndim - 1)), yi.shape)
        zeros = jnp.zeros((length, *yi.shape[1:]), yi.dtype)
        return scatter(zeros, 0, index, yi, mode="drop" if valid is not None else None)

    return jax.vmap(put)(y, rows)


def unapply_masks(
    y: ArrayLike, ids: ArrayLike, length: int, *, valid: ArrayLike | None = None
) -> jax.Array:
    """The inverse of :func:`apply_masks`: puts ``[M * N, K, D]`` rows back at their tokens.

    Row ``m * N + n`` of ``y`` (e.g. the predictor's output for target ``m`` of sample ``n``)
    is written at token positions ``ids[m, n]`` of an all-zero ``[L, D]`` sequence:
    ``out[m * N + n, ids[m, n, j]] = y[m * N + n, j]``, a ``jgather.scatter`` per row.
    ``unapply_masks(apply_masks(x, ids), ids, L)`` equals ``x`` on the indexed tokens and 0
    elsewhere. Slots with ``valid`` False (the padding of ``multiblock_masking``'s index sets)
    are not written. Repeated indices in a row write one of their values, unspecified which.
    On a batch-sharded mesh, ``ids`` is put in ``y``'s mask-major row order first (rows move
    between devices, as in :func:`apply_masks`).

    Args:
      y: [M * N, K, D...] rows, mask-major as ``apply_masks`` returns them.
      ids: [M, N, K] the token indices they were gathered with.
      length: ``L``, the sequence length of the result (static).
      valid: optional [M, N, K] bool; False slots are skipped.

    Returns:
      [M * N, L, D...] in ``y``'s dtype, zeros where nothing was written.

    Raises:
      TypeError: ``ids`` is not integer; ``length`` is not an int.
      ValueError: shapes disagree.
      IndexError: a concrete index outside ``[0, L)``.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> y = jnp.array([[[1.0], [2.0]]])  # M=1, N=1, K=2
      >>> ids = jnp.array([[[3, 0]]])
      >>> jgather.unapply_masks(y, ids, 4)[0, :, 0].tolist()
      [2.0, 0.0, 0.0, 1.0]
      >>> valid = jnp.array([[[True, False]]])
      >>> jgather.unapply_masks(y, ids, 4, valid=valid)[0, :, 0].tolist()
      [0.0, 0.0, 0.0, 1.0]
    """
    fn = "unapply_masks"
    y = _checks.as_array(fn, "y", y, hint="pass rows [M * N, K, D]")
    length = _checks.static_int(fn, "`length`", length, minimum=1)
    ids, wide = _indexing.as_index(fn, "ids", ids)
    _indexing.check_index_dtype(fn, ids, "ids")
    if ids.ndim != 3 or y.ndim < 2 or y.shape[:2] != (ids.shape[0] * ids.shape[1], ids.shape[2]):
        raise ValueError(
            f"{fn}: y must be [M * N, K, D...] for ids of shape [M, N, K]; got y "
            f"{tuple(y.shape)} and ids {tuple(ids.shape)}."
        )
    if valid is not None:
        valid = _checks.as_array(fn, "valid", valid, hint="pass [M, N, K] booleans")
        if valid.shape != ids.shape:
            raise ValueError(
                f"{fn}: valid must have ids' shape {tuple(ids.shape)}, got {tuple(valid.shape)}."
            )
        valid = valid.astype(jnp.bool_)
        if not _checks.is_traced(valid) and not _checks.is_traced(wide):
            wide = np.where(np.asarray(valid), np.asarray(wide), 0)
    _indexing.check_bounds_eagerly(fn, wide, 2, length)
    return _unapply_masks(y, ids, valid, length=length)
