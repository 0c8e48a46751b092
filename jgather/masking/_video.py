"""Video masks: VideoMAE's tube masking and VideoMAE V2's running-cell masking."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import shuffled_count

# --------------------------------------------------------------------------------------------
# Tube masking (VideoMAE).
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "grid", "num_masked"))
def _tube_masking(
    key: jax.Array, batch_size: int, grid: tuple[int, ...], num_masked: int
) -> jax.Array:
    t, h, w = grid

    def one(k: jax.Array) -> jax.Array:
        frame = shuffled_count(k, h * w, num_masked)  # [H*W]
        return jnp.tile(frame, t)  # [T*H*W]: the same spatial mask in every frame

    return jax.vmap(one)(per_sample_keys(key, batch_size))


def tube_masking(
    key: ArrayLike, batch_size: int, grid: tuple[int, int, int], mask_ratio: float = 0.9
) -> jax.Array:
    """VideoMAE tube masking: one random spatial mask per clip, repeated over every frame.

    Mirrors VideoMAE's ``TubeMaskingGenerator``: each clip draws one spatial mask over the
    ``H x W`` token grid with exactly ``int(mask_ratio * (H * W))`` masked positions (uniformly
    random positions, Python's truncating ``int`` of the float product, as the reference), and
    the same mask is used for all ``T`` temporal token slices ("tubes" through time), so a masked
    patch cannot be copied from a neighbouring frame. VideoMAE uses ``mask_ratio=0.9``;
    ``mask_ratio=1.0`` masks every token, as the reference allows.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys
        (sample ``i`` depends on ``key[i]`` alone).
      batch_size: number of clips ``N`` (static).
      grid: the token grid ``(T, H, W)``: temporal slices (frames // tubelet size) and the
        spatial token grid (static). E.g. ``(8, 14, 14)`` for 16 frames, tubelet 2, 224 px, 16 px
        patches.
      mask_ratio: fraction of each frame's tokens to mask, in ``[0, 1]`` (static).

    Returns:
      A boolean mask of shape [N, T * H * W], True = masked; every frame has exactly
      ``int(mask_ratio * (H * W))`` True, at the same positions in every frame.

    Raises:
      TypeError: for a traced or non-numeric ``mask_ratio``/``batch_size``/``grid``, or a bad key.
      ValueError: for a ratio outside ``[0, 1]``, a malformed grid, or a key batch whose length
        is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import tube_masking
      >>> mask = tube_masking(jax.random.key(0), 2, grid=(8, 14, 14), mask_ratio=0.9)
      >>> mask.shape, mask.dtype
      ((2, 1568), dtype('bool'))
      >>> mask.reshape(2, 8, 196).sum(-1).tolist()[0]  # int(0.9 * 196) = 176 in every frame
      [176, 176, 176, 176, 176, 176, 176, 176]
      >>> bool((mask.reshape(2, 8, 196) == mask.reshape(2, 8, 196)[:, :1]).all())
      True

    Token order is row-major over ``(t, h, w)``: token ``l = (t * H + h) * W + w``. Written for
    one clip and ``jax.vmap``-ed over the batch.

    References:
      Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for
      Self-Supervised Video Pre-Training",
      https://arxiv.org/abs/2203.12602
    """
    fn = "tube_masking"
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    dims = _checks.static_grid(fn, "`grid`", grid, 3)
    ratio = _checks.static_ratio(fn, "`mask_ratio`", mask_ratio)
    num_masked = int(ratio * (dims[1] * dims[2]))
    key = check_key(fn, key, batch_size)
    return _tube_masking(key, batch_size, dims, num_masked)


# --------------------------------------------------------------------------------------------
# Running-cell masking (VideoMAE V2).
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "grid", "cell", "masks_per_cell"))
def _running_cell_masking(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, ...],
    cell: tuple[int, ...],
    masks_per_cell: int,
) -> jax.Array:
    t, h, w = grid
    ch, cw = cell
    size = ch * cw

    def one(k: jax.Array) -> jax.Array:
        phase = jax.random.randint(k, (), 0, size)
        tt = jnp.arange(t).reshape(t, 1, 1)
        # Position of each token inside its cell, row-major within the cell.
        pos = (jnp.arange(h).reshape(1, h, 1) % ch) * cw + jnp.arange(w).reshape(1, 1, w) % cw
        return ((pos + tt + phase) % size < masks_per_cell).reshape(-1)

    return jax.vmap(one)(per_sample_keys(key, batch_size))


def running_cell_masking(
    key: ArrayLike,
    batch_size: int,
    grid: tuple[int, int, int],
    mask_ratio: float = 0.5,
    *,
    cell: tuple[int, int] = (2, 2),
) -> jax.Array:
    """VideoMAE V2 running-cell masking: a periodic cell pattern that shifts by one each frame.

    Mirrors VideoMAE V2's ``RunningCellMaskingGenerator``: each cell of ``ch x cw`` tokens masks
    ``int(ch * cw * mask_ratio)`` of its positions, and the pattern moves by one position per frame.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys.
      batch_size: number of clips ``N`` (static).
      grid: the token grid ``(T, H, W)`` (static); ``H`` must be divisible by ``ch`` and ``W``
        by ``cw`` (the reference tiles whole cells only).
      mask_ratio: fraction of each cell to mask (static); ``int(ch * cw * mask_ratio)`` must be
        strictly between 0 and ``ch * cw``.
      cell: the cell shape ``(ch, cw)`` (static), default ``(2, 2)`` as in VideoMAE V2.

    Returns:
      A boolean mask of shape [N, T * H * W], True = masked.

    Raises:
      TypeError: for traced or non-numeric static arguments or a bad key.
      ValueError: for a grid not divisible by the cell, a ratio giving 0 or all masked positions
        per cell, or a key batch whose length is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import running_cell_masking
      >>> mask = running_cell_masking(jax.random.key(0), 8, grid=(5, 4, 4), mask_ratio=0.5)
      >>> mask.shape
      (8, 80)
      >>> mask.reshape(8, 5, 16).sum(-1)[0].tolist()  # half of every frame
      [8, 8, 8, 8, 8]
      >>> m = mask.reshape(8, 5, 4, 4)  # [N, T, H, W]
      >>> bool((m[:, 1:, 0, 0] == m[:, :-1, 0, 1]).all())  # the pattern runs one step per frame
      True

    Mirrors VideoMAE V2's ``RunningCellMaskingGenerator`` (which VideoMAE V2 uses for its decoder
    mask in dual masking, ratio 0.5). The ``H x W`` token grid is tiled by cells of ``cell =
    (ch, cw)`` tokens (2 x 2 in VideoMAE V2). Each cell holds ``m = int(ch * cw * mask_ratio)``
    masked positions (``int(4 * mask_ratio)`` in the reference: 2 of 4 at ratio 0.5, 3 of 4 at
    0.75), and ``0 < m < ch * cw`` is required, as the reference asserts. Number the positions of
    a cell ``j = (h % ch) * cw + (w % cw)`` (row-major inside the cell). With a per-clip random
    phase ``p``, uniform in ``{0, ..., ch*cw - 1}`` and drawn from the key, token ``(t, h, w)``
    is masked iff::

        (j + t + p) % (ch * cw) < m

    which is the reference's queue ``[1] * m + [0] * (ch*cw - m)`` read from a pointer that
    advances by one every frame (its random start pointer plus one is our ``p``). Facts:

    * every cell of every frame has exactly ``m`` masked tokens, so every frame has exactly
      ``m * (H // ch) * (W // cw) = (m / (ch*cw)) * H * W`` masked tokens;
    * frame ``t + 1`` is frame ``t`` shifted by one position along the cell order:
      ``mask[t + 1, j] == mask[t, (j + 1) % (ch*cw)]``, so the visible positions move every frame;
    * over any ``ch * cw`` consecutive frames each token is masked exactly ``m`` times;
    * all cells of a frame are identical; the only randomness is the phase ``p``.

    Token order is row-major over ``(t, h, w)``. Written for one clip, ``jax.vmap``-ed over the
    batch.

    References:
      Wang et al., "VideoMAE V2: Scaling Video Masked Autoencoders with Dual Masking",
      https://arxiv.org/abs/2303.16727
    """
    fn = "running_cell_masking"
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    dims = _checks.static_grid(fn, "`grid`", grid, 3)
    cells = _checks.static_grid(fn, "`cell`", cell, 2)
    ratio = _checks.static_float(fn, "`mask_ratio`", mask_ratio)
    _, h, w = dims
    ch, cw = cells
    if h % ch or w % cw:
        raise ValueError(
            f"{fn}: the spatial grid (H, W) = ({h}, {w}) must be divisible by the cell "
            f"{cells}; choose a grid of whole cells or another `cell`."
        )
    size = ch * cw
    if size < 2:
        raise ValueError(
            f"{fn}: cell={cells} holds one token, which cannot be partly masked; use a cell of "
            "at least 2 tokens, e.g. cell=(2, 2) as VideoMAE V2."
        )
    masks_per_cell = int(size * ratio)
    if not 0 < masks_per_cell < size:
        raise ValueError(
            f"{fn}: mask_ratio={ratio} gives int({size} * {ratio}) = {masks_per_cell} masked "
            f"positions per {ch}x{cw} cell; it must be between 1 and {size - 1}, e.g. "
            f"mask_ratio=0.5 or 0.75 for a 2x2 cell."
        )
    key = check_key(fn, key, batch_size)
    return _running_cell_masking(key, batch_size, dims, cells, masks_per_cell)
