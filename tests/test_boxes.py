"""``box_masks`` in every integer dtype against NumPy slicing, with jax_enable_x64 off and on.

Positions are counted in a dtype wide enough for the grid, not in the boxes' own: an int8 box
on a grid longer than 127 tokens masks what slicing does. The hypothesis test of arbitrary
int32 boxes lives with the multi-block samplers (``test_masking_multiblock.py``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import jgather

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
# Longer than the uint16 range, so the positions of every narrow dtype would wrap.
GRID = (2, 70_000)


def slice_reference(boxes, grid):
    """``mask[t:t + d, ..., l:l + w] = True`` per box, in Python ints (no wrap anywhere)."""
    d = len(grid)
    out = np.zeros((len(boxes), *grid), bool)
    for k, box in enumerate(boxes):
        b = [int(v) for v in box]
        out[k][tuple(slice(b[a], b[a] + b[d + a]) for a in range(d))] = True
    return out.reshape(len(boxes), -1)


def boxes_for(dtype, x64):
    """Boxes near the top of ``dtype``'s range, and (for narrow dtypes) past it on the grid."""
    top = int(np.iinfo(dtype).max)
    if not x64 and np.dtype(dtype).itemsize == 8:  # JAX holds these as 32-bit
        top = int(np.iinfo(np.int32 if dtype == "int64" else np.uint32).max)
    rows = [
        (0, 120, 1, 10),  # int8: 120 + 10 > 127
        (1, 32_000, 1, 1_000),  # int16: 32_000 + 1_000 > 32_767
        (0, 60_000, 2, 9_000),  # uint16: past 65_535, cut at the grid's end
        (0, min(top, 69_990), 2, top),  # an extent at the dtype's maximum
        (1, top, 1, top),  # a corner at the dtype's maximum: past the grid, empty
        (0, 0, 0, 5),  # an extent of 0: empty
    ]
    return np.array([[min(v, top) for v in row] for row in rows], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_box_masks_every_integer_dtype_equal_slicing(dtype, x64):
    boxes = boxes_for(dtype, x64)
    got = jgather.box_masks(jnp.asarray(boxes), GRID)
    assert got.shape == (len(boxes), GRID[0] * GRID[1]) and got.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(got), slice_reference(boxes, GRID))


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_box_masks_video_grid_past_the_dtype_range(dtype, x64):
    grid = (2, 3, 300)
    top = int(np.iinfo(dtype).max)  # 127 or 255; the grid's rows are 300 tokens long
    boxes = np.array([[1, 1, 120, 1, 2, 127], [0, 0, min(250, top), 2, 3, top]], dtype)
    got = jgather.box_masks(boxes, grid)
    np.testing.assert_array_equal(np.asarray(got), slice_reference(boxes, grid))


def test_box_masks_grid_past_the_index_dtype(x64):
    """More tokens than the position dtype addresses: a clear error, nothing allocated."""
    boxes = np.zeros((1, 4), np.int32)
    if not x64:
        with pytest.raises(
            ValueError,
            match=r"box_masks: grid \(65536, 65536\) has 4294967296 "
            r"tokens, more than int32.*jax_enable_x64",
        ):
            jgather.box_masks(boxes, (65536, 65536))
    with pytest.raises(ValueError, match=r"box_masks: grid .* more than int(32|64) positions"):
        jgather.box_masks(boxes, (2**32, 2**32))
