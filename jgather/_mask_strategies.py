"""The MAE masking family: tube, running cell, block-wise, SimMIM, patch dropout, MaskGIT ratios.

Every strategy here is a pure function of an explicit PRNG key:

* ``key`` comes first. It is either one key (new-style ``jax.random.key`` or legacy
  ``jax.random.PRNGKey``), which is split into one key per sample, or a batch of ``N`` keys, in
  which case sample ``i`` depends on ``keys[i]`` alone (it does not change when the batch grows,
  shrinks or is sharded).
* The arguments that fix shapes or counts (grid sizes, ratios, patch sizes) are static: they are
  validated in Python and passed to a ``jax.jit``-compiled core as static arguments, so a traced
  value is a clear ``TypeError`` rather than a silent recompilation per value.
* The core is written for one sample and ``jax.vmap``-ed over the batch.
* Masks are boolean ``[N, L]`` with ``True`` = masked (removed / to be predicted). Tokens are
  ordered row-major over the token grid: ``(h, w)`` for images and ``(t, h, w)`` for video, i.e.
  token ``l = (t * H + h) * W + w``, which is the order of ``patchify``'s output and of the
  reference implementations (VideoMAE, BEiT, SimMIM all flatten row-major).

A fixed-count mask (tube, running cell, SimMIM) can be turned into MAE's
``(x_masked, mask, ids_restore)`` triple with ``jgather.apply_mask``.

The algorithms are re-stated from the papers and the facts of their reference implementations
(counts, rounding, bounds); the facts each function follows are listed in its docstring.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgather._gather import index_select
from jgather._keys import batch_sharding as _batch_sharding
from jgather._keys import check_key as _check_key
from jgather._keys import per_sample_keys as _per_sample_keys
from jgather._keys import to_batch_sharding as _to_batch_sharding

__all__ = [
    "PatchDropoutOutput",
    "VariableRatioMask",
    "block_masking",
    "mask_schedule",
    "patch_dropout",
    "running_cell_masking",
    "simmim_masking",
    "tube_masking",
    "variable_ratio_masking",
]


# --------------------------------------------------------------------------------------------
# Argument checks (trace time, from static values and shapes).
# --------------------------------------------------------------------------------------------


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def _static_int(fn: str, name: str, value, *, minimum: int | None = None) -> int:
    if _is_traced(value):
        raise TypeError(
            f"{fn}: `{name}` fixes the output shape, so it must be a static Python int; got a "
            f"traced value. Pass a concrete int (mark it static if you jit a caller)."
        )
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{fn}: `{name}` must be an int, got {type(value).__name__} {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: `{name}` must be >= {minimum}, got {value}.")
    return value


def _static_float(fn: str, name: str, value) -> float:
    if _is_traced(value):
        raise TypeError(
            f"{fn}: `{name}` fixes how many tokens are masked (a shape), so it must be a static "
            f"Python float; got a traced value. Pass a concrete number (mark it static if you "
            f"jit a caller)."
        )
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0:
        raise TypeError(f"{fn}: `{name}` must be a real number, got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: `{name}` must be a real number, got {value!r}.") from None
    if not math.isfinite(out):
        raise ValueError(f"{fn}: `{name}` must be finite, got {out}.")
    return out


def _static_grid(fn: str, name: str, grid, ndim: int) -> tuple[int, ...]:
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool) and ndim == 2:
        grid = (grid, grid)
    if not isinstance(grid, tuple | list) or len(grid) != ndim:
        want = "(H, W)" if ndim == 2 else "(T, H, W)"
        raise ValueError(
            f"{fn}: `{name}` must be a tuple {want} of {ndim} positive ints (the token grid), "
            f"got {grid!r}."
        )
    return tuple(_static_int(fn, f"{name}[{i}]", g, minimum=1) for i, g in enumerate(grid))


def _shuffled_count(key, length: int, count):
    """A boolean [length] vector with exactly ``count`` True at uniformly random positions.

    A random permutation of ``[True] * count + [False] * (length - count)``; ``count`` may be
    traced.
    """
    return jax.random.permutation(key, jnp.arange(length) < count)


# --------------------------------------------------------------------------------------------
# Tube masking (VideoMAE).
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "grid", "num_masked"))
def _tube_masking(key, batch_size: int, grid: tuple[int, int, int], num_masked: int):
    t, h, w = grid

    def one(k):
        frame = _shuffled_count(k, h * w, num_masked)  # [H*W]
        return jnp.tile(frame, t)  # [T*H*W]: the same spatial mask in every frame

    return jax.vmap(one)(_per_sample_keys(key, batch_size))


def tube_masking(key, batch_size: int, grid: tuple[int, int, int], mask_ratio: float = 0.9):
    """VideoMAE tube masking: one random spatial mask per clip, repeated over every frame.

    Mirrors VideoMAE's ``TubeMaskingGenerator``: each clip draws one spatial mask over the
    ``H x W`` token grid with exactly ``int(mask_ratio * (H * W))`` masked positions (uniformly
    random positions, Python's truncating ``int`` of the float product, as the reference), and
    the same mask is used for all ``T`` temporal token slices ("tubes" through time), so a masked
    patch cannot be copied from a neighbouring frame. VideoMAE uses ``mask_ratio=0.9``.

    Token order is row-major over ``(t, h, w)``: token ``l = (t * H + h) * W + w``. Written for
    one clip and ``jax.vmap``-ed over the batch.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys
        (sample ``i`` depends on ``key[i]`` alone).
      batch_size: number of clips ``N`` (static).
      grid: the token grid ``(T, H, W)``: temporal slices (frames // tubelet size) and the
        spatial token grid (static). E.g. ``(8, 14, 14)`` for 16 frames, tubelet 2, 224 px, 16 px
        patches.
      mask_ratio: fraction of each frame's tokens to mask, in ``[0, 1)`` (static); at least one
        token per frame must stay visible.

    Returns:
      A boolean mask of shape [N, T * H * W], True = masked; every frame has exactly
      ``int(mask_ratio * (H * W))`` True, at the same positions in every frame.

    Raises:
      TypeError: for a traced or non-numeric ``mask_ratio``/``batch_size``/``grid``, or a bad key.
      ValueError: for a ratio outside ``[0, 1)``, one that leaves no visible token per frame, a
        malformed grid, or a key batch whose length is not ``batch_size``.

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
    """
    fn = "tube_masking"
    batch_size = _static_int(fn, "batch_size", batch_size, minimum=1)
    grid = _static_grid(fn, "grid", grid, 3)
    ratio = _static_float(fn, "mask_ratio", mask_ratio)
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"{fn}: `mask_ratio` must be in [0, 1), got {ratio}.")
    per_frame = grid[1] * grid[2]
    num_masked = int(ratio * per_frame)
    if num_masked >= per_frame:
        raise ValueError(
            f"{fn}: mask_ratio={ratio} masks int({ratio} * {per_frame}) = {num_masked} of "
            f"{per_frame} tokens per frame, leaving none visible; lower `mask_ratio`."
        )
    key = _check_key(fn, key, batch_size)
    return _tube_masking(key, batch_size, grid, num_masked)


# --------------------------------------------------------------------------------------------
# Running-cell masking (VideoMAE V2).
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "grid", "cell", "masks_per_cell"))
def _running_cell_masking(key, batch_size: int, grid, cell, masks_per_cell: int):
    t, h, w = grid
    ch, cw = cell
    size = ch * cw

    def one(k):
        phase = jax.random.randint(k, (), 0, size)
        tt = jnp.arange(t).reshape(t, 1, 1)
        # Position of each token inside its cell, row-major within the cell.
        pos = (jnp.arange(h).reshape(1, h, 1) % ch) * cw + jnp.arange(w).reshape(1, 1, w) % cw
        return ((pos + tt + phase) % size < masks_per_cell).reshape(-1)

    return jax.vmap(one)(_per_sample_keys(key, batch_size))


def running_cell_masking(
    key,
    batch_size: int,
    grid: tuple[int, int, int],
    mask_ratio: float = 0.5,
    *,
    cell: tuple[int, int] = (2, 2),
):
    """VideoMAE V2 running-cell masking: a periodic cell pattern that shifts by one each frame.

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
    """
    fn = "running_cell_masking"
    batch_size = _static_int(fn, "batch_size", batch_size, minimum=1)
    grid = _static_grid(fn, "grid", grid, 3)
    cell = _static_grid(fn, "cell", cell, 2)
    ratio = _static_float(fn, "mask_ratio", mask_ratio)
    _, h, w = grid
    ch, cw = cell
    if h % ch or w % cw:
        raise ValueError(
            f"{fn}: the spatial grid (H, W) = ({h}, {w}) must be divisible by the cell "
            f"{cell}; choose a grid of whole cells or another `cell`."
        )
    size = ch * cw
    if size < 2:
        raise ValueError(
            f"{fn}: cell={cell} holds one token, which cannot be partly masked; use a cell of "
            "at least 2 tokens, e.g. cell=(2, 2) as VideoMAE V2."
        )
    masks_per_cell = int(size * ratio)
    if not 0 < masks_per_cell < size:
        raise ValueError(
            f"{fn}: mask_ratio={ratio} gives int({size} * {ratio}) = {masks_per_cell} masked "
            f"positions per {ch}x{cw} cell; it must be between 1 and {size - 1}, e.g. "
            f"mask_ratio=0.5 or 0.75 for a 2x2 cell."
        )
    key = _check_key(fn, key, batch_size)
    return _running_cell_masking(key, batch_size, grid, cell, masks_per_cell)


# --------------------------------------------------------------------------------------------
# Block-wise masking (BEiT).
# --------------------------------------------------------------------------------------------

_BEIT_ATTEMPTS = 10  # BEiT tries up to 10 rectangles per block before giving up.


class _Blocks(NamedTuple):
    """Per-sample record of the accepted rectangles (for tests and inspection)."""

    mask: jax.Array  # [H * W] bool, row-major
    count: jax.Array  # [] int32, number of True in mask
    num_blocks: jax.Array  # [] int32
    boxes: jax.Array  # [max_blocks, 4] int32: top, left, h, w (rows >= num_blocks are 0)
    draws: jax.Array  # [max_blocks, 3] float32: target area, aspect ratio, area cap


def _uniform_int(u, n):
    """``floor(u * n)`` for ``u`` in [0, 1): uniform on ``{0, ..., n - 1}`` (n >= 1)."""
    n = jnp.maximum(n, 1)
    return jnp.minimum(jnp.floor(u * n.astype(jnp.float32)).astype(jnp.int32), n - 1)


class _BlockState(NamedTuple):
    """One image's loop state in ``_block_masking_batch``."""

    it: jax.Array  # [] int32, attempts so far
    mask: jax.Array  # [H, W] bool
    count: jax.Array  # [] int32
    fails: jax.Array  # [] int32, consecutive failed attempts for the current block
    done: jax.Array  # [] bool
    num_blocks: jax.Array  # [] int32
    boxes: jax.Array  # [max_blocks, 4] int32
    draws: jax.Array  # [max_blocks, 3] float32


def _block_masking_batch(
    keys,
    grid: tuple[int, int],
    num_masking_patches: int,
    min_num_patches: int,
    max_num_patches: int,
    log_aspect: tuple[float, float],
) -> _Blocks:
    """BEiT's block-wise mask for each of [N] keys, as one bounded ``lax.while_loop``.

    BEiT's generator loops "while count < target: add a block", where adding a block is up to
    10 attempts and the generator stops when all 10 fail. Here the two loops are flattened into
    one loop of attempts that carries ``fails`` (consecutive failed attempts for the current
    block). Each accepted block adds at least one token, so at most ``target`` blocks are
    accepted and at most ``10 * (target + 1)`` attempts are ever needed: that bound is exact,
    never cuts the algorithm short, and makes the loop jit-able with static shapes.

    The attempt (``body``) and the stopping test (``cond``) are written for one image and
    vmapped; the loop itself runs over the batch until every image is done, and an image that
    is done keeps its state. (A ``vmap`` of the per-image loop computes the same, but
    ``jax.experimental.checkify`` rejects a vmapped while loop.) On a batch-sharded mesh the
    "every image done" test is one boolean all-reduce per attempt, the only communication.
    """
    h_grid, w_grid = grid
    target = num_masking_patches
    max_blocks = max(target, 1)
    max_iters = _BEIT_ATTEMPTS * (target + 1)
    rows = jnp.arange(h_grid).reshape(h_grid, 1)
    cols = jnp.arange(w_grid).reshape(1, w_grid)
    lo, hi = log_aspect

    def cond(state: _BlockState):
        return jnp.logical_not(state.done) & (state.it < max_iters)

    def body(key, state: _BlockState) -> _BlockState:
        it, mask, count, fails, done, nb, boxes, draws = state
        # One draw of four U[0, 1) numbers per attempt: area, aspect, top, left.
        u_area, u_aspect, u_top, u_left = jax.random.uniform(jax.random.fold_in(key, it), (4,))
        # BEiT: max_mask_patches = min(target - count, max_num_patches).
        cap = jnp.minimum(target - count, max_num_patches).astype(jnp.float32)
        # random.uniform(a, b) = a + (b - a) * U[0, 1); a > b is allowed, as in Python.
        area = min_num_patches + (cap - min_num_patches) * u_area
        aspect = jnp.exp(lo + (hi - lo) * u_aspect)
        # Python's round() and jnp.round both round half to even.
        bh = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
        bw = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
        fits = (bw < w_grid) & (bh < h_grid)
        # BEiT's randint(0, H - h), both ends included: floor(U * (H - h + 1)).
        top = _uniform_int(u_top, h_grid - bh + 1)
        left = _uniform_int(u_left, w_grid - bw + 1)
        inside = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)
        new = jnp.sum(inside & jnp.logical_not(mask), dtype=jnp.int32)
        # BEiT accepts a block that adds at least one and at most `cap` new tokens.
        accept = jnp.logical_not(done) & fits & (new > 0) & (new.astype(jnp.float32) <= cap)
        mask = jnp.where(accept, mask | inside, mask)
        count = count + jnp.where(accept, new, 0)
        fails = jnp.where(accept, 0, fails + 1)
        slot = jnp.minimum(nb, max_blocks - 1)
        box = jnp.stack([top, left, bh, bw]).astype(jnp.int32)
        draw = jnp.stack([area, aspect, cap]).astype(jnp.float32)
        # A select, not ``.at[slot].set``: a scatter under vmap cannot be sharded explicitly.
        write = accept & (jnp.arange(max_blocks) == slot)[:, None]
        boxes = jnp.where(write, box, boxes)
        draws = jnp.where(write, draw, draws)
        nb = nb + accept.astype(jnp.int32)
        done = done | (count >= target) | (fails >= _BEIT_ATTEMPTS)
        return _BlockState(it + 1, mask, count, fails, done, nb, boxes, draws)

    def batch_body(state: _BlockState) -> _BlockState:
        active = jax.vmap(cond)(state)
        new = jax.vmap(body)(keys, state)
        keep = lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        return jax.tree.map(keep, new, state)

    (n,) = keys.shape
    sharding = _batch_sharding(keys)
    init = _BlockState(
        jnp.int32(0),
        jnp.zeros(grid, jnp.bool_),
        jnp.int32(0),
        jnp.int32(0),
        jnp.bool_(target <= 0),
        jnp.int32(0),
        jnp.zeros((max_blocks, 4), jnp.int32),
        jnp.zeros((max_blocks, 3), jnp.float32),
    )
    init = jax.tree.map(
        lambda a: _to_batch_sharding(jnp.broadcast_to(a, (n, *a.shape)), sharding), init
    )
    state = jax.lax.while_loop(lambda st: jnp.any(jax.vmap(cond)(st)), batch_body, init)
    return _Blocks(state.mask.reshape(n, -1), state.count, state.num_blocks, state.boxes,
                   state.draws)  # fmt: skip


def _block_masking_one(key, *args) -> _Blocks:
    """``_block_masking_batch`` for one key (for tests and inspection)."""
    return jax.tree.map(lambda a: a[0], _block_masking_batch(key[None], *args))


_BLOCK_STATICS = (
    "batch_size",
    "grid",
    "num_masking_patches",
    "min_num_patches",
    "max_num_patches",
    "log_aspect",
)


@functools.partial(jax.jit, static_argnames=_BLOCK_STATICS)
def _block_masking_blocks(
    key, batch_size, grid, num_masking_patches, min_num_patches, max_num_patches, log_aspect
) -> _Blocks:
    keys = _per_sample_keys(key, batch_size)
    return _block_masking_batch(
        keys, grid, num_masking_patches, min_num_patches, max_num_patches, log_aspect
    )


def _block_args(
    fn, batch_size, grid, num_masking_patches, min_num_patches, max_num_patches, min_aspect,
    max_aspect,
):  # fmt: skip
    batch_size = _static_int(fn, "batch_size", batch_size, minimum=1)
    grid = _static_grid(fn, "grid", grid, 2)
    total = grid[0] * grid[1]
    target = _static_int(fn, "num_masking_patches", num_masking_patches, minimum=0)
    if target > total:
        raise ValueError(
            f"{fn}: `num_masking_patches` must be at most H * W = {total}, got {target}."
        )
    min_num = _static_int(fn, "min_num_patches", min_num_patches, minimum=1)
    if max_num_patches is None:
        max_num = max(target, 1)  # BEiT: defaults to the target count
    else:
        max_num = _static_int(fn, "max_num_patches", max_num_patches, minimum=1)
    lo = _static_float(fn, "min_aspect", min_aspect)
    hi = 1.0 / lo if (max_aspect is None and lo > 0) else max_aspect
    hi = _static_float(fn, "max_aspect", hi) if hi is not None else hi
    if not (lo > 0 and hi is not None and hi >= lo):
        raise ValueError(
            f"{fn}: aspect bounds must satisfy 0 < min_aspect <= max_aspect, got "
            f"min_aspect={min_aspect}, max_aspect={max_aspect}."
        )
    return batch_size, grid, target, min_num, max_num, (math.log(lo), math.log(hi))


def block_masking(
    key,
    batch_size: int,
    grid: tuple[int, int] = (14, 14),
    num_masking_patches: int = 75,
    *,
    min_num_patches: int = 16,
    max_num_patches: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
):
    """BEiT block-wise masking: random rectangles added until a target count is reached.

    Mirrors BEiT's ``MaskingGenerator`` (BEiT pre-training: 14 x 14 grid, 75 masked patches,
    ``min_num_patches=16``, aspect ratio in ``[0.3, 1/0.3]``). The algorithm, re-stated:

    1. ``count = 0``. While ``count < num_masking_patches``, add one block:
    2. ``cap = min(num_masking_patches - count, max_num_patches)``;
    3. up to 10 attempts: draw a target area ``uniform(min_num_patches, cap)`` and an aspect
       ratio ``exp(uniform(log(min_aspect), log(max_aspect)))`` (log-uniform);
       ``h = round(sqrt(area * aspect))``, ``w = round(sqrt(area / aspect))`` (half to even, as
       Python's ``round``); if ``h < H`` and ``w < W`` (strictly), place the rectangle at a
       uniform ``top in [0, H - h]``, ``left in [0, W - w]``; it is accepted iff it adds
       between 1 and ``cap`` new tokens (overlap with earlier blocks is allowed);
    4. the first accepted attempt ends the block; if all 10 fail, the generator stops.

    So the mask is a union of axis-aligned rectangles, ``count <= num_masking_patches``
    always, and the mask may stop short of the target (as BEiT's does) when 10 attempts in a row
    find no fitting rectangle; on a 14 x 14 grid with the defaults it usually reaches the
    target or falls just short. The two loops run as one ``lax.while_loop`` bounded by
    ``10 * (num_masking_patches + 1)`` attempts, a bound the algorithm can never exceed, so the
    function is jit-able with static shapes and no Python loop over data.

    Token order is row-major over ``(h, w)``. Written for one image, ``jax.vmap``-ed over the
    batch (the loop runs until the slowest sample of the batch is done).

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys.
      batch_size: number of images ``N`` (static).
      grid: the token grid ``(H, W)`` or an int for a square grid (static).
      num_masking_patches: target number of masked tokens, in ``[0, H * W]`` (static).
      min_num_patches: lower end of the block-area draw (static; BEiT: 16).
      max_num_patches: upper bound on one block's area draw (static); ``None`` (BEiT's default)
        means ``num_masking_patches``.
      min_aspect: lower end of the aspect-ratio range, ``> 0`` (static).
      max_aspect: upper end; ``None`` means ``1 / min_aspect`` (static).

    Returns:
      A boolean mask of shape [N, H * W], True = masked, with at most ``num_masking_patches``
      True per row.

    Raises:
      TypeError: for traced or non-numeric static arguments or a bad key.
      ValueError: for a target outside ``[0, H * W]``, bad aspect bounds, counts below 1, or a
        key batch whose length is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import block_masking
      >>> mask = block_masking(jax.random.key(0), 8, grid=(14, 14), num_masking_patches=75)
      >>> mask.shape
      (8, 196)
      >>> bool((mask.sum(-1) <= 75).all())
      True
    """
    args = _block_args(
        "block_masking", batch_size, grid, num_masking_patches, min_num_patches,
        max_num_patches, min_aspect, max_aspect,
    )  # fmt: skip
    key = _check_key("block_masking", key, args[0])
    return _block_masking_blocks(key, *args).mask


# --------------------------------------------------------------------------------------------
# SimMIM masking.
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "coarse", "scale", "mask_count"))
def _simmim_masking(key, batch_size: int, coarse, scale: int, mask_count: int):
    gh, gw = coarse

    def one(k):
        m = _shuffled_count(k, gh * gw, mask_count).reshape(gh, gw)
        return jnp.repeat(jnp.repeat(m, scale, axis=0), scale, axis=1).reshape(-1)

    return jax.vmap(one)(_per_sample_keys(key, batch_size))


def simmim_masking(
    key,
    batch_size: int,
    image_size: int | tuple[int, int] = 192,
    *,
    mask_patch_size: int = 32,
    model_patch_size: int = 4,
    mask_ratio: float = 0.6,
):
    """SimMIM masking: a random mask on a coarse grid, upsampled to the model's patch grid.

    Mirrors SimMIM's ``MaskGenerator`` (defaults are SimMIM's: 192 px images, 32 px mask
    patches, 4 px model patches for Swin, ratio 0.6). The image is cut into coarse cells of
    ``mask_patch_size`` pixels, a grid of ``(H / mask_patch_size) x (W / mask_patch_size)``
    cells; exactly ``mask_count = ceil(coarse_count * mask_ratio)`` cells (NumPy's ceil of the
    float64 product, as the reference) are masked at uniformly random positions; each cell is
    then repeated ``scale = mask_patch_size // model_patch_size`` times along both axes, so the
    mask lives on the model's ``(H / model_patch_size) x (W / model_patch_size)`` token grid
    and is constant on every ``scale x scale`` block.

    Token order is row-major over the model's token grid ``(h, w)``. Written for one image,
    ``jax.vmap``-ed over the batch. SimMIM replaces masked tokens by a learned mask token
    rather than dropping them, so any ratio in ``[0, 1]`` is allowed.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys.
      batch_size: number of images ``N`` (static).
      image_size: image size in pixels, an int (square) or ``(H, W)`` (static); each side must
        be divisible by ``mask_patch_size``.
      mask_patch_size: coarse mask cell size in pixels (static); divisible by
        ``model_patch_size``.
      model_patch_size: the model's patch size in pixels (static).
      mask_ratio: fraction of coarse cells to mask, in ``[0, 1]`` (static).

    Returns:
      A boolean mask of shape [N, (H // model_patch_size) * (W // model_patch_size)],
      True = masked, with exactly ``mask_count * scale**2`` True per row.

    Raises:
      TypeError: for traced or non-numeric static arguments or a bad key.
      ValueError: for sizes that do not divide, a ratio outside ``[0, 1]``, or a key batch whose
        length is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import simmim_masking
      >>> mask = simmim_masking(jax.random.key(0), 8, 192, mask_patch_size=32,
      ...                       model_patch_size=4, mask_ratio=0.6)
      >>> mask.shape  # a 48 x 48 token grid
      (8, 2304)
      >>> (mask.sum(-1) // 64).tolist()  # ceil(36 * 0.6) = 22 coarse cells of 8 x 8 tokens
      [22, 22, 22, 22, 22, 22, 22, 22]
    """
    fn = "simmim_masking"
    batch_size = _static_int(fn, "batch_size", batch_size, minimum=1)
    size = _static_grid(fn, "image_size", image_size, 2)
    mask_patch = _static_int(fn, "mask_patch_size", mask_patch_size, minimum=1)
    model_patch = _static_int(fn, "model_patch_size", model_patch_size, minimum=1)
    ratio = _static_float(fn, "mask_ratio", mask_ratio)
    if size[0] % mask_patch or size[1] % mask_patch:
        raise ValueError(
            f"{fn}: image_size {size} must be divisible by mask_patch_size={mask_patch}; "
            f"resize or pick a mask_patch_size that divides both sides."
        )
    if mask_patch % model_patch:
        raise ValueError(
            f"{fn}: mask_patch_size={mask_patch} must be a multiple of "
            f"model_patch_size={model_patch}."
        )
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"{fn}: `mask_ratio` must be in [0, 1], got {ratio}.")
    coarse = (size[0] // mask_patch, size[1] // mask_patch)
    mask_count = int(np.ceil(coarse[0] * coarse[1] * ratio))
    key = _check_key(fn, key, batch_size)
    return _simmim_masking(key, batch_size, coarse, mask_patch // model_patch, mask_count)


# --------------------------------------------------------------------------------------------
# Patch dropout (timm PatchDropout / FLIP token dropping).
# --------------------------------------------------------------------------------------------


class PatchDropoutOutput(NamedTuple):
    """Result of :func:`patch_dropout`.

    Attributes:
      tokens: [N, P + K, ...] the ``P`` prefix tokens followed by the ``K`` kept body tokens.
      indices: [N, P + K] int32 positions in ``x``'s token axis of each output token, so that
        ``tokens[n, i] == x[n, indices[n, i]]``; ``indices[:, :P]`` is ``0..P-1``, and
        ``indices[:, P:] - P`` are timm's body-relative ``keep_indices``.
    """

    tokens: jax.Array
    indices: jax.Array


@functools.partial(jax.jit, static_argnames=("num_prefix", "num_keep", "ordered"))
def _patch_dropout(key, x, num_prefix: int, num_keep: int, ordered: bool):
    n, length = x.shape[:2]
    body = length - num_prefix
    prefix_pad = jnp.pad(jnp.arange(num_prefix, dtype=jnp.int32), (0, num_keep))

    def one(k, xi):
        keep = jax.random.permutation(k, body)[:num_keep].astype(jnp.int32)
        if ordered:
            keep = jnp.sort(keep)
        # The prefix positions 0..P-1, then the kept ones (a pad and an add rather than a
        # concatenation with an unbatched array, which explicit sharding rejects under vmap).
        idx = jnp.pad(keep + num_prefix, (num_prefix, 0)) + prefix_pad
        # Indices are in range by construction, so the gather needs no bounds handling.
        return index_select(xi, 0, idx, mode="promise_in_bounds"), idx

    sharding = _batch_sharding(x, key)
    x = _to_batch_sharding(x, sharding)
    out, idx = jax.vmap(one)(_per_sample_keys(key, n, sharding), x)
    return PatchDropoutOutput(out, idx)


def patch_dropout(
    key,
    x,
    prob: float = 0.5,
    *,
    num_prefix: int = 1,
    ordered: bool = False,
) -> PatchDropoutOutput:
    """Patch dropout: keep the prefix tokens and a random subset of the others (timm, FLIP).

    Mirrors timm's ``PatchDropout`` (with ``return_indices``), the token dropping of
    "PatchDropout" (arXiv 2208.07220) and FLIP (arXiv 2212.00794). The first
    ``num_prefix`` tokens (cls / register tokens) are always kept, in place, first. Of
    the ``L_body = L - num_prefix`` others, exactly ``num_keep = max(1, int(L_body *
    (1.0 - prob)))`` are kept (timm's formula: the float ``1 - prob`` times ``L_body``, truncated,
    at least one), chosen uniformly at random per sample. With ``ordered=False`` they come in
    random order (as timm's ``argsort(randn)[:num_keep]``); with ``ordered=True`` in increasing
    original position. As in timm, ``prob == 0`` returns ``x`` unchanged (all tokens, in order).

    The gather is :func:`jgather.index_select` on each sample, ``jax.vmap``-ed over the batch;
    gradients flow to the kept tokens of ``x``.

    Args:
      key: one PRNG key (split into ``N`` keys) or a batch of ``N`` keys.
      x: tokens [N, L, ...], typically [N, L, D].
      prob: drop probability in ``[0, 1)`` (static), timm's ``prob``.
      num_prefix: leading tokens always kept (static; 1 for a cls token, 0 for none).
      ordered: keep the kept body tokens in their original order (static).

    Returns:
      A :class:`PatchDropoutOutput` ``(tokens, indices)``: ``tokens`` [N, P + num_keep, ...]
      and ``indices`` [N, P + num_keep] int32 into ``x``'s token axis, with
      ``tokens[n, i] == x[n, indices[n, i]]``.

    Raises:
      TypeError: for a traced or non-numeric ``prob``/``num_prefix``, a non-bool
        ``ordered``, a non-array ``x`` or a bad key.
      ValueError: for ``prob`` outside ``[0, 1)``, ``x`` with fewer than 2 dims, no body token
        after the prefix, or a key batch whose length is not ``N``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jgather import patch_dropout
      >>> x = jnp.arange(2 * 197 * 4, dtype=jnp.float32).reshape(2, 197, 4)
      >>> out = patch_dropout(jax.random.key(0), x, 0.5, num_prefix=1, ordered=True)
      >>> out.tokens.shape, out.indices.shape  # cls + int(196 * 0.5) = 98 patches
      ((2, 99, 4), (2, 99))
      >>> out.indices[:, 0].tolist()  # the cls token is always kept, first
      [0, 0]
      >>> bool((jnp.diff(out.indices, axis=1) > 0).all())
      True
    """
    fn = "patch_dropout"
    p = _static_float(fn, "prob", prob)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{fn}: `prob` (the drop probability) must be in [0, 1), got {p}.")
    num_prefix = _static_int(fn, "num_prefix", num_prefix, minimum=0)
    if not isinstance(ordered, bool | np.bool_):
        raise TypeError(f"{fn}: `ordered` must be a bool, got {ordered!r}.")
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{fn}: `x` must be an array [N, L, D], got {type(x).__name__}.")
    if x.ndim < 2:
        raise ValueError(
            f"{fn}: `x` must have a batch and a token axis, [N, L, ...]; got shape {x.shape}."
        )
    n, length = x.shape[:2]
    body = length - num_prefix
    if body < 1:
        raise ValueError(
            f"{fn}: x has {length} tokens and num_prefix={num_prefix}, leaving no token "
            f"to drop; check num_prefix."
        )
    key = _check_key(fn, key, n)
    if p == 0.0:  # timm returns its input untouched when nothing is dropped
        x = jnp.asarray(x)
        return PatchDropoutOutput(
            x, jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (n, length))
        )
    num_keep = max(1, int(body * (1.0 - p)))
    return _patch_dropout(key, x, num_prefix, num_keep, bool(ordered))


# --------------------------------------------------------------------------------------------
# MaskGIT schedules and variable-ratio masking.
# --------------------------------------------------------------------------------------------

_POWERS = {"linear": 1.0, "uniform": 1.0, "square": 2.0, "cubic": 3.0, "sqrt": 0.5}
_SCHEDULES = ("cosine", "linear", "uniform", "square", "cubic", "sqrt", "log", "exp", "pow<e>")
_EPS = 1e-6  # MaskGIT clamps the mask ratio into [1e-6, 1].


def _schedule_power(fn: str, name: str) -> float | None:
    if name in _POWERS:
        return _POWERS[name]
    if name.startswith("pow"):
        try:
            e = float(name[3:])
        except ValueError:
            e = float("nan")
        if not (math.isfinite(e) and e > 0):
            raise ValueError(f"{fn}: schedule {name!r} needs a positive exponent, e.g. 'pow2.5'.")
        return e
    return None


def _check_schedule(fn: str, name, num_tokens) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"{fn}: the schedule name must be a str, one of {_SCHEDULES}; got {name!r}."
        )
    if name not in ("cosine", "log", "exp") and _schedule_power(fn, name) is None:
        raise ValueError(f"{fn}: unknown schedule {name!r}; expected one of {_SCHEDULES}.")
    if name in ("log", "exp"):
        if num_tokens is None:
            raise ValueError(
                f"{fn}: the {name!r} schedule depends on the number of tokens; pass "
                f"num_tokens=L (MaskGIT's total_unknown)."
            )
        _static_int(fn, "num_tokens", num_tokens, minimum=2)


def _schedule(name: str, r, num_tokens):
    if name == "cosine":
        ratio = jnp.cos(math.pi / 2.0 * r)
    elif name == "log":
        ratio = -jnp.log2(r) / math.log2(num_tokens)
    elif name == "exp":
        ratio = 1.0 - jnp.exp2(-math.log2(num_tokens) * (1.0 - r))
    else:
        ratio = 1.0 - r ** _schedule_power("mask_schedule", name)
    return jnp.clip(ratio, _EPS, 1.0)


def mask_schedule(name: str, ratio, *, num_tokens: int | None = None):
    """MaskGIT's mask-ratio schedules: map ``r`` in ``[0, 1]`` to the fraction of tokens masked.

    Mirrors MaskGIT's ``schedule`` (``maskgit/libml/mask_schedule.py``; the paper's study of
    mask scheduling functions). All are non-increasing in ``r``, equal 1 at ``r = 0``
    (``exp``: ``1 - 1/L``) and reach the floor at ``r = 1``; like MaskGIT the result is
    clamped into ``[1e-6, 1]``:

    * ``cosine``: ``cos(pi/2 * r)`` (MaskGIT's choice);
    * ``linear`` (MaskGIT's ``uniform``): ``1 - r``;
    * ``square``: ``1 - r**2``; ``cubic``: ``1 - r**3``; ``sqrt``: ``1 - r**0.5``;
      ``pow<e>`` (e.g. ``pow2.5``): ``1 - r**e``;
    * ``log``: ``-log2(r) / log2(L)``; ``exp``: ``1 - 2**(-log2(L) * (1 - r))``, where ``L`` is
      ``num_tokens`` (MaskGIT's ``total_unknown``).

    In training ``r`` is drawn uniformly from ``[0, 1)`` (see :func:`variable_ratio_masking`); in
    iterative decoding it is ``t / T``.

    Args:
      name: schedule name, one of the above.
      ratio: ``r``, a float or array of floats in ``[0, 1]``.
      num_tokens: ``L``, required by ``log`` and ``exp`` (at least 2).

    Returns:
      The mask ratio, same shape as ``ratio``, float, in ``[1e-6, 1]``.

    Raises:
      TypeError: for a non-str name or a non-numeric ``ratio``.
      ValueError: for an unknown name, or ``log``/``exp`` without ``num_tokens >= 2``.

    Example:
      >>> from jgather import mask_schedule
      >>> [round(float(mask_schedule("cosine", r)), 4) for r in (0.0, 0.5, 1.0)]
      [1.0, 0.7071, 0.0]
      >>> float(mask_schedule("square", 0.5))
      0.75
    """
    fn = "mask_schedule"
    _check_schedule(fn, name, num_tokens)
    if isinstance(ratio, str | bytes) or ratio is None:
        raise TypeError(
            f"{fn}: ratio must be a float or an array of floats in [0, 1], got {ratio!r}."
        )
    try:
        r = jnp.asarray(ratio)
    except (TypeError, ValueError) as e:
        raise TypeError(
            f"{fn}: ratio must be a float or an array of floats in [0, 1], got "
            f"{type(ratio).__name__}."
        ) from e
    if not (jnp.issubdtype(r.dtype, jnp.number) or r.dtype == jnp.bool_):
        raise TypeError(f"{fn}: ratio must be numeric, got dtype {r.dtype}.")
    r = jnp.asarray(r)
    if not jnp.issubdtype(r.dtype, jnp.floating):
        r = r.astype(jnp.float32)
    return _schedule(name, r, num_tokens)


class VariableRatioMask(NamedTuple):
    """Result of :func:`variable_ratio_masking`.

    Attributes:
      mask: [N, L] bool, True = masked.
      num_masked: [N] int32, the number of True in each row of ``mask``.
      r: [N] float32, the schedule input of each sample (drawn, or as given).
    """

    mask: jax.Array
    num_masked: jax.Array
    r: jax.Array


@functools.partial(jax.jit, static_argnames=("batch_size", "num_tokens", "schedule"))
def _variable_ratio_masking(key, r, batch_size: int, num_tokens: int, schedule: str):
    def one(k, r_given):
        k_r, k_pos = jax.random.split(k)
        r_i = jax.random.uniform(k_r, (), jnp.float32) if r_given is None else r_given
        ratio = _schedule(schedule, r_i, num_tokens)
        count = jnp.clip(jnp.ceil(ratio * num_tokens), 1, num_tokens).astype(jnp.int32)
        return VariableRatioMask(_shuffled_count(k_pos, num_tokens, count), count, r_i)

    sharding = _batch_sharding(key, r)
    keys = _per_sample_keys(key, batch_size, sharding)
    if r is None:
        return jax.vmap(lambda k: one(k, None))(keys)
    r = _to_batch_sharding(r.astype(jnp.float32), sharding)
    # A traced NaN is treated as r = 1, the schedule's floor: one token masked, never zero.
    r = jnp.where(jnp.isnan(r), jnp.float32(1.0), jnp.clip(r, 0.0, 1.0))
    return jax.vmap(one)(keys, r)


def variable_ratio_masking(
    key,
    batch_size: int,
    num_tokens: int,
    *,
    schedule: str = "cosine",
    r=None,
) -> VariableRatioMask:
    """MaskGIT-style masking with a per-sample masked count drawn through a schedule.

    Mirrors MaskGIT training: each sample draws ``r ~ U[0, 1)`` from its own key, turns it into
    a mask ratio with :func:`mask_schedule` (cosine by default, as MaskGIT), and masks

        ``num_masked = clip(ceil(mask_schedule(schedule, r) * L), 1, L)``

    tokens at uniformly random positions, computed in float32. The ceiling is the MaskGIT
    paper's rule (it masks ``ceil(gamma(r) * N)`` tokens); the clip to ``[1, L]`` is only a
    guard: the schedule is clamped into ``[1e-6, 1]``, so the ceiling is already in range. The mask
    has a fixed shape [N, L]; only the count varies per sample, so it jit-compiles once.

    Token order is whatever order the caller's ``L`` tokens have (row-major ``(h, w)`` for
    image tokens). Written for one sample, ``jax.vmap``-ed over the batch.

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys.
      batch_size: number of samples ``N`` (static).
      num_tokens: ``L``, tokens per sample (static).
      schedule: a :func:`mask_schedule` name (static).
      r: optional [N] schedule inputs in ``[0, 1]`` replacing the draw (e.g. ``t / T`` in
        iterative decoding); the positions are still drawn from the key. Concrete values
        outside ``[0, 1]`` (or NaN) are an error; traced values are clamped into ``[0, 1]``
        and a traced NaN counts as ``r = 1`` (one token masked), so every row masks at least
        one token. The returned ``r`` is the value used.

    Returns:
      A :class:`VariableRatioMask` ``(mask, num_masked, r)``: ``mask`` [N, L] bool (True =
      masked), ``num_masked`` [N] int32 and ``r`` [N] float32.

    Raises:
      TypeError: for traced or non-int ``batch_size``/``num_tokens``, a non-str schedule or a
        bad key.
      ValueError: for an unknown schedule, ``r`` of the wrong shape or out of range, or a key
        batch whose length is not ``batch_size``.

    Example:
      >>> import jax
      >>> from jgather import variable_ratio_masking
      >>> out = variable_ratio_masking(jax.random.key(0), 8, 24, schedule="cosine")
      >>> out.mask.shape, out.num_masked.shape
      ((8, 24), (8,))
      >>> bool((out.mask.sum(-1) == out.num_masked).all())
      True
      >>> r = jax.numpy.array([0.0, 1.0])  # cos(0) = 1 -> all 10; cos(pi/2) -> clipped to 1
      >>> variable_ratio_masking(jax.random.key(0), 2, 10, r=r).num_masked.tolist()
      [10, 1]
    """
    fn = "variable_ratio_masking"
    batch_size = _static_int(fn, "batch_size", batch_size, minimum=1)
    num_tokens = _static_int(fn, "num_tokens", num_tokens, minimum=1)
    _check_schedule(fn, schedule, max(num_tokens, 2))
    if schedule in ("log", "exp") and num_tokens < 2:
        raise ValueError(f"{fn}: the {schedule!r} schedule needs num_tokens >= 2.")
    if r is not None:
        if np.shape(r) != (batch_size,):
            raise ValueError(
                f"{fn}: `r` must have shape (batch_size,) = ({batch_size},), got {np.shape(r)}."
            )
        if not _is_traced(r):
            r_np = np.asarray(r)
            if not ((r_np >= 0) & (r_np <= 1)).all():
                raise ValueError(f"{fn}: `r` must lie in [0, 1], got values outside it: {r_np}.")
            r = jnp.asarray(r_np, jnp.float32)
    key = _check_key(fn, key, batch_size)
    return _variable_ratio_masking(key, r, batch_size, num_tokens, schedule)
