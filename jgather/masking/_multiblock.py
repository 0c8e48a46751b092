"""Multi-block masks of I-JEPA and V-JEPA: the samplers, on ``box_masks``' construction.

The layers, tested separately (the first and last in their own modules):

* ``box_masks`` (``_boxes``): boxes (corner and extent on each grid axis) to boolean masks, exactly
  ``mask[top:top + h, left:left + w] = True`` (and the same with ``start:start + t`` for video).
* ``multiblock_masking``: the samplers of I-JEPA's ``MaskCollator`` (``src/masks/multiblock.py``)
  and V-JEPA's (``src/masks/multiblock3d.py``), re-stated from their facts, drawing boxes and
  building the context and target masks and their padded index sets with ``box_masks``' core.
* ``apply_masks`` / ``unapply_masks`` (``_apply_masks``): the references' ``apply_masks`` (a
  gather per index set, concatenated over the sets along the batch) and its inverse.

Block sizes are drawn through exact step tables: the reference maps a uniform ``u`` to a size by
float formulas (``int``, ``round``, ``sqrt``) whose value changes only at finitely many ``u``.
``_step_table`` finds those points in Python (float64, the reference's own arithmetic, evaluated
inside each interval), so the jitted sampler looks a size up by counting the break points below
its ``u`` (no float formula on device, so no rounding differences between platforms), and the
static capacities of the index sets are the exact maxima over the table.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._block import _uniform_int
from jgather.masking._boxes import _box_masks
from jgather.masking._keys import batch_sharding as _batch_sharding
from jgather.masking._keys import check_key as _check_key
from jgather.masking._keys import per_sample_keys as _per_sample_keys
from jgather.masking._keys import to_batch_sharding as _to_batch_sharding
from jgather.masking._permutation import _inverse_permutation

Preset = Literal["ijepa", "vjepa", "vjepa_long"]

# I-JEPA retries a context block 20 times per constraint level before dropping one target's
# complement from the acceptable region.
_IJEPA_TIMEOUT = 20
# V-JEPA resamples a clip's target blocks while its context is empty; here a fixed number of
# rounds is drawn at once (see multiblock_masking's docstring for the chance of running out).
_VJEPA_ROUNDS = 10

# ----------------------------------------------------------------------------------------------
# Exact step tables of the block-size draws (static, Python float64).


class _StepTable(NamedTuple):
    """A step function of ``u`` in [0, 1): ``values[sum(u >= breaks)]``."""

    breaks: tuple[float, ...]
    values: tuple[tuple[int, ...], ...]
    probs: tuple[float, ...]  # the length of each value's interval


def _step_table(f: Callable[[float], tuple[int, ...]], candidates: Sequence[float]) -> _StepTable:
    """The step function ``f`` on [0, 1) given a superset of its change points.

    ``f`` is evaluated (in Python floats, as the reference computes) inside each interval
    between sorted candidates; neighbouring intervals with the same value are merged.
    """
    points = sorted({c for c in candidates if 0.0 < c < 1.0})
    edges = [0.0, *points, 1.0]
    breaks: list[float] = []
    values: list[tuple[int, ...]] = []
    probs: list[float] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        value = f(lo + (hi - lo) / 2)
        if values and values[-1] == value:
            probs[-1] += hi - lo
            continue
        if values:
            breaks.append(lo)
        values.append(value)
        probs.append(hi - lo)
    return _StepTable(tuple(breaks), tuple(values), tuple(probs))


def _linear_points(lo: float, hi: float, targets: Sequence[float]) -> list[float]:
    """The ``u`` at which ``lo + u * (hi - lo)`` equals each target (none if constant)."""
    if hi == lo:
        return []
    return [(t - lo) / (hi - lo) for t in targets]


def _hw(keep: int, ar: float) -> tuple[int, int]:
    """Both references: ``h = round(sqrt(keep * ar))``, ``w = round(sqrt(keep / ar))``."""
    return round(math.sqrt(keep * ar)), round(math.sqrt(keep / ar))


def _ijepa_size_table(
    grid: tuple[int, ...], scale: tuple[float, float], aspect: tuple[float, float]
) -> _StepTable:
    """I-JEPA's ``_sample_block_size``: one ``u`` sets both scale and aspect ratio."""
    h_grid, w_grid = grid
    area = h_grid * w_grid
    (s_lo, s_hi), (a_lo, a_hi) = scale, aspect

    def size(u: float) -> tuple[int, int]:
        keep = int(area * (s_lo + u * (s_hi - s_lo)))
        h, w = _hw(keep, a_lo + u * (a_hi - a_lo))
        return min(h, h_grid - 1), min(w, w_grid - 1)  # "while h >= H: h -= 1"

    keeps = range(int(area * s_lo), int(area * s_hi) + 2)
    cands = _linear_points(s_lo, s_hi, [k / area for k in keeps])
    halves = [(j + 0.5) ** 2 for j in range(max(h_grid, w_grid) + 1)]
    for k in keeps:
        if k > 0:
            ars = [x / k for x in halves] + [k / x for x in halves]
            cands += _linear_points(a_lo, a_hi, ars)
    return _step_table(size, cands)


def _vjepa_tables(
    grid: tuple[int, ...],
    temporal_scale: tuple[float, float],
    spatial_scale: tuple[float, float],
    aspect: tuple[float, float],
) -> tuple[_StepTable, _StepTable, tuple[_StepTable, ...]]:
    """V-JEPA's ``_sample_block_size``: separate uniforms for duration, area and aspect.

    Returns the duration table (of ``u_t``), the spatial keep-count table (of ``u_s``) and, per
    keep count, the ``(h, w)`` table (of ``u_a``).
    """
    duration, h_grid, w_grid = grid
    area = h_grid * w_grid
    (t_lo, t_hi), (s_lo, s_hi), (a_lo, a_hi) = temporal_scale, spatial_scale, aspect
    t_table = _step_table(
        lambda u: (max(1, int(duration * (t_lo + u * (t_hi - t_lo)))),),
        _linear_points(t_lo, t_hi, [k / duration for k in range(duration + 2)]),
    )
    keeps = range(int(area * s_lo), int(area * s_hi) + 2)
    k_table = _step_table(
        lambda u: (int(area * (s_lo + u * (s_hi - s_lo))),),
        _linear_points(s_lo, s_hi, [k / area for k in keeps]),
    )
    halves = [(j + 0.5) ** 2 for j in range(max(h_grid, w_grid) + 1)]
    hw_tables = []
    for (keep,) in k_table.values:

        def size(u: float, keep: int = keep) -> tuple[int, int]:
            h, w = _hw(keep, a_lo + u * (a_hi - a_lo))
            return min(h, h_grid), min(w, w_grid)

        ars = [x / keep for x in halves] + [keep / x for x in halves] if keep > 0 else []
        hw_tables.append(_step_table(size, _linear_points(a_lo, a_hi, ars)))
    return t_table, k_table, tuple(hw_tables)


def _lookup(u: jax.Array, breaks: Any) -> jax.Array:
    """``sum(u >= breaks)``: the interval of ``u`` in a step table (no loop, no sort)."""
    breaks = jnp.asarray(breaks, jnp.float32)
    if breaks.shape[-1] == 0:
        return jnp.zeros(u.shape, jnp.int32)
    return jnp.sum(u[..., None] >= breaks, axis=-1, dtype=jnp.int32)


# ----------------------------------------------------------------------------------------------
# The result.


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=[
        "context_mask",
        "target_masks",
        "context_ids",
        "context_valid",
        "target_ids",
        "target_valid",
        "context_box",
        "target_boxes",
    ],
    meta_fields=["grid"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class MultiBlockMasks:
    """The result of ``multiblock_masking``: context and target masks, index sets and boxes.

    Masks are True on the tokens the set holds (the context: what the encoder sees; a target:
    what the predictor predicts). An index set lists its tokens in raster order in the first
    ``count`` slots; the other slots hold tokens outside the set (also in raster order, so a
    row never repeats a token) and are False in ``valid``: use ``valid`` as the attention key
    mask or loss weight. With ``truncate="batch_min"`` every slot is valid.

    Attributes:
      context_mask: [N, L] bool, the context of each sample.
      target_masks: [N, M, L] bool, the ``M`` targets of each sample (I-JEPA: 4 blocks;
        V-JEPA: one target, the union of its blocks).
      context_ids: [N, Kc] int32 token indices of the context.
      context_valid: [N, Kc] bool, True on the slots that hold context tokens.
      target_ids: [N, M, Kt] int32 token indices of each target.
      target_valid: [N, M, Kt] bool.
      context_box: [N, 2d] int32, the box the context was cut from, ``(top, left, height,
        width)`` or ``(start, top, left, duration, height, width)``: I-JEPA's context block;
        V-JEPA's first ``max_temporal_keep`` frames.
      target_boxes: [N, M, B, 2d] int32, the ``B`` blocks of each target (I-JEPA: ``B = 1``).
      grid: static, the token grid.
    """

    context_mask: jax.Array
    target_masks: jax.Array
    context_ids: jax.Array
    context_valid: jax.Array
    target_ids: jax.Array
    target_valid: jax.Array
    context_box: jax.Array
    target_boxes: jax.Array
    grid: tuple[int, ...] | None = None


# ----------------------------------------------------------------------------------------------
# Static arguments.


class _IJepaArgs(NamedTuple):
    grid: tuple[int, ...]
    num_targets: int
    target_table: _StepTable
    context_table: _StepTable
    min_keep: int
    target_capacity: int
    context_capacity: int


class _VJepaArgs(NamedTuple):
    grid: tuple[int, ...]
    num_blocks: int
    t_table: _StepTable
    k_table: _StepTable
    hw_tables: tuple[_StepTable, ...]
    context_frames: int
    max_keep: int | None
    target_capacity: int
    context_capacity: int


_PRESETS: dict[str, dict[str, Any]] = {
    # I-JEPA ViT-H/14 (configs/in1k_vith14_ep300.yaml).
    "ijepa": dict(
        num_targets=4,
        target_scale=(0.15, 0.2),
        aspect_ratio=(0.75, 1.5),
        context_scale=(0.85, 1.0),
        min_keep=10,
    ),
    # V-JEPA pre-training (configs/pretrain/vitl16.yaml): the short-range config ...
    "vjepa": dict(
        num_blocks=8,
        spatial_scale=(0.15, 0.15),
        temporal_scale=(1.0, 1.0),
        aspect_ratio=(0.75, 1.5),
        max_temporal_keep=1.0,
        max_keep=None,
    ),
    # ... and the long-range one, drawn for the same batch.
    "vjepa_long": dict(
        num_blocks=2,
        spatial_scale=(0.7, 0.7),
        temporal_scale=(1.0, 1.0),
        aspect_ratio=(0.75, 1.5),
        max_temporal_keep=1.0,
        max_keep=None,
    ),
}


def _range(fn: str, name: str, value: Any, *, low: float, high: float) -> tuple[float, float]:
    """A static ``(lo, hi)`` pair with ``low <= lo <= hi <= high`` (a float means ``(x, x)``)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{fn}: `{name}` must be a pair (lo, hi), got {value!r}.")
        lo = _checks.static_float(fn, f"`{name}[0]`", value[0], what="the block sizes")
        hi = _checks.static_float(fn, f"`{name}[1]`", value[1], what="the block sizes")
    else:
        lo = hi = _checks.static_float(fn, f"`{name}`", value, what="the block sizes")
    if not low <= lo <= hi <= high:
        raise ValueError(
            f"{fn}: `{name}` must satisfy {low} <= lo <= hi <= {high}, got ({lo}, {hi})."
        )
    return lo, hi


def _too_small(fn: str, what: str, sizes: Sequence[int], min_keep: int, fix: str) -> None:
    smallest = min(sizes)
    if smallest <= min_keep:
        raise ValueError(
            f"{fn}: a {what} block can have {smallest} tokens, not more than min_keep="
            f"{min_keep}; the reference would retry such a draw forever. {fix}"
        )


@functools.cache
def _ijepa_args(
    fn: str,
    grid: tuple[int, ...],
    num_targets: int,
    target_scale: tuple[float, float],
    aspect_ratio: tuple[float, float],
    context_scale: tuple[float, float],
    min_keep: int,
) -> _IJepaArgs:
    target = _ijepa_size_table(grid, target_scale, aspect_ratio)
    context = _ijepa_size_table(grid, context_scale, (1.0, 1.0))
    fix = "Raise the scale, lower min_keep, or use a larger grid."
    _too_small(fn, "target", [h * w for h, w in target.values], min_keep, fix)
    _too_small(fn, "context", [h * w for h, w in context.values], min_keep, fix)
    return _IJepaArgs(
        grid=grid,
        num_targets=num_targets,
        target_table=target,
        context_table=context,
        min_keep=min_keep,
        target_capacity=max(h * w for h, w in target.values),
        context_capacity=max(h * w for h, w in context.values),
    )


@functools.cache
def _vjepa_args(
    fn: str,
    grid: tuple[int, ...],
    num_blocks: int,
    spatial_scale: tuple[float, float],
    temporal_scale: tuple[float, float],
    aspect_ratio: tuple[float, float],
    max_temporal_keep: float,
    max_keep: int | None,
) -> _VJepaArgs:
    duration, h_grid, w_grid = grid
    t_table, k_table, hw_tables = _vjepa_tables(grid, temporal_scale, spatial_scale, aspect_ratio)
    context_frames = max(1, int(duration * max_temporal_keep))
    later = (duration - context_frames) * h_grid * w_grid
    durations = [t for (t,) in t_table.values]
    areas = [h * w for table in hw_tables for h, w in table.values]
    length = duration * h_grid * w_grid
    target_capacity = min(length, num_blocks * max(durations) * max(areas) + later)
    # The context loses at least one block's part in the context frames.
    lost = min(areas) * max(0, min(durations) - (duration - context_frames))
    context_capacity = context_frames * h_grid * w_grid - lost
    if max_keep is not None:
        context_capacity = min(context_capacity, max_keep)
    return _VJepaArgs(
        grid=grid,
        num_blocks=num_blocks,
        t_table=t_table,
        k_table=k_table,
        hw_tables=hw_tables,
        context_frames=context_frames,
        max_keep=max_keep,
        target_capacity=max(1, target_capacity),
        context_capacity=max(1, context_capacity),
    )


# ----------------------------------------------------------------------------------------------
# Samplers (one sample; vmapped).


def _index_set(mask: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array]:
    """[L] bool -> its tokens in raster order in the first slots of [K] ids, and [K] valid.

    The stable partition (the set's tokens, then the others, each in raster order) as the
    inverse of each token's slot, one scatter of ``iota`` (twice as fast as a packed sort of
    the 0/1 keys on CPU, measured at L=1568).
    """
    m = mask.astype(jnp.int32)
    count = jnp.sum(m)
    before = jnp.cumsum(m) - m  # the set's tokens before each token
    slot = jnp.where(mask, before, count + lax.iota(jnp.int32, m.shape[0]) - before)
    return _inverse_permutation(slot)[:capacity], lax.iota(jnp.int32, capacity) < count


def _ijepa_sizes(u: jax.Array, args: _IJepaArgs) -> jax.Array:
    """[2] uniforms -> [2, 2] int32: the target ``(h, w)`` and the context ``(h, w)``."""
    target = jnp.asarray(args.target_table.values, jnp.int32)[
        _lookup(u[0], args.target_table.breaks)
    ]
    context = jnp.asarray(args.context_table.values, jnp.int32)[
        _lookup(u[1], args.context_table.breaks)
    ]
    return jnp.stack([target, context])


def _uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """U[0, 1) float32 of ``shape``, drawn flat (a flat draw compiles several times faster)."""
    return jax.random.uniform(key, (math.prod(shape),)).reshape(shape)


def _boxes(corners: jax.Array, extent: jax.Array) -> jax.Array:
    """[..., d] corners and one [d] extent -> [..., 2d] boxes.

    Two pads and an add rather than a concatenation: under ``jax.vmap`` on an explicit-axis
    mesh the corners are batch-sharded while a per-batch extent is not, and a concatenation of
    the two is rejected there.
    """
    d = extent.shape[-1]
    pad = [(0, 0)] * (corners.ndim - 1)
    extent = extent.reshape((1,) * (corners.ndim - 1) + (d,))
    return jnp.pad(corners, [*pad, (0, d)]) + jnp.pad(extent, [*pad, (d, 0)])


def _ijepa_one(
    key: jax.Array, sizes: jax.Array, args: _IJepaArgs
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One image: (context [L], targets [M, L], context box [4], target boxes [M, 1, 4])."""
    h_grid, w_grid = args.grid
    m = args.num_targets
    (th, tw), (ch, cw) = sizes[0], sizes[1]
    attempts = _IJEPA_TIMEOUT * m + 1
    # One draw of uniforms for every corner (a single random-bits call keeps the program small);
    # floor(u * n) is uniform on {0, ..., n - 1}.
    u = _uniforms(key, (2, m + attempts))
    # Targets: corners randint(0, H - h), exclusive of H - h. Never rejected: their size is
    # fixed per draw and checked to exceed min_keep, so the reference's loop accepts the first.
    tops = _uniform_int(u[0, :m], h_grid - th)
    lefts = _uniform_int(u[1, :m], w_grid - tw)
    t_boxes = _boxes(jnp.stack([tops, lefts], axis=-1), sizes[0])  # [M, 4]
    targets = _box_masks(t_boxes, args.grid)  # [M, L]
    # Context: every attempt the reference could make, drawn at once. Attempt a is restricted
    # to the complement of the first max(M - a // 20, 0) targets; the first attempt keeping
    # more than min_keep tokens is the reference's. The last attempt is unrestricted, and its
    # block has more than min_keep tokens (checked), so it always succeeds.
    ctops = _uniform_int(u[0, m:], h_grid - ch)
    clefts = _uniform_int(u[1, m:], w_grid - cw)
    c_boxes = _boxes(jnp.stack([ctops, clefts], axis=-1), sizes[1])  # [A, 4]
    blocks = _box_masks(c_boxes, args.grid)  # [A, L]
    covered = jnp.cumsum(targets.astype(jnp.int32), axis=0) > 0  # union of the first k + 1
    covered = jnp.pad(covered, ((1, 0), (0, 0)))  # [M + 1, L]: row k = union of the first k
    levels = np.maximum(m - np.arange(attempts) // _IJEPA_TIMEOUT, 0)
    allowed = jnp.logical_not(covered[levels])  # [A, L]
    candidates = blocks & allowed
    ok = jnp.sum(candidates, axis=-1, dtype=jnp.int32) > args.min_keep
    first = jnp.argmax(ok)
    return candidates[first], targets, c_boxes[first], t_boxes[:, None, :]


def _vjepa_sizes(u: jax.Array, args: _VJepaArgs) -> jax.Array:
    """[3] uniforms -> [3] int32 ``(t, h, w)`` from the separate duration, area, aspect draws."""
    t = jnp.asarray(args.t_table.values, jnp.int32)[_lookup(u[0], args.t_table.breaks), 0]
    k = _lookup(u[1], args.k_table.breaks)
    width = max(len(table.breaks) for table in args.hw_tables)
    breaks = np.full((len(args.hw_tables), max(width, 1)), 2.0)
    values = np.zeros((len(args.hw_tables), width + 1, 2), np.int32)
    for i, table in enumerate(args.hw_tables):
        breaks[i, : len(table.breaks)] = table.breaks
        values[i, : len(table.values)] = table.values
        values[i, len(table.values) :] = table.values[-1]
    j = _lookup(u[2], jnp.asarray(breaks, jnp.float32)[k])
    hw = jnp.asarray(values)[k, j]
    return jnp.concatenate([t[None], hw])


def _vjepa_one(
    key: jax.Array, sizes: jax.Array, args: _VJepaArgs
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One clip: (context [L], targets [1, L], context box [6], target boxes [1, B, 6])."""
    duration, h_grid, w_grid = args.grid
    b, rounds = args.num_blocks, _VJEPA_ROUNDS
    u = _uniforms(key, (3, rounds, b))  # one draw for every corner
    # Corners randint(0, H - h + 1): inclusive of H - h (a block may touch the far edge).
    starts = _uniform_int(u[0], duration - sizes[0] + 1)
    tops = _uniform_int(u[1], h_grid - sizes[1] + 1)
    lefts = _uniform_int(u[2], w_grid - sizes[2] + 1)
    boxes = _boxes(jnp.stack([starts, tops, lefts], axis=-1), sizes)  # [R, B, 6]
    union = jnp.any(_box_masks(boxes, args.grid), axis=1)  # [R, L]
    frames = h_grid * w_grid
    later = np.arange(duration * frames) >= args.context_frames * frames  # static [L]
    contexts = jnp.logical_not(union) & jnp.logical_not(later.reshape(1, -1))  # [R, L]
    ok = jnp.any(contexts, axis=-1)
    first = jnp.where(jnp.any(ok), jnp.argmax(ok), rounds - 1)
    context = contexts[first]
    if args.max_keep is not None:  # the first max_keep context tokens in raster order
        context = context & (jnp.cumsum(context.astype(jnp.int32)) <= args.max_keep)
    target = union[first] | later
    # The same box for every clip: a constant (on a mesh it stays replicated, which costs no
    # communication).
    box = np.array([0, 0, 0, args.context_frames, h_grid, w_grid], np.int32)
    return context, target[None], jnp.asarray(box), boxes[first][None]


@functools.partial(jax.jit, static_argnames=("batch_size", "args", "per_sample_size"))
def _multiblock(
    key: jax.Array,
    size_key: jax.Array | None,
    *,
    batch_size: int,
    args: _IJepaArgs | _VJepaArgs,
    per_sample_size: bool,
) -> MultiBlockMasks:
    ijepa = isinstance(args, _IJepaArgs)
    draws = 2 if ijepa else 3  # I-JEPA: target and context sizes; V-JEPA: t, area, aspect
    sharding = _batch_sharding(key)
    if size_key is None and not per_sample_size:
        # One key: split into the batch's size key and the per-sample keys, in one split.
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        split = jax.random.split(key, batch_size + 1)
        size_key, keys = split[0], _to_batch_sharding(split[1:], sharding)
    else:
        keys = _per_sample_keys(key, batch_size, sharding)
    sample_size = _ijepa_sizes if ijepa else _vjepa_sizes
    one = _ijepa_one if ijepa else _vjepa_one

    def sample(k: jax.Array, sizes: jax.Array | None) -> tuple[jax.Array, ...]:
        if sizes is None:  # per-sample sizes: from a key derived from the sample's own
            sizes = sample_size(_uniforms(jax.random.fold_in(k, 1), (draws,)), args)  # type: ignore[arg-type]
        context, targets, c_box, t_boxes = one(k, sizes, args)  # type: ignore[arg-type]
        c_ids, c_valid = _index_set(context, args.context_capacity)
        t_ids, t_valid = jax.vmap(lambda t: _index_set(t, args.target_capacity))(targets)
        return context, targets, c_ids, c_valid, t_ids, t_valid, c_box, t_boxes

    if per_sample_size:
        out = jax.vmap(lambda k: sample(k, None))(keys)
    else:
        assert size_key is not None
        if not jnp.issubdtype(size_key.dtype, jax.dtypes.prng_key):
            size_key = jax.random.wrap_key_data(size_key)
        sizes = sample_size(_uniforms(size_key, (draws,)), args)  # type: ignore[arg-type]
        out = jax.vmap(sample, in_axes=(0, None))(keys, sizes)
    names = [f.name for f in dataclasses.fields(MultiBlockMasks)][:-1]  # the arrays
    return MultiBlockMasks(**dict(zip(names, out, strict=True)), grid=args.grid)


def _batch_min(fn: str, out: MultiBlockMasks) -> MultiBlockMasks:
    """The collators' ``cm[:min_keep]``: every index set cut to the batch's shortest."""
    arrays = (out.context_valid, out.target_valid)
    if any(_checks.is_traced(a) for a in arrays):
        raise TypeError(
            f"{fn}: truncate='batch_min' gives index sets whose length is the batch's smallest "
            "count, known only once the masks are drawn; it cannot run under jax.jit or "
            "jax.vmap. Call it outside the traced function and pass the index sets in, or use "
            "the default truncate=None (padded index sets with valid flags, static shapes)."
        )
    kc = int(np.asarray(out.context_valid).sum(-1).min())
    kt = int(np.asarray(out.target_valid).sum(-1).min())
    # Cut on the host and sent back: an eager slice would compile once per new length.
    cut = lambda a, k: jax.device_put(np.asarray(a)[..., :k], a.sharding)
    return dataclasses.replace(
        out,
        context_ids=cut(out.context_ids, kc),
        context_valid=cut(out.context_valid, kc),
        target_ids=cut(out.target_ids, kt),
        target_valid=cut(out.target_valid, kt),
    )


_IJEPA_ONLY = ("num_targets", "target_scale", "context_scale", "min_keep")
_VJEPA_ONLY = ("num_blocks", "spatial_scale", "temporal_scale", "max_temporal_keep", "max_keep")


def multiblock_masking(
    key: ArrayLike,
    batch_size: int,
    grid: int | tuple[int, ...],
    *,
    preset: Preset = "ijepa",
    size_key: ArrayLike | None = None,
    per_sample_size: bool = False,
    truncate: Literal["batch_min"] | None = None,
    num_targets: int | None = None,
    target_scale: float | tuple[float, float] | None = None,
    context_scale: float | tuple[float, float] | None = None,
    min_keep: int | None = None,
    num_blocks: int | None = None,
    spatial_scale: float | tuple[float, float] | None = None,
    temporal_scale: float | tuple[float, float] | None = None,
    max_temporal_keep: float | None = None,
    max_keep: int | None = None,
    aspect_ratio: float | tuple[float, float] | None = None,
) -> MultiBlockMasks:
    """Multi-block context and target masks of I-JEPA (images) and V-JEPA (video).

    A pure function of the keys, with static shapes: the masks the JEPA collators make on the
    host, drawn inside the jitted step. Token order is row-major (``l = h * W + w``, ``(t * H +
    h) * W + w`` for video). Written for one sample and ``jax.vmap``-ed over the batch.

    ``preset="ijepa"`` (grid ``(H, W)``) re-states I-JEPA's ``MaskCollator`` with the
    ViT-H/14 setup: ``num_targets=4`` target blocks at ``target_scale=(0.15, 0.2)``,
    ``aspect_ratio=(0.75, 1.5)``, one context block at ``context_scale=(0.85, 1.0)``, aspect 1,
    ``min_keep=10``, no overlap. Facts followed:

    * one block size per batch for the targets and one for the context, each from **one**
      uniform ``u`` that sets both the scale ``lo + u (hi - lo)`` and the aspect ratio ``lo +
      u (hi - lo)`` (they are correlated); ``max_keep = int(H * W * scale)``, ``h =
      round(sqrt(max_keep * ar))``, ``w = round(sqrt(max_keep / ar))``, then shrunk to at most
      ``H - 1`` and ``W - 1``;
    * corners ``randint(0, H - h)``, **exclusive** of ``H - h``: a block never touches the
      bottom or right edge;
    * the context is its block restricted to the complement of the targets, accepted when it
      keeps more than ``min_keep`` tokens; after 20 failures one target's complement (the last
      one) is dropped from the restriction, after 20 more the next, and so on. Here all
      ``20 * num_targets + 1`` attempts the reference can ever make are drawn at once and the
      first accepted one is taken (an exact, bounded construction: the last attempt is
      unrestricted and accepted). A target is never retried (its size is fixed, so the
      reference's check passes at once or loops forever); sizes that could hold ``min_keep``
      tokens or fewer are a ``ValueError`` here.

    ``preset="vjepa"`` (grid ``(T, H, W)``) re-states V-JEPA's ``multiblock3d`` with the
    pre-training setup's short-range config: ``num_blocks=8`` blocks at ``spatial_scale=0.15``,
    ``temporal_scale=1.0``, ``aspect_ratio=(0.75, 1.5)``; ``preset="vjepa_long"`` is the other
    config of the same setup (2 blocks at 0.7). V-JEPA draws both for every batch: call twice,
    with different keys. Facts followed:

    * one block size per batch from **separate** uniforms: duration ``t = max(1, int(T *
      temporal_scale))``, ``keep = int(H * W * spatial_scale)`` and the aspect ratio; ``h``,
      ``w`` as above but capped at ``H``, ``W`` (a block may span the grid);
    * corners ``randint(0, H - h + 1)``, **inclusive**; the target is the union of the
      ``num_blocks`` blocks (``M = 1`` target of ``B = num_blocks`` blocks) and every frame from
      ``int(T * max_temporal_keep)`` on; the context is the rest (its complement);
    * a clip whose context is empty is drawn again: here 10 rounds are drawn at once and the
      first with a context is taken (a bounded construction). If all 10 leave no context, the
      last is kept with an empty context (``context_valid`` all False). On the paper's
      ``(8, 14, 14)`` grid a ``vjepa_long`` round misses only when its two blocks are 14 x 10
      and side by side (2 of 25 corner pairs), so all 10 rounds miss with a chance below
      ``1e-10``; on other grids, check ``context_valid.any(-1)`` if blocks can cover it all;
    * ``max_keep`` keeps only the first ``max_keep`` context tokens in raster order (as the
      reference's truncation; ``context_mask`` shows the tokens kept).

    Block sizes: the reference draws them per batch from a generator seeded by the iteration.
    Here they come from ``size_key`` (one key, e.g. ``jax.random.fold_in(base, step)``), shared
    by the batch; positions come from ``key``, per sample. With one ``key`` and no
    ``size_key``, ``key`` is split into a size key and the per-sample keys. With a batch of
    keys (e.g. ``example_keys``) a ``size_key`` is required: the positions then follow the
    example, and the size follows the step. ``per_sample_size=True`` instead draws every
    sample's sizes from its own key, so its whole mask depends on that key alone (whatever the
    batch size, position or sharding), at the cost of the reference's per-batch sizes.

    Index sets: by default padded to a static capacity (the largest count the size tables
    allow), every set's tokens in raster order first and ``valid`` marking them, so no token is
    dropped. ``truncate="batch_min"`` cuts every context set to the batch's smallest context
    count and every target set to the smallest target count, the collators' ``cm[:min_keep]``
    exactly (a raster-order bias: the bottom-right tokens of larger sets are dropped); that
    length is known only once the masks are drawn, so it runs eagerly only (``TypeError`` under
    ``jax.jit``).

    Block sizes are drawn exactly: the step function from ``u`` to size is tabulated in Python
    (float64, the references' formulas) and looked up on device.

    Args:
      key: one PRNG key or a batch of ``batch_size`` keys (the positions of sample ``i`` depend
        on ``key[i]`` alone).
      batch_size: ``N`` (static).
      grid: ``(H, W)`` for ``"ijepa"`` (an int for a square grid), ``(T, H, W)`` for the
        V-JEPA presets (static).
      preset: ``"ijepa"``, ``"vjepa"`` or ``"vjepa_long"``; its values are the defaults of the
        arguments below.
      size_key: one key for the per-batch block sizes (required with a batch of keys unless
        ``per_sample_size``).
      per_sample_size: draw the sizes per sample from its key instead (static).
      truncate: ``None`` (padded) or ``"batch_min"`` (eager only).
      num_targets: I-JEPA's ``npred`` (static).
      target_scale: I-JEPA's ``pred_mask_scale``, a float or ``(lo, hi)`` in ``[0, 1]``.
      context_scale: I-JEPA's ``enc_mask_scale``.
      min_keep: I-JEPA's ``min_keep``: a context needs more tokens than this.
      num_blocks: V-JEPA's ``num_blocks`` per target.
      spatial_scale: V-JEPA's ``spatial_scale``, in ``[0, 1]``.
      temporal_scale: V-JEPA's ``temporal_scale``, in ``[0, 1]``.
      max_temporal_keep: V-JEPA's ``max_temporal_keep``: the context lies in the first
        ``max(1, int(T * max_temporal_keep))`` frames.
      max_keep: V-JEPA's ``max_keep``: at most this many context tokens (``None``: no limit).
      aspect_ratio: the targets' aspect range ``(lo, hi)``, ``0 < lo <= hi`` (both presets).

    Returns:
      A :class:`MultiBlockMasks`: ``context_mask`` [N, L] and ``target_masks`` [N, M, L] bool;
      ``context_ids``/``context_valid`` [N, Kc] and ``target_ids``/``target_valid`` [N, M, Kt]
      (int32 / bool); ``context_box`` [N, 2d]; ``target_boxes`` [N, M, B, 2d]. ``M = 4, B =
      1`` for I-JEPA, ``M = 1, B = num_blocks`` for V-JEPA.

    Raises:
      TypeError: traced or non-numeric static arguments, a bad key, or ``truncate="batch_min"``
        under a trace.
      ValueError: an unknown preset or truncate, a grid of the wrong rank, an argument of the
        other preset, ranges out of bounds, sizes that cannot beat ``min_keep``, a batch of
        keys without ``size_key`` (or with ``per_sample_size``), a key batch of the wrong
        length.

    Example:
      >>> import jax, jgather
      >>> out = jgather.multiblock_masking(jax.random.key(0), 2, (16, 16))
      >>> out.context_mask.shape, out.target_masks.shape, out.target_ids.shape
      ((2, 256), (2, 4, 256), (2, 4, 54))
      >>> bool((out.context_mask[:, None] & out.target_masks).any())  # no overlap
      False
      >>> x = jax.numpy.ones((2, 256, 8))
      >>> ids = out.target_ids.transpose(1, 0, 2)  # [M, N, K], mask-major
      >>> jgather.apply_masks(x, ids).shape
      (8, 54, 8)
      >>> v = jgather.multiblock_masking(jax.random.key(0), 2, (8, 14, 14), preset="vjepa")
      >>> v.context_mask.shape, v.target_masks.shape, v.target_boxes.shape
      ((2, 1568), (2, 1, 1568), (2, 1, 8, 6))

    References:
      Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding
      Predictive Architecture" (I-JEPA),
      https://arxiv.org/abs/2301.08243
      Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations
      from Video" (V-JEPA),
      https://arxiv.org/abs/2404.08471
    """
    fn = "multiblock_masking"
    if preset not in _PRESETS:
        raise ValueError(
            f"{fn}: unknown preset {preset!r}; expected 'ijepa', 'vjepa' or 'vjepa_long'."
        )
    if truncate not in (None, "batch_min"):
        raise ValueError(
            f"{fn}: unknown truncate {truncate!r}; expected None (padded index sets with valid "
            "flags) or 'batch_min' (cut to the batch's shortest, as the reference collators)."
        )
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    per_sample_size = _checks.static_bool(fn, "`per_sample_size`", per_sample_size)
    given = dict(
        num_targets=num_targets, target_scale=target_scale, context_scale=context_scale,
        min_keep=min_keep, num_blocks=num_blocks, spatial_scale=spatial_scale,
        temporal_scale=temporal_scale, max_temporal_keep=max_temporal_keep, max_keep=max_keep,
        aspect_ratio=aspect_ratio,
    )  # fmt: skip
    ijepa = preset == "ijepa"
    other = _VJEPA_ONLY if ijepa else _IJEPA_ONLY
    wrong = [name for name in other if given[name] is not None]
    if wrong:
        raise ValueError(
            f"{fn}: {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not an argument of "
            f"preset={preset!r}; pass {'a V-JEPA' if ijepa else 'the ijepa'} preset for "
            f"{'it' if len(wrong) == 1 else 'them'}."
        )
    p = {**_PRESETS[preset], **{k: v for k, v in given.items() if v is not None}}
    aspect = _range(fn, "aspect_ratio", p["aspect_ratio"], low=1e-6, high=math.inf)
    args: _IJepaArgs | _VJepaArgs
    if ijepa:
        if not (isinstance(grid, int) or len(grid) == 2):
            raise ValueError(
                f"{fn}: preset='ijepa' takes an image grid (H, W), got {grid!r}; for a video "
                "grid (T, H, W) use preset='vjepa'."
            )
        dims = _checks.static_grid(fn, "`grid`", grid, 2)
        args = _ijepa_args(
            fn,
            dims,
            _checks.static_int(fn, "`num_targets`", p["num_targets"], minimum=1),
            _range(fn, "target_scale", p["target_scale"], low=0.0, high=1.0),
            aspect,
            _range(fn, "context_scale", p["context_scale"], low=0.0, high=1.0),
            _checks.static_int(fn, "`min_keep`", p["min_keep"], minimum=0),
        )
    else:
        if isinstance(grid, int) or len(grid) != 3:
            raise ValueError(
                f"{fn}: preset={preset!r} takes a video grid (T, H, W), got {grid!r}; for an "
                "image use (1, H, W) or preset='ijepa'."
            )
        dims = _checks.static_grid(fn, "`grid`", grid, 3)
        keep = p["max_keep"]
        if keep is not None:
            keep = _checks.static_int(fn, "`max_keep`", keep, minimum=1)
        t_scale = _range(fn, "temporal_scale", p["temporal_scale"], low=0.0, high=1.0)
        args = _vjepa_args(
            fn,
            dims,
            _checks.static_int(fn, "`num_blocks`", p["num_blocks"], minimum=1),
            _range(fn, "spatial_scale", p["spatial_scale"], low=0.0, high=1.0),
            t_scale,
            aspect,
            _range(fn, "max_temporal_keep", p["max_temporal_keep"], low=0.0, high=1.0)[0],
            keep,
        )
    key = _check_key(fn, key, batch_size)
    batched = key.shape[: key.ndim - (0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1)]
    if size_key is not None:
        if per_sample_size:
            raise ValueError(
                f"{fn}: size_key draws one block size for the batch and per_sample_size=True "
                "draws one per sample from its key; pass one or the other."
            )
        size_key = _check_key(fn, size_key, 1)
        if size_key.shape not in ((), (2,)) or (
            size_key.dtype == jnp.uint32 and size_key.shape != (2,)
        ):
            raise ValueError(f"{fn}: size_key must be one key, got shape {size_key.shape}.")
    elif batched and not per_sample_size:
        raise ValueError(
            f"{fn}: with a batch of keys (one per example) the block size, which the reference "
            "draws once per batch, needs its own key: pass size_key=jax.random.fold_in(base, "
            "step) (one size per batch, as the reference), or per_sample_size=True (each "
            "example's size from its own key)."
        )
    out = _multiblock(
        key, size_key, batch_size=batch_size, args=args, per_sample_size=per_sample_size
    )
    return _batch_min(fn, out) if truncate == "batch_min" else out
