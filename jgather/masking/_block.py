"""BEiT's block-wise masking: random rectangles added until a target count is reached."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys, uniform_int
from jgather.masking._placement import batch_sharding, to_batch_sharding

# --------------------------------------------------------------------------------------------
# Block-wise masking (BEiT).
# --------------------------------------------------------------------------------------------

_BEIT_ATTEMPTS = 10  # BEiT tries up to 10 rectangles per block before giving up.


class _BlockState(NamedTuple):
    """One image's loop state in ``_block_masking_batch``."""

    it: jax.Array  # [] int32, attempts so far
    mask: jax.Array  # [H, W] bool
    # [] int32, number of True in mask. The field name shadows the method tuple.count, which
    # mypy rejects for NamedTuple fields; the name is kept rather than renamed at every use.
    count: jax.Array  # type: ignore[assignment]
    fails: jax.Array  # [] int32, consecutive failed attempts for the current block
    done: jax.Array  # [] bool


class _BlockArgs(NamedTuple):
    """The checked static arguments of ``block_masking`` (``_block_args``)."""

    batch_size: int
    grid: tuple[int, int]
    num_masking_patches: int
    min_num_patches: int
    max_num_patches: int
    log_aspect: tuple[float, float]


def _block_masking_batch(
    keys: jax.Array,
    grid: tuple[int, int],
    num_masking_patches: int,
    min_num_patches: int,
    max_num_patches: int,
    log_aspect: tuple[float, float],
) -> jax.Array:
    """BEiT's block-wise [N, H * W] mask for each of [N] keys, as one bounded ``lax.while_loop``.

    BEiT's generator loops "while count < target: add a block", where adding a block is up to
    10 attempts and the generator stops when all 10 fail. Here the two loops are flattened into
    one loop of attempts that carries ``fails`` (consecutive failed attempts for the current
    block). Each accepted block adds at least one token, so at most ``target`` blocks are
    accepted and at most ``10 * (target + 1)`` attempts are ever needed: that bound is exact,
    never cuts the algorithm short, and makes the loop jit-able with static shapes. Attempt
    ``it`` of an image draws its four uniforms (area, aspect, top, left) from
    ``jax.random.fold_in(key, it)``.

    The attempt (``body``) and the stopping test (``cond``) are written for one image and
    vmapped; the loop itself runs over the batch until every image is done, and an image that
    is done keeps its state. (A ``vmap`` of the per-image loop computes the same, but
    ``jax.experimental.checkify`` rejects a vmapped while loop.) On a batch-sharded mesh the
    "every image done" test is one boolean all-reduce per attempt, the only communication.
    """
    h_grid, w_grid = grid
    target = num_masking_patches
    max_iters = _BEIT_ATTEMPTS * (target + 1)
    rows = jnp.arange(h_grid).reshape(h_grid, 1)
    cols = jnp.arange(w_grid).reshape(1, w_grid)
    lo, hi = log_aspect

    def cond(state: _BlockState) -> jax.Array:
        return jnp.logical_not(state.done) & (state.it < max_iters)

    def body(key: jax.Array, state: _BlockState) -> _BlockState:
        # One draw of four U[0, 1) numbers per attempt: area, aspect, top, left.
        u_area, u_aspect, u_top, u_left = jax.random.uniform(
            jax.random.fold_in(key, state.it), (4,)
        )
        # BEiT: max_mask_patches = min(target - count, max_num_patches).
        cap = jnp.minimum(target - state.count, max_num_patches).astype(jnp.float32)
        # random.uniform(a, b) = a + (b - a) * U[0, 1); a > b is allowed, as in Python.
        area = min_num_patches + (cap - min_num_patches) * u_area
        aspect = jnp.exp(lo + (hi - lo) * u_aspect)
        # Python's round() and jnp.round both round half to even.
        bh = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
        bw = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
        fits = (bw < w_grid) & (bh < h_grid)
        # BEiT's randint(0, H - h), both ends included: floor(U * (H - h + 1)).
        top = uniform_int(u_top, h_grid - bh + 1)
        left = uniform_int(u_left, w_grid - bw + 1)
        inside = (rows >= top) & (rows < top + bh) & (cols >= left) & (cols < left + bw)
        new = jnp.sum(inside & jnp.logical_not(state.mask), dtype=jnp.int32)
        # BEiT accepts a block that adds at least one and at most `cap` new tokens.
        accept = jnp.logical_not(state.done) & fits & (new > 0) & (new.astype(jnp.float32) <= cap)
        count = state.count + jnp.where(accept, new, 0)
        fails = jnp.where(accept, 0, state.fails + 1)
        return _BlockState(
            it=state.it + 1,
            mask=jnp.where(accept, state.mask | inside, state.mask),
            count=count,
            fails=fails,
            done=state.done | (count >= target) | (fails >= _BEIT_ATTEMPTS),
        )

    def batch_body(state: _BlockState) -> _BlockState:
        active = jax.vmap(cond)(state)
        new = jax.vmap(body)(keys, state)
        keep = lambda a, b: jnp.where(active.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        return jax.tree.map(keep, new, state)

    (n,) = keys.shape
    sharding = batch_sharding(keys)
    init = _BlockState(
        it=jnp.int32(0),
        mask=jnp.zeros(grid, jnp.bool_),
        count=jnp.int32(0),
        fails=jnp.int32(0),
        done=jnp.bool_(target <= 0),
    )
    init = jax.tree.map(
        lambda a: to_batch_sharding(jnp.broadcast_to(a, (n, *a.shape)), sharding), init
    )
    state = jax.lax.while_loop(lambda st: jnp.any(jax.vmap(cond)(st)), batch_body, init)
    return state.mask.reshape(n, -1)


@functools.partial(jax.jit, static_argnames=_BlockArgs._fields)
def _block_masking_blocks(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    num_masking_patches: int,
    min_num_patches: int,
    max_num_patches: int,
    log_aspect: tuple[float, float],
) -> jax.Array:
    keys = per_sample_keys(key, batch_size)
    return _block_masking_batch(
        keys, grid, num_masking_patches, min_num_patches, max_num_patches, log_aspect
    )


def _block_args(
    fn: str, batch_size: Any, grid: Any, num_masking_patches: Any, min_num_patches: Any,
    max_num_patches: Any, min_aspect: Any, max_aspect: Any,
) -> _BlockArgs:  # fmt: skip
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    grid = _checks.static_grid(fn, "`grid`", grid, 2)
    total = grid[0] * grid[1]
    target = _checks.static_int(fn, "`num_masking_patches`", num_masking_patches, minimum=0)
    if target > total:
        raise ValueError(
            f"{fn}: `num_masking_patches` must be at most H * W = {total}, got {target}."
        )
    min_num = _checks.static_int(fn, "`min_num_patches`", min_num_patches, minimum=1)
    if max_num_patches is None:
        max_num = max(target, 1)  # BEiT: defaults to the target count
    else:
        max_num = _checks.static_int(fn, "`max_num_patches`", max_num_patches, minimum=1)
    lo = _checks.static_float(fn, "`min_aspect`", min_aspect)
    hi = 1.0 / lo if (max_aspect is None and lo > 0) else max_aspect
    hi = _checks.static_float(fn, "`max_aspect`", hi) if hi is not None else hi
    if not (lo > 0 and hi is not None and hi >= lo):
        raise ValueError(
            f"{fn}: aspect bounds must satisfy 0 < min_aspect <= max_aspect, got "
            f"min_aspect={min_aspect}, max_aspect={max_aspect}."
        )
    return _BlockArgs(batch_size, grid, target, min_num, max_num, (math.log(lo), math.log(hi)))


def block_masking(
    key: ArrayLike,
    batch_size: int,
    grid: tuple[int, int] = (14, 14),
    num_masking_patches: int = 75,
    *,
    min_num_patches: int = 16,
    max_num_patches: int | None = None,
    min_aspect: float = 0.3,
    max_aspect: float | None = None,
) -> jax.Array:
    """BEiT block-wise masking: random rectangles added until a target count is reached.

    Mirrors BEiT's ``MaskingGenerator`` (BEiT pre-training: 14 x 14 grid, 75 masked patches,
    ``min_num_patches=16``, aspect ratio in ``[0.3, 1/0.3]``).

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

    The algorithm, re-stated:

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

    References:
      Bao et al., "BEiT: BERT Pre-Training of Image Transformers",
      https://arxiv.org/abs/2106.08254
    """
    args = _block_args(
        "block_masking", batch_size, grid, num_masking_patches, min_num_patches,
        max_num_patches, min_aspect, max_aspect,
    )  # fmt: skip
    key = check_key("block_masking", key, args.batch_size)
    return _block_masking_blocks(key, **args._asdict())
