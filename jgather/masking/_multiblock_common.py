"""What I-JEPA's and V-JEPA's multi-block samplers share: size tables, index sets, the driver.

* Exact step tables of the block-size draws. The references map a float32 uniform ``u``
  (``torch.rand(1).item()``, a float32 value read as a Python float) to a size by float64
  formulas (``int``, ``round``, ``sqrt``) whose value changes at finitely many ``u``.
  ``step_table`` finds those points in Python, then moves each to the smallest float32 ``u``
  that takes the next value (a bisection over float32 bit patterns, evaluating the
  reference's own formula), so ``u >= break`` on device gives the reference's size for every
  float32 ``u``: no float formula on device, no rounding differences between platforms, and
  the static capacities of the index sets are the exact maxima over the table.
* ``MultiBlockMasks``, the result, and the index sets built from masks.
* ``draw``: the batch driver (keys, per-batch or per-sample sizes, ``vmap`` over samples);
  each paper's module supplies its size lookup and its one-sample sampler.
* The two truncations of the collators' ``cm[:min_keep]``: eager (``batch_min``) and through
  the valid flags (``batch_min_valid``, static shapes).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _checks
from jgather.masking._keys import per_sample_keys
from jgather.masking._permutation import inverse_permutation
from jgather.masking._placement import batch_sharding, to_batch_sharding

# ----------------------------------------------------------------------------------------------
# Exact step tables (static, Python float64 on float32 inputs).


class StepTable(NamedTuple):
    """A step function of a float32 ``u`` in [0, 1): ``values[sum(u >= breaks)]``."""

    breaks: tuple[float, ...]  # float32 values (exact as Python floats), non-decreasing
    values: tuple[tuple[int, ...], ...]


_ONE_BITS = int(np.float32(1.0).view(np.int32))


def _f32(bits: int) -> float:
    return float(np.int32(bits).view(np.float32))


def _first_f32(f: Callable[[float], tuple[int, ...]], left: tuple[int, ...], at: float) -> float:
    """The smallest float32 ``u`` near ``at`` where ``f`` leaves ``left`` (bisection on bits).

    Positive float32 values are ordered as their bit patterns, so the bisection runs over
    integers; the window is widened until ``f`` is ``left`` at its low end and not at its high.
    """
    mid = int(np.float32(at).view(np.int32))
    width = 4
    while True:
        lo, hi = max(mid - width, 0), min(mid + width, _ONE_BITS - 1)
        if (lo == 0 or f(_f32(lo)) == left) and f(_f32(hi)) != left:
            break
        if lo == 0 and hi == _ONE_BITS - 1:
            return _f32(hi)  # no change inside [0, 1): the break is unreachable
        width *= 4
    if lo == 0 and f(0.0) != left:
        return 0.0
    while hi - lo > 1:
        m = (lo + hi) // 2
        if f(_f32(m)) == left:
            lo = m
        else:
            hi = m
    return _f32(hi)


def step_table(f: Callable[[float], tuple[int, ...]], candidates: Sequence[float]) -> StepTable:
    """The step function ``f`` on float32 ``u`` in [0, 1) given a superset of its change points.

    ``f`` is the reference's formula in Python floats. It is evaluated inside each interval
    between sorted candidates (neighbouring intervals with one value are merged); each change
    point is then moved to the smallest float32 ``u`` that takes the new value.
    """
    points = sorted({c for c in candidates if 0.0 < c < 1.0})
    edges = [0.0, *points, 1.0]
    breaks: list[float] = []
    values: list[tuple[int, ...]] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        value = f(lo + (hi - lo) / 2)
        if values and values[-1] == value:
            continue
        if values:
            breaks.append(max(_first_f32(f, values[-1], lo), breaks[-1] if breaks else 0.0))
        values.append(value)
    return StepTable(tuple(breaks), tuple(values))


def linear_points(lo: float, hi: float, targets: Sequence[float]) -> list[float]:
    """The ``u`` at which ``lo + u * (hi - lo)`` equals each target (none if constant)."""
    if hi == lo:
        return []
    return [(t - lo) / (hi - lo) for t in targets]


def hw(keep: int, ar: float) -> tuple[int, int]:
    """Both references: ``h = round(sqrt(keep * ar))``, ``w = round(sqrt(keep / ar))``."""
    return round(math.sqrt(keep * ar)), round(math.sqrt(keep / ar))


def aspect_points(keep: int, extent: int) -> list[float]:
    """The aspect ratios where ``hw(keep, ar)`` can change (``sqrt`` crossing a half)."""
    if keep <= 0:
        return []
    halves = [(j + 0.5) ** 2 for j in range(extent + 1)]
    return [x / keep for x in halves] + [keep / x for x in halves]


def lookup(u: jax.Array, table: StepTable) -> jax.Array:
    """A scalar float32 ``u`` -> [d] int32: ``table``'s first value plus every step whose
    break ``u`` reached.

    No gather, so the constant tables stay replicated on any mesh; and the result is computed
    from ``u`` even for a table without breaks (one unreachable break of 2), so it is placed
    like ``u`` (batch-sharded with per-sample sizes) and combines with the other sizes.
    """
    values = np.asarray(table.values, np.int32)
    breaks = np.asarray(table.breaks or (2.0,), np.float32)
    steps = np.diff(values, axis=0) if table.breaks else np.zeros_like(values)
    reached = (u >= jnp.asarray(breaks)).astype(jnp.int32)  # [V - 1]
    return jnp.asarray(values[0]) + jnp.sum(reached[:, None] * jnp.asarray(steps), axis=0)


def interval(u: jax.Array, table: StepTable) -> jax.Array:
    """The index of ``u``'s interval in ``table``: ``sum(u >= breaks)`` (int32 scalar)."""
    if not table.breaks:
        return jnp.zeros((), jnp.int32)
    return jnp.sum(u >= jnp.asarray(table.breaks, jnp.float32), dtype=jnp.int32)


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
    mask or loss weight. With ``truncate="batch_min"`` every slot is valid; with
    ``truncate="batch_min_valid"`` the first ``min(count over the batch)`` slots are.

    Attributes:
      context_mask: [N, L] bool, the context of each sample ([N, C, L] for an I-JEPA config
        with ``num_contexts=C > 1``; the context axis below likewise).
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
# Static argument checks.


# ----------------------------------------------------------------------------------------------
# Pieces of the one-sample samplers.


def uniforms(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """U[0, 1) float32 of ``shape``, drawn flat (a flat draw compiles several times faster)."""
    return jax.random.uniform(key, (math.prod(shape),)).reshape(shape)


def boxes(corners: jax.Array, extent: jax.Array) -> jax.Array:
    """[..., d] corners and one [d] extent -> [..., 2d] boxes.

    Two pads and an add rather than a concatenation: under ``jax.vmap`` on an explicit-axis
    mesh the corners are batch-sharded while a per-batch extent is not, and a concatenation of
    the two is rejected there.
    """
    d = extent.shape[-1]
    pad = [(0, 0)] * (corners.ndim - 1)
    extent = extent.reshape((1,) * (corners.ndim - 1) + (d,))
    return jnp.pad(corners, [*pad, (0, d)]) + jnp.pad(extent, [*pad, (d, 0)])


def index_set(mask: jax.Array, capacity: int) -> tuple[jax.Array, jax.Array]:
    """[..., L] bool -> its tokens in raster order in the first slots of [..., K] ids, and valid.

    The stable partition (the set's tokens, then the others, each in raster order) as the
    inverse of each token's slot, one scatter of ``iota`` (twice as fast as a packed sort of
    the 0/1 keys on CPU, measured at L=1568).
    """
    if mask.ndim > 1:
        return jax.vmap(lambda m: index_set(m, capacity))(mask)
    m = mask.astype(jnp.int32)
    count = jnp.sum(m)
    before = jnp.cumsum(m) - m  # the set's tokens before each token
    slot = jnp.where(mask, before, count + lax.iota(jnp.int32, m.shape[0]) - before)
    return inverse_permutation(slot)[:capacity], lax.iota(jnp.int32, capacity) < count


# One sample: (key, sizes) -> (context, targets, context box, target boxes).
Sampler = Callable[[jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array, jax.Array]]


def draw(
    key: jax.Array,
    size_key: jax.Array | None,
    *,
    batch_size: int,
    grid: tuple[int, ...],
    per_sample_size: bool,
    draws: int,
    sizes: Callable[[jax.Array], jax.Array],
    one: Sampler,
    capacities: tuple[int, int],
) -> MultiBlockMasks:
    """The batch: keys, the per-batch (or per-sample) sizes from ``draws`` uniforms, and the
    one-sample sampler ``one`` ``vmap``-ed over the samples. Called inside a jitted core."""
    sharding = batch_sharding(key)
    if size_key is None and not per_sample_size:
        # One key: split into the batch's size key and the per-sample keys, in one split.
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(key)
        split = jax.random.split(key, batch_size + 1)
        size_key, keys = split[0], to_batch_sharding(split[1:], sharding)
    else:
        keys = per_sample_keys(key, batch_size, sharding)
    context_capacity, target_capacity = capacities

    def sample(k: jax.Array, drawn: jax.Array) -> tuple[jax.Array, ...]:
        context, targets, c_box, t_boxes = one(k, drawn)
        c_ids, c_valid = index_set(context, context_capacity)
        t_ids, t_valid = index_set(targets, target_capacity)
        return context, targets, c_ids, c_valid, t_ids, t_valid, c_box, t_boxes

    if per_sample_size:  # each sample's sizes from a key derived from its own
        out = jax.vmap(lambda k: sample(k, sizes(uniforms(jax.random.fold_in(k, 1), (draws,)))))(
            keys
        )
    else:
        assert size_key is not None  # set above
        if not jnp.issubdtype(size_key.dtype, jax.dtypes.prng_key):
            size_key = jax.random.wrap_key_data(size_key)
        out = jax.vmap(sample, in_axes=(0, None))(keys, sizes(uniforms(size_key, (draws,))))
    names = [f.name for f in dataclasses.fields(MultiBlockMasks)][:-1]  # the arrays
    return MultiBlockMasks(**dict(zip(names, out, strict=True)), grid=grid)


# ----------------------------------------------------------------------------------------------
# The collators' truncation.


def batch_min(fn: str, out: MultiBlockMasks) -> MultiBlockMasks:
    """The collators' ``cm[:min_keep]``: every index set cut to the batch's shortest (eager)."""
    arrays = (out.context_valid, out.target_valid)
    if any(_checks.is_traced(a) for a in arrays):
        raise TypeError(
            f"{fn}: truncate='batch_min' gives index sets whose length is the batch's smallest "
            "count, known only once the masks are drawn; it cannot run under jax.jit or "
            "jax.vmap. Use truncate='batch_min_valid' (the same tokens kept, marked by the "
            "valid flags, static shapes), or call it outside the traced function."
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


@jax.jit
def batch_min_valid(out: MultiBlockMasks) -> MultiBlockMasks:
    """``batch_min`` in static shapes: ``valid &= slot < min(count over the batch)``."""

    def cut(valid: jax.Array) -> jax.Array:
        shortest = jnp.min(jnp.sum(valid, axis=-1, dtype=jnp.int32))
        return valid & (lax.broadcasted_iota(jnp.int32, valid.shape, valid.ndim - 1) < shortest)

    return dataclasses.replace(
        out, context_valid=cut(out.context_valid), target_valid=cut(out.target_valid)
    )
