"""data2vec 2.0's inverse block masking, with several independent masks per sample."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import inverse_permutation, wide_argsort
from jgather.masking._placement import batch_sharding, reshape_batch


class _InverseBlockArgs(NamedTuple):
    """The checked static arguments of ``inverse_block_masking``."""

    batch_size: int
    grid: tuple[int, int]
    num_masks: int
    mask_length: int
    num_centres: int
    num_blocked: int | None  # None: require_same_masks=False, the blocks as drawn
    inverse: bool


def _blocks(centres: jax.Array, grid: tuple[int, int], mask_length: int) -> jax.Array:
    """[H * W] bool: the union of ``mask_length``-wide squares around each of [C] centres.

    A square covers rows ``r - mask_length // 2 .. r - mask_length // 2 + mask_length - 1``
    (columns alike), cut at the border: the reference clamps every index into the grid, and
    the clamped indices of a contiguous range are its cells inside the grid.
    """
    h, w = grid
    start = lambda v: v[:, None] - mask_length // 2  # [C, 1]
    rows, cols = lax.iota(jnp.int32, h)[None, :], lax.iota(jnp.int32, w)[None, :]
    top, left = start(centres // w), start(centres % w)
    in_rows = (rows >= top) & (rows < top + mask_length)  # [C, H]
    in_cols = (cols >= left) & (cols < left + mask_length)  # [C, W]
    return jnp.any(in_rows[:, :, None] & in_cols[:, None, :], axis=0).reshape(-1)


def _uniform_below(words: jax.Array, n: int) -> jax.Array:
    """Integers in ``[0, n)`` from uint32 ``words``: ``(word * n) >> 32`` (multiply-high).

    Every value takes ``floor(2**32 / n)`` or ``ceil(2**32 / n)`` of the words, so its
    probability is ``1 / n`` within a relative ``n / 2**32`` (5e-8 at ``n = 196``).
    """
    with jax.enable_x64(True):
        wide = lax.convert_element_type(words, jnp.uint64) * jnp.uint64(n)
        return lax.convert_element_type(lax.shift_right_logical(wide, jnp.uint64(32)), jnp.int32)


def _exact_count(blocked: jax.Array, count: int, high: jax.Array, low: jax.Array) -> jax.Array:
    """[L] bool with exactly ``count`` True: ``blocked`` trimmed or filled at random.

    The cells are ordered blocked first, each group in a uniformly random order (the random
    words ``high`` and ``low``: 63 bits, ties by position), and the first ``count`` are taken:
    a uniformly random ``count``-subset of ``blocked`` when it has more, else ``blocked`` plus a
    uniformly random subset of the rest, which are the reference's two ``multinomial`` draws
    without replacement over 0/1 weights.
    """
    high = (high >> 1) | jnp.where(blocked, jnp.uint32(0), jnp.uint32(1 << 31))
    return inverse_permutation(wide_argsort(high, low)) < count


@functools.partial(jax.jit, static_argnames=_InverseBlockArgs._fields)
def _inverse_block_masking(
    key: jax.Array,
    batch_size: int,
    grid: tuple[int, int],
    num_masks: int,
    mask_length: int,
    num_centres: int,
    num_blocked: int | None,
    inverse: bool,
) -> jax.Array:
    length = grid[0] * grid[1]

    def one_mask(k: jax.Array) -> jax.Array:
        # One draw of random words per mask: the centres, then two words per token.
        words = jax.random.bits(k, (num_centres + 2 * length,), jnp.uint32)
        blocked = _blocks(_uniform_below(words[:num_centres], length), grid, mask_length)
        if num_blocked is not None:
            order = words[num_centres:].reshape(2, length)
            blocked = _exact_count(blocked, num_blocked, order[0], order[1])
        return blocked != inverse  # inverse: the blocks are what stays visible

    def one_sample(k: jax.Array) -> jax.Array:  # [M, L]: mask j from fold_in(k, j)
        return jax.vmap(lambda j: one_mask(jax.random.fold_in(k, j)))(jnp.arange(num_masks))

    sharding = batch_sharding(key)
    masks = jax.vmap(one_sample)(per_sample_keys(key, batch_size, sharding))  # [N, M, L]
    return reshape_batch(masks, (batch_size * num_masks, length), sharding)


def inverse_block_masking(
    key: ArrayLike,
    batch_size: int,
    grid: int | tuple[int, int] = (14, 14),
    mask_ratio: float = 0.8,
    *,
    num_masks: int = 1,
    mask_length: int = 3,
    mask_prob_adjust: float = 0.07,
    require_same_masks: bool = True,
    inverse: bool = True,
) -> jax.Array:
    """data2vec 2.0's inverse block masking: square blocks stay visible, the rest is masked.

    Mirrors fairseq's ``compute_block_mask_2d`` as data2vec 2.0 calls it for images
    (``mask_length=3``, ``inverse_mask=True``, ``require_same_masks=True``; ``mask_prob=0.8``
    and ``mask_prob_adjust=0.07`` for ViT-B, the defaults here; 0.75 and 0.1 for ViT-L/H).

    Args:
      key: one PRNG key (split into ``batch_size`` keys) or a batch of ``batch_size`` keys
        (sample ``i``'s masks then depend on ``key[i]`` alone).
      batch_size: number of samples ``N`` (static).
      grid: the token grid ``(H, W)``, or an int for a square grid (static).
      mask_ratio: the fraction of tokens masked, in ``[0, 1]`` (static); data2vec 2.0's
        ``mask_prob`` (0.8 for ViT-B, 0.75 for ViT-L/H).
      num_masks: ``M``, independent masks per sample, at least 1 (static).
      mask_length: the side of the square blocks, at least 2 (static).
      mask_prob_adjust: added to ``p`` when counting the block centres (static; 0.07 for
        ViT-B, 0.1 for ViT-L/H).
      require_same_masks: make every mask's count exact (static bool).
      inverse: the blocks stay visible (static bool); ``False`` masks the blocks instead.

    Returns:
      A boolean mask of shape [N * M, H * W], True = masked, sample-major (see below). With
      ``require_same_masks`` every row keeps exactly ``num_keep = int(L * (1 - mask_ratio))``
      (``inverse``) or ``L - int(L * mask_ratio)`` tokens, so it feeds
      ``apply_mask(jnp.repeat(x, M, axis=0), mask, num_keep)``.

    Raises:
      TypeError: for traced or non-numeric static arguments, non-bool flags, or a bad key.
      ValueError: for a ratio outside ``[0, 1]``, ``num_masks < 1``, ``mask_length < 2``, a
        ``mask_prob_adjust`` that makes the number of centres negative, or a key batch whose
        length is not ``batch_size``.

    Example:
      >>> import jax, jax.numpy as jnp, jgather
      >>> mask = jgather.inverse_block_masking(jax.random.key(0), 2, (14, 14), 0.8, num_masks=4)
      >>> mask.shape, mask.dtype
      ((8, 196), dtype('bool'))
      >>> (~mask).sum(-1).tolist()  # int(196 * (1 - 0.8)) = 39 visible tokens in every mask
      [39, 39, 39, 39, 39, 39, 39, 39]
      >>> x = jnp.ones((2, 196, 16))  # two samples, each cloned 4 times
      >>> out = jgather.apply_mask(jnp.repeat(x, 4, axis=0), mask, int(196 * (1 - 0.8)))
      >>> out.x_masked.shape
      (8, 39, 16)

    The facts it follows, with ``p = 1 - mask_ratio`` (``inverse=True``) or ``p = mask_ratio``
    (``inverse=False``), both in Python floats as the reference computes them:

    1. ``C = int(L * ((p + mask_prob_adjust) / mask_length**2))`` block centres are drawn
       uniformly from the ``L = H * W`` tokens, with replacement (``torch.randint``; repeats
       are possible); here from 32 random bits each by a multiply-high, uniform within a
       relative ``L / 2**32``. ``mask_prob_adjust`` raises the number of blocks to make up for
       their overlap.
    2. Each centre ``(r, c)`` becomes the ``mask_length x mask_length`` square of rows
       ``r - mask_length // 2`` to ``r - mask_length // 2 + mask_length - 1`` (columns
       alike), cut at the grid's border (the reference clamps its indices). The union of the
       squares is the block set.
    3. With ``require_same_masks`` the block set is made exactly ``int(L * p)`` tokens: when it
       is larger, a uniformly random subset of its tokens is removed from it; when smaller,
       uniformly random other tokens are added (the reference's two ``multinomial`` draws
       without replacement). Here both are one exact construction: the tokens are ordered
       blocked first, each group in a random order (random keys of ``63 - s`` bits, ``s`` the
       bits of a position, ties by position: a total-variation distance from uniform below
       ``L * (L - 1) / 2 * 2**-(63 - s)``, 5e-13 at ``L = 196``), and the first ``int(L * p)``
       are taken. Without it, the blocks are kept as drawn (counts vary).
    4. With ``inverse`` the result is inverted: the blocks are what stays *visible* and every
       other token is masked, so every mask keeps exactly ``int(L * (1 - mask_ratio))`` tokens,
       which is ``random_masking``'s ``len_keep`` (39 of 196 at 0.8). Without it, the blocks
       are masked (``int(L * mask_ratio)`` of them).

    ``num_masks=M`` independent masks per sample: data2vec 2.0 clones each sample ``M`` times
    (``clone_batch``, 16 for images) with ``x.repeat_interleave(M, 0)``, so the result has
    ``N * M`` rows, sample-major: row ``i * M + j`` is mask ``j`` of sample ``i``, the row of
    ``jnp.repeat(x, M, axis=0)`` (JAX's ``repeat_interleave``). ``mask.reshape(N, M, L)``
    views them per sample. Mask ``j`` of sample ``i`` is drawn from
    ``jax.random.fold_in(keys[i], j)``: it depends on the sample's key and ``j`` only (not on
    ``M``, the batch size, the sample's position or the sharding); with a batch-sharded key
    batch (e.g. ``example_keys``), each device's rows are its own samples' masks.

    Not implemented: the reference's ``non_overlapping``, ``expand_adjcent`` and
    ``mask_dropout`` options, which data2vec 2.0's image configurations leave off. The
    reference reads a square grid from ``L`` (``d = int(L ** 0.5)``); here ``grid`` is given,
    and a rectangular ``(H, W)`` follows the same rules per axis. ``mask_length`` must be at
    least 2, as the reference asserts (data2vec 2.0 uses ``random_masking`` for single
    tokens).

    Token order is row-major over ``(h, w)``. The mask of one sample is written for one mask,
    ``jax.vmap``-ed over the ``M`` masks and the batch; no loop, static shapes.

    References:
      Baevski et al., "Efficient Self-supervised Learning with Contextualized Target
      Representations for Vision, Speech and Language" (data2vec 2.0),
      https://arxiv.org/abs/2212.07525
    """
    fn = "inverse_block_masking"
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    dims = _checks.static_grid(fn, "`grid`", grid, 2)
    ratio = _checks.static_ratio(fn, "`mask_ratio`", mask_ratio)
    num_masks = _checks.static_int(fn, "`num_masks`", num_masks, minimum=1)
    mask_length = _checks.static_int(
        fn,
        "`mask_length`",
        mask_length,
        minimum=2,
        hint="(the side of a square block); for single tokens use random_masking, as "
        "data2vec 2.0 does.",
    )
    adjust = _checks.static_float(fn, "`mask_prob_adjust`", mask_prob_adjust)
    same = _checks.static_bool(fn, "`require_same_masks`", require_same_masks)
    inverse = _checks.static_bool(fn, "`inverse`", inverse)
    length = dims[0] * dims[1]
    p = 1 - ratio if inverse else ratio  # the reference's own float arithmetic
    num_centres = int(length * ((p + adjust) / mask_length**2))
    if num_centres < 0:
        raise ValueError(
            f"{fn}: `mask_prob_adjust`={adjust} gives int({length} * (({p} + {adjust}) / "
            f"{mask_length}**2)) = {num_centres} block centres; raise it to at least {-p}."
        )
    key = check_key(fn, key, batch_size)
    args = _InverseBlockArgs(
        batch_size=batch_size,
        grid=(dims[0], dims[1]),
        num_masks=num_masks,
        mask_length=mask_length,
        num_centres=num_centres,
        num_blocked=int(length * p) if same else None,
        inverse=inverse,
    )
    return _inverse_block_masking(key, **args._asdict())
