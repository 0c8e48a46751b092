"""JEPA's ``apply_masks`` and its inverse ``unapply_masks``, over ``M`` index sets per sample.

``apply_masks`` gathers each index set's tokens (one ``index_select`` of whole rows per
sample and set) and concatenates the sets along the batch, mask-major, as I-JEPA's and
V-JEPA's ``apply_masks``; ``unapply_masks`` scatters a predictor's rows back to their tokens.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding
from jax.typing import ArrayLike

from jgather import _checks, _indexing, _permute, _rows
from jgather._gather import index_select
from jgather.masking._permutation import slots_inverse
from jgather.masking._placement import batch_sharding, reshape_batch

__all__ = ["apply_masks", "unapply_masks"]


Layout = Literal["MNK", "NMK"]

_LAYOUTS = ("MNK", "NMK")


def _mask_major(fn: str, ids: Any, layout: Any, name: str = "ids") -> tuple[jax.Array, Any]:
    """``ids`` (and its values to bounds-check) as [M, N, K], mask-major.

    [N, K] is one index set (M = 1); a 3-D array is read in the ``layout`` the caller names,
    never guessed from its shape (``N`` may equal ``M``).
    """
    _checks.one_of(
        fn,
        "layout",
        layout,
        _LAYOUTS,
        hint="'MNK': ids [M, N, K], mask-major, as the references' list of masks stacked; "
        "'NMK': multiblock_masking's target_ids [N, M, K].",
    )
    ids, wide = _indexing.as_index(fn, name, ids)
    _indexing.check_index_dtype(fn, ids, name)
    if ids.ndim == 2:
        return ids[None], (wide if _checks.is_traced(wide) else np.asarray(wide)[None])
    if ids.ndim != 3:
        raise ValueError(
            f"{fn}: {name} must have shape [M, N, K] (layout='MNK'), [N, M, K] "
            f"(layout='NMK', multiblock_masking's target_ids) or [N, K] (one index set, e.g. "
            f"context_ids), got shape {tuple(ids.shape)}."
        )
    if layout == "NMK":
        ids = jnp.swapaxes(ids, 0, 1)
        wide = ids if _checks.is_traced(wide) else np.swapaxes(np.asarray(wide), 0, 1)
    return ids, wide


def _check_ids(fn: str, ids: Any, layout: Any, n: int, length: int) -> tuple[jax.Array, Any]:
    ids, wide = _mask_major(fn, ids, layout)
    if ids.shape[1] != n:
        raise ValueError(
            f"{fn}: ids hold index sets for a batch of {ids.shape[1]} (read as [M, N, K] = "
            f"{tuple(ids.shape)} in layout {layout!r}), but x has N={n}; for "
            "multiblock_masking's [N, M, K] target_ids pass layout='NMK'."
        )
    _indexing.check_bounds_eagerly(fn, wide, 2, length)
    return ids, wide


def _merge_leading(a: jax.Array, sharding: NamedSharding | None) -> jax.Array:
    """[M, N, ...] -> [M * N, ...], split over its rows like the batch (see ``reshape_batch``)."""
    return reshape_batch(a, (a.shape[0] * a.shape[1], *a.shape[2:]), sharding)


@functools.partial(jax.jit, static_argnames=("unique",))
def _apply_masks(x: jax.Array, ids: jax.Array, *, unique: bool) -> jax.Array:
    if unique:
        # Each set's inverse [M, N, L] (the slot of each token, K where none): the gradient
        # gathers the cotangent of every set by it and adds the M sets.
        inverse = slots_inverse(ids, x.shape[1])
        permuted = lambda xi, i, v: index_select(xi, 0, i, inverse=v)
        out = jax.vmap(jax.vmap(permuted), in_axes=(None, 0, 0))(x, ids, inverse)  # [M, N, K, D]
    else:
        take = lambda xi, i: index_select(xi, 0, i)
        out = jax.vmap(jax.vmap(take), in_axes=(None, 0))(x, ids)
    return _merge_leading(out, batch_sharding(x))


def apply_masks(
    x: ArrayLike,
    ids: ArrayLike,
    *,
    layout: Literal["MNK", "NMK"] = "MNK",
    unique_indices: bool = False,
) -> jax.Array:
    """Gathers the tokens of ``M`` index sets, concatenated mask-major: JEPA's ``apply_masks``.

    Mirrors ``apply_masks(x, masks)`` of I-JEPA and V-JEPA: for each of the ``M`` index sets
    ``ids[m]`` ([N, K]), ``torch.gather(x, 1, ids[m][..., None].repeat(1, 1, D))``, and the
    results concatenated along the batch axis, so row ``m * N + n`` holds set ``m`` of sample
    ``n``. Here each row is one ``jgather.index_select`` of whole token rows (no ``[N, K, D]``
    index is built). Not to be confused with :func:`apply_mask`, MAE's triple from one mask.

    Args:
      x: [N, L, D...] tokens.
      ids: integer token indices: [M, N, K] (``layout="MNK"``, the default: the references'
        list of ``M`` masks, stacked), [N, M, K] (``layout="NMK"``: ``multiblock_masking``'s
        ``target_ids``) or [N, K] (one set, e.g. ``context_ids``; ``M = 1``).
      layout: ``"MNK"`` or ``"NMK"``, how a 3-D ``ids`` is laid out (static).
      unique_indices: promise that no row ``ids[m, n]`` repeats a token (static); checked for
        concrete ``ids`` (``ValueError``). Under ``jax.jit`` a broken promise leaves the
        values exact and the gradient of the repeated tokens undefined.

    Returns:
      [M * N, K, D...] in ``x``'s dtype (``[N, K, D...]`` for [N, K] ``ids``).

    Raises:
      TypeError: ``ids`` is not integer.
      ValueError: ``x`` has fewer than 2 dims, ``ids`` is not [M, N, K] / [N, M, K] / [N, K]
        for ``x``'s batch, an unknown ``layout``, or concrete ``ids`` that repeat a token
        with ``unique_indices=True``.
      IndexError: a concrete index outside ``[0, L)``.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> x = jnp.arange(12.0).reshape(2, 6, 1)
      >>> ids = jnp.array([[[0, 5], [1, 2]], [[3, 3], [4, 0]]])  # M=2 sets, N=2, K=2
      >>> jgather.apply_masks(x, ids)[..., 0].tolist()
      [[0.0, 5.0], [7.0, 8.0], [3.0, 3.0], [10.0, 6.0]]
      >>> nmk = jnp.swapaxes(ids, 0, 1)  # [N, M, K], as multiblock_masking's target_ids
      >>> bool((jgather.apply_masks(x, nmk, layout="NMK") == jgather.apply_masks(x, ids)).all())
      True
      >>> jgather.apply_masks(x, ids[0]).shape  # one [N, K] set
      (2, 2, 1)

    ``multiblock_masking``'s index sets go in as they are: ``apply_masks(x, out.context_ids)``
    ([N, K], one set) and ``apply_masks(x, out.target_ids, layout="NMK")``. A 3-D ``ids`` is
    read in the layout named, never guessed from its shape (``N`` may equal ``M``).

    The gradient with respect to ``x`` adds each set's cotangent at its tokens: a scatter-add.
    With ``unique_indices=True`` (no row of a set repeats a token, as in
    ``multiblock_masking``'s sets) it is a gather per set by the set's inverse and a sum over
    the sets, with no scatter on ``x``'s values (the inverse is one ``int32`` scatter of slot
    numbers); float32 sums for reduced-precision ``x``, as the scatter-add.

    Out-of-range indices follow ``jgather.gather``: ``IndexError`` for concrete ``ids``; under
    ``jax.jit`` the position is filled (NaN for floats) and ``checkify`` reports it.

    On a batch-sharded mesh the gathers stay local, but the mask-major layout itself mixes the
    shards (rows ``m * N + n`` of every ``m`` come from every device), so the final flatten
    moves rows between devices; on an explicit-axis mesh the result is split over its rows like
    the batch. To keep everything local, gather per set instead (an [N, K] ``ids`` gives
    ``[N, K, D]``, sharded like ``x``).

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
    ids, wide = _check_ids(fn, ids, layout, x.shape[0], x.shape[1])
    unique = _checks.static_bool(fn, "unique_indices", unique_indices)
    if unique and not _checks.is_traced(wide):
        _permute.check_unique(fn, wide, 2, "ids")
    return _apply_masks(x, ids, unique=unique)


@functools.partial(jax.jit, static_argnames=("length",))
def _unapply_masks(
    y: jax.Array, ids: jax.Array, valid: jax.Array | None, *, length: int
) -> jax.Array:
    k = ids.shape[2]
    sharding = batch_sharding(y)
    rows = _merge_leading(ids, sharding)
    if valid is not None:
        rows = jnp.where(_merge_leading(valid, sharding), rows, length)  # dropped below

    def put(yi: jax.Array, i: jax.Array) -> jax.Array:
        if valid is None:
            _indexing.probe(i, length)  # checkify reports an out-of-range index
        # Each token's slot, the last one where a row repeats a token (one int32 scatter-max
        # of slot numbers; -1 where none). The rows are then a gather by it, and the
        # gradient a gather by the winning slots' tokens: no scatter of y's values.
        slots = lax.iota(jnp.int32, k)
        slot = _rows.rows_scatter("max", jnp.full((length,), -1, jnp.int32), i, slots)
        inside = (i >= 0) & (i < length)
        wins = inside & (_rows.take_rows(slot, jnp.clip(i, 0, length - 1)) == slots)
        back = jnp.where(wins, i, length)
        return index_select(yi, 0, slot, mode="fill", fill_value=0, inverse=back)

    return jax.vmap(put)(y, rows)


def unapply_masks(
    y: ArrayLike,
    ids: ArrayLike,
    length: int,
    *,
    valid: ArrayLike | None = None,
    layout: Literal["MNK", "NMK"] = "MNK",
) -> jax.Array:
    """The inverse of :func:`apply_masks`: puts ``[M * N, K, D]`` rows back at their tokens.

    Row ``m * N + n`` of ``y`` is written at tokens ``ids[m, n]`` of a zero ``[L, D]`` sequence, so
    ``unapply_masks(apply_masks(x, ids), ids, L)`` equals ``x`` on the indexed tokens.

    Args:
      y: [M * N, K, D...] rows, mask-major as ``apply_masks`` returns them.
      ids: the token indices they were gathered with: [M, N, K], [N, M, K] with
        ``layout="NMK"``, or [N, K] (``M = 1``).
      length: ``L``, the sequence length of the result (static).
      valid: optional bool array of ``ids``' shape and layout; False slots are skipped.
      layout: ``"MNK"`` or ``"NMK"``, how a 3-D ``ids`` (and ``valid``) is laid out (static).

    Returns:
      [M * N, L, D...] in ``y``'s dtype, zeros where nothing was written.

    Raises:
      TypeError: ``ids`` is not integer; ``length`` is not an int.
      ValueError: shapes disagree, or an unknown ``layout``.
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

    Row ``m * N + n`` of ``y`` (e.g. the predictor's output for target ``m`` of sample ``n``)
    is written at token positions ``ids[m, n]`` of an all-zero ``[L, D]`` sequence:
    ``out[m * N + n, ids[m, n, j]] = y[m * N + n, j]``. ``unapply_masks(apply_masks(x, ids),
    ids, L)`` equals ``x`` on the indexed tokens and 0 elsewhere. Slots with ``valid`` False
    (the padding of ``multiblock_masking``'s index sets) are not written. Where a row repeats
    a token, its last slot is written (and receives the gradient). ``ids`` and ``valid`` take
    the layouts of :func:`apply_masks`. Each row is a gather of ``y``'s rows by each token's
    slot (found by one ``int32`` scatter of slot numbers), and so is the gradient: no scatter
    of ``y``'s values. On a batch-sharded mesh, ``ids`` is put in ``y``'s mask-major row
    order first (rows move between devices, as in :func:`apply_masks`).
    """
    fn = "unapply_masks"
    y = _checks.as_array(fn, "y", y, hint="pass rows [M * N, K, D]")
    length = _checks.static_int(fn, "`length`", length, minimum=1)
    ids, wide = _mask_major(fn, ids, layout)
    if y.ndim < 2 or y.shape[:2] != (ids.shape[0] * ids.shape[1], ids.shape[2]):
        raise ValueError(
            f"{fn}: y must be [M * N, K, D...] for ids read as [M, N, K] = "
            f"{tuple(ids.shape)} (layout {layout!r}); got y {tuple(y.shape)}."
        )
    if valid is not None:
        valid = _checks.as_array(fn, "valid", valid, hint="pass booleans shaped like ids")
        if valid.ndim in (2, 3):
            valid = valid[None] if valid.ndim == 2 else valid
            valid = jnp.swapaxes(valid, 0, 1) if layout == "NMK" and valid.ndim == 3 else valid
        if valid.shape != ids.shape:
            raise ValueError(
                f"{fn}: valid must have ids' shape and layout (read as {tuple(ids.shape)}), "
                f"got {tuple(valid.shape)}."
            )
        valid = valid.astype(jnp.bool_)
        if not _checks.is_traced(valid) and not _checks.is_traced(wide):
            wide = np.where(np.asarray(valid), np.asarray(wide), 0)
    _indexing.check_bounds_eagerly(fn, wide, 2, length)
    return _unapply_masks(y, ids, valid, length=length)
