"""Boxes to token masks: ``box_masks``, the construction of the multi-block samplers.

A box is a corner and an extent per grid axis; its mask is exactly NumPy's slicing
``mask[top:top + h, left:left + w] = True`` (and ``start:start + t`` first for video),
flattened row-major. ``multiblock_masking``'s samplers draw boxes and build their masks with
``masks_of_boxes`` (the same construction, unchecked, inside their traced cores).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks

__all__ = ["box_masks"]


def masks_of_boxes(boxes: jax.Array, grid: tuple[int, ...]) -> jax.Array:
    """[..., 2d] boxes (corners, then extents, per grid axis) -> [..., prod(grid)] bool.

    Positions are counted in ``boxes``' dtype, which must hold every position of the grid
    (``box_masks`` widens narrow boxes first; the samplers draw int32 boxes).
    """
    ndim = len(grid)
    batch = boxes.shape[:-1]
    out = jnp.ones(batch + (1,) * ndim, jnp.bool_)
    for axis, size in enumerate(grid):
        corner = boxes[..., axis].reshape((*batch, 1))
        extent = boxes[..., ndim + axis].reshape((*batch, 1))
        pos = lax.iota(boxes.dtype, size).reshape((1,) * len(batch) + (size,))
        # pos - corner cannot overflow for corner >= 0; Python slicing clips at the grid edge.
        inside = (pos >= corner) & (pos - corner < extent)  # [..., size]
        shape = batch + tuple(size if a == axis else 1 for a in range(ndim))
        out = out & inside.reshape(shape)
    return out.reshape((*batch, math.prod(grid)))


@functools.partial(jax.jit, static_argnames=("grid",))
def _box_masks_core(boxes: jax.Array, grid: tuple[int, ...]) -> jax.Array:
    return masks_of_boxes(boxes, grid)


def box_masks(boxes: ArrayLike, grid: int | tuple[int, ...]) -> jax.Array:
    """Boolean token masks of axis-aligned boxes on a token grid (deterministic).

    A box covers the tokens NumPy slicing would (``mask[top:top + height, left:left + width]``, with
    a time axis first for video): the construction of I-JEPA's and V-JEPA's samplers.

    Args:
      boxes: [..., 4] integer ``(top, left, height, width)`` for a 2-D grid, or [..., 6]
        ``(start, top, left, duration, height, width)`` for a 3-D grid: the corner on each grid
        axis, then the extent on each.
      grid: the token grid ``(H, W)`` (an int for a square grid) or ``(T, H, W)``; static.

    Returns:
      [..., prod(grid)] bool, True inside the box.

    Raises:
      TypeError: ``boxes`` is not an integer array; ``grid`` is traced or not ints.
      ValueError: ``boxes``' last axis is not ``2 * len(grid)``, a concrete box has a
        negative corner or extent, or the grid has more tokens than int32 positions address
        (``2**31 - 1``; int64 with ``jax_enable_x64``).

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> m = jgather.box_masks(jnp.array([[1, 2, 2, 3], [2, 0, 9, 1]]), (4, 5))
      >>> m.reshape(2, 4, 5).astype(int)[0].tolist()
      [[0, 0, 0, 0, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0]]
      >>> m.reshape(2, 4, 5).astype(int)[1].tolist()  # cut at the bottom edge, as slicing
      [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [1, 0, 0, 0, 0], [1, 0, 0, 0, 0]]

    The construction the multi-block samplers of I-JEPA and V-JEPA use, separated from the
    sampling: box ``(top, left, height, width)`` on an ``(H, W)`` grid is exactly NumPy's or
    torch's ``mask[top:top + height, left:left + width] = 1`` on an ``[H, W]`` array, flattened
    row-major; on a ``(T, H, W)`` grid, box ``(start, top, left, duration, height, width)`` is
    ``mask[start:start + duration, top:top + height, left:left + width] = 1``. As with slicing,
    a box that reaches past the grid's end is cut at the edge and an extent of 0 is empty.
    Corners and extents must be non-negative (slicing would read a negative corner from the
    end): concrete boxes are checked; traced ones are read as coordinates (a negative corner
    covers the cells from 0 to ``corner + extent``).

    Positions are counted in int32 (int64 for grids past ``2**31 - 1`` tokens, with
    ``jax_enable_x64``), whatever the boxes' integer dtype: int8 or uint16 boxes on a grid
    longer than their range mask as wide boxes do.

    Token order is row-major: token ``l = h * W + w`` (``(t * H + h) * W + w`` for video),
    that of ``patchify`` and of the references. Combine the boxes of one mask with
    ``.any(axis=-2)``.
    """
    fn = "box_masks"
    boxes = _checks.as_array(fn, "boxes", boxes, hint="pass [..., 4] or [..., 6] integer boxes")
    if not jnp.issubdtype(boxes.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: boxes must be an integer array (grid coordinates), got dtype {boxes.dtype}; "
            "convert it with boxes.astype(jnp.int32)."
        )
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool):
        grid = (int(grid), int(grid))
    ndim = len(grid) if isinstance(grid, tuple | list) else 2
    if ndim not in (2, 3):
        raise ValueError(
            f"{fn}: grid must be (H, W) or (T, H, W), got {grid!r}; box_masks draws boxes on "
            "image and video token grids."
        )
    dims = _checks.static_grid(fn, "grid", grid, ndim)
    want = "(top, left, height, width)" if ndim == 2 else "(start, top, left, duration, h, w)"
    if boxes.ndim == 0 or boxes.shape[-1] != 2 * ndim:
        raise ValueError(
            f"{fn}: boxes must have shape [..., {2 * ndim}] ({want}) for the {ndim}-D grid "
            f"{dims}, got shape {tuple(boxes.shape)}."
        )
    if not _checks.is_traced(boxes):
        values = np.asarray(boxes)
        if values.size and values.min() < 0:
            at = np.unravel_index(int(np.argmin(values)), values.shape)
            raise ValueError(
                f"{fn}: corners and extents must be >= 0, got {int(values[at])} at index "
                f"{tuple(int(i) for i in at)}; a negative corner would count from the end in "
                "slicing, which box_masks does not do."
            )
    return _box_masks_core(_as_position_dtype(fn, boxes, dims), dims)


def _as_position_dtype(fn: str, boxes: jax.Array, grid: tuple[int, ...]) -> jax.Array:
    """``boxes`` in a signed dtype that counts every token of ``grid`` without wrapping.

    int32 while the grid has fewer than 2**31 tokens, else int64 (with ``jax_enable_x64``).
    Signed boxes are widened to it, never narrowed (the values are kept exactly). Unsigned
    boxes are non-negative; values past the dtype's maximum are cut to it, which changes no
    mask, since every position is below it.
    """
    tokens = math.prod(grid)
    x64 = jax.config.read("jax_enable_x64")
    index = np.dtype(np.int32) if tokens <= np.iinfo(np.int32).max else np.dtype(np.int64)
    if index == np.int64 and (not x64 or tokens > np.iinfo(np.int64).max):
        fix = (
            "enable 64-bit positions with jax.config.update('jax_enable_x64', True)"
            if not x64 and tokens <= np.iinfo(np.int64).max
            else "use a smaller grid"
        )
        raise ValueError(
            f"{fn}: grid {grid} has {tokens} tokens, more than "
            f"{'int32' if not x64 else 'int64'} positions can address; {fix}."
        )
    if boxes.dtype.kind == "i":
        return boxes.astype(np.promote_types(boxes.dtype, index))
    if boxes.dtype.itemsize >= index.itemsize:  # unsigned: cut at the index dtype's maximum
        boxes = jnp.minimum(boxes, np.array(np.iinfo(index).max, boxes.dtype))
    return boxes.astype(index)
