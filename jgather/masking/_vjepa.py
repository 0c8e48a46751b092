"""V-JEPA's multi-block masks: ``_MaskGenerator`` of ``src/masks/multiblock3d.py``, re-stated.

``VJepaConfig`` holds one entry of the collator's ``cfgs_mask``; ``multiblock_masking``
(``_multiblock``) takes it as its ``preset``. The facts followed are listed in its docstring.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks
from jgather.masking import _multiblock_common as common
from jgather.masking._boxes import masks_of_boxes
from jgather.masking._keys import uniform_int

# V-JEPA resamples a clip's target blocks while its context is empty; here a fixed number of
# rounds is drawn at once (see VJepaConfig's docstring for the chance of running out).
_ROUNDS = 10


@dataclasses.dataclass(frozen=True)
class VJepaConfig:
    """One of V-JEPA's mask configs (``cfgs_mask``), for ``multiblock_masking(preset=...)``.

    The defaults are the pre-training setup's short-range config (``preset="vjepa"``);
    ``preset="vjepa_long"`` is ``VJepaConfig(num_blocks=2, spatial_scale=0.7)``, the setup's
    other config. Grid ``(T, H, W)``.

    Attributes:
      num_blocks: blocks per target (``B``; the target is their union, ``M = 1``).
      spatial_scale: ``spatial_scale``, a float or ``(lo, hi)`` in ``[0, 1]``.
      temporal_scale: ``temporal_scale``, in ``[0, 1]``.
      aspect_ratio: the blocks' aspect range ``(lo, hi)``, ``0 < lo <= hi``.
      max_temporal_keep: the context lies in the first ``max(1, int(T * max_temporal_keep))``
        frames.
      max_keep: at most this many context tokens (``None``: no limit).

    Facts followed (V-JEPA's ``_MaskGenerator``):

    * one block size per batch from **separate** float32 uniforms: duration ``t = max(1, int(T
      * temporal_scale))``, ``keep = int(H * W * spatial_scale)`` and the aspect ratio; ``h``,
      ``w`` as I-JEPA's (float64) but capped at ``H``, ``W`` (a block may span the grid);
    * the collator's configs all draw their sizes from generators seeded by the same iteration
      counter, so they share the three uniforms: pass one ``size_key`` to every config's call;
    * corners ``randint(0, H - h + 1)``, **inclusive**; the target is the union of the
      ``num_blocks`` blocks and every frame from ``int(T * max_temporal_keep)`` on; the context
      is the rest (its complement);
    * a clip whose context is empty is drawn again: here 10 rounds are drawn at once and the
      first with a context is taken (a bounded construction). If all 10 leave no context, the
      last is kept with an empty context (``context_valid`` all False). On the paper's ``(8,
      14, 14)`` grid only ``vjepa_long`` rounds can miss, in two ways: its blocks are 14 x 10
      (``h x w``, drawn for 22.6% of batches) and side by side, or 10 x 14 (0.23% of
      batches) and stacked, 2 of 25 corner pairs either way; all 10 rounds then miss with a
      chance ``(2 / 25) ** 10``, about ``1.1e-11``. On other grids check
      ``context_valid.any(-1)`` if blocks can cover it all;
    * ``max_keep`` keeps only the first ``max_keep`` context tokens in raster order (as the
      reference's truncation; ``context_mask`` shows the tokens kept).
    """

    num_blocks: int = 8
    spatial_scale: float | tuple[float, float] = 0.15
    temporal_scale: float | tuple[float, float] = 1.0
    aspect_ratio: float | tuple[float, float] = (0.75, 1.5)
    max_temporal_keep: float = 1.0
    max_keep: int | None = None

    def _masks(
        self,
        fn: str,
        key: jax.Array,
        size_key: jax.Array | None,
        batch_size: int,
        grid: int | tuple[int, ...],
        per_sample_size: bool,
    ) -> common.MultiBlockMasks:
        if isinstance(grid, int) or len(grid) != 3:
            raise ValueError(
                f"{fn}: a V-JEPA preset takes a video grid (T, H, W), got {grid!r}; for an "
                "image use (1, H, W) or preset='ijepa'."
            )
        dims = _checks.static_grid(fn, "`grid`", grid, 3)
        args = _args(dims, self._checked(fn))
        return _vjepa(
            key, size_key, batch_size=batch_size, args=args, per_sample_size=per_sample_size
        )

    def _checked(self, fn: str) -> _Settings:
        """The config's values validated and normalised (hashable, for the cache)."""
        keep = self.max_keep
        if keep is not None:
            keep = _checks.static_int(fn, "`max_keep`", keep, minimum=1)
        return _Settings(
            num_blocks=_checks.static_int(fn, "`num_blocks`", self.num_blocks, minimum=1),
            spatial_scale=_checks.static_range(
                fn, "spatial_scale", self.spatial_scale, low=0.0, high=1.0
            ),
            temporal_scale=_checks.static_range(
                fn, "temporal_scale", self.temporal_scale, low=0.0, high=1.0
            ),
            aspect_ratio=_checks.static_range(
                fn, "aspect_ratio", self.aspect_ratio, low=1e-6, high=float("inf")
            ),
            max_temporal_keep=_checks.static_range(
                fn, "max_temporal_keep", self.max_temporal_keep, low=0.0, high=1.0
            )[0],
            max_keep=keep,
        )


class _Settings(NamedTuple):
    num_blocks: int
    spatial_scale: tuple[float, float]
    temporal_scale: tuple[float, float]
    aspect_ratio: tuple[float, float]
    max_temporal_keep: float
    max_keep: int | None


class Tables(NamedTuple):
    duration: common.StepTable  # of u_t: (t,)
    keep: common.StepTable  # of u_s: (keep,)
    hw: tuple[common.StepTable, ...]  # per keep count, of u_a: (h, w)


def size_tables(grid: tuple[int, ...], config: _Settings) -> Tables:
    """V-JEPA's ``_sample_block_size``: separate uniforms for duration, area and aspect."""
    duration, h_grid, w_grid = grid
    area = h_grid * w_grid
    (t_lo, t_hi), (s_lo, s_hi) = config.temporal_scale, config.spatial_scale
    a_lo, a_hi = config.aspect_ratio
    t_table = common.step_table(
        lambda u: (max(1, int(duration * (t_lo + u * (t_hi - t_lo)))),),
        common.linear_points(t_lo, t_hi, [k / duration for k in range(duration + 2)]),
    )
    keeps = range(int(area * s_lo), int(area * s_hi) + 2)
    k_table = common.step_table(
        lambda u: (int(area * (s_lo + u * (s_hi - s_lo))),),
        common.linear_points(s_lo, s_hi, [k / area for k in keeps]),
    )
    hw_tables = []
    for (keep,) in k_table.values:

        def size(u: float, keep: int = keep) -> tuple[int, int]:
            h, w = common.hw(keep, a_lo + u * (a_hi - a_lo))
            return min(h, h_grid), min(w, w_grid)

        points = common.aspect_points(keep, max(h_grid, w_grid))
        hw_tables.append(common.step_table(size, common.linear_points(a_lo, a_hi, points)))
    return Tables(t_table, k_table, tuple(hw_tables))


class _Args(NamedTuple):
    grid: tuple[int, ...]
    num_blocks: int
    tables: Tables
    context_frames: int
    max_keep: int | None
    target_capacity: int
    context_capacity: int


@functools.cache
def _args(grid: tuple[int, ...], config: _Settings) -> _Args:
    duration, h_grid, w_grid = grid
    tables = size_tables(grid, config)
    context_frames = max(1, int(duration * config.max_temporal_keep))
    later = (duration - context_frames) * h_grid * w_grid
    durations = [t for (t,) in tables.duration.values]
    areas = [h * w for table in tables.hw for h, w in table.values]
    length = duration * h_grid * w_grid
    target_capacity = min(length, config.num_blocks * max(durations) * max(areas) + later)
    # The context loses at least one block's part in the context frames.
    lost = min(areas) * max(0, min(durations) - (duration - context_frames))
    context_capacity = context_frames * h_grid * w_grid - lost
    if config.max_keep is not None:
        context_capacity = min(context_capacity, config.max_keep)
    return _Args(
        grid=grid,
        num_blocks=config.num_blocks,
        tables=tables,
        context_frames=context_frames,
        max_keep=config.max_keep,
        target_capacity=max(1, target_capacity),
        context_capacity=max(1, context_capacity),
    )


def _sizes(u: jax.Array, tables: Tables) -> jax.Array:
    """[3] uniforms -> [3] int32 ``(t, h, w)`` from the separate duration, area, aspect draws.

    Every keep count's ``(h, w)`` table is looked up at once (padded to one width) and the
    drawn keep count's row selected by a one-hot sum: no gather, so replicated constants
    meet batch-sharded uniforms on any mesh.
    """
    t = common.lookup(u[0], tables.duration)
    width = max(1, *(len(table.breaks) for table in tables.hw))
    breaks = np.full((len(tables.hw), width), 2.0, np.float32)  # 2.0: never reached
    steps = np.zeros((len(tables.hw), width, 2), np.int32)
    first = np.zeros((len(tables.hw), 2), np.int32)
    for i, table in enumerate(tables.hw):
        values = np.asarray(table.values, np.int32)
        breaks[i, : len(table.breaks)] = table.breaks
        steps[i, : len(table.breaks)] = np.diff(values, axis=0)
        first[i] = values[0]
    reached = (u[2] >= jnp.asarray(breaks)).astype(jnp.int32)  # [K, width]
    hws = jnp.asarray(first) + jnp.sum(reached[..., None] * jnp.asarray(steps), axis=1)
    pick = common.interval(u[1], tables.keep) == jnp.arange(len(tables.hw))  # [K]
    hw = jnp.sum(jnp.where(pick[:, None], hws, 0), axis=0)
    return jnp.concatenate([t, hw])


def _one(
    key: jax.Array, sizes: jax.Array, args: _Args
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One clip: (context [L], targets [1, L], context box [6], target boxes [1, B, 6])."""
    duration, h_grid, w_grid = args.grid
    b, rounds = args.num_blocks, _ROUNDS
    u = common.uniforms(key, (3, rounds, b))  # one draw for every corner
    # Corners randint(0, H - h + 1): inclusive of H - h (a block may touch the far edge).
    starts = uniform_int(u[0], duration - sizes[0] + 1)
    tops = uniform_int(u[1], h_grid - sizes[1] + 1)
    lefts = uniform_int(u[2], w_grid - sizes[2] + 1)
    boxes = common.boxes(jnp.stack([starts, tops, lefts], axis=-1), sizes)  # [R, B, 6]
    union = jnp.any(masks_of_boxes(boxes, args.grid), axis=1)  # [R, L]
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
def _vjepa(
    key: jax.Array,
    size_key: jax.Array | None,
    *,
    batch_size: int,
    args: _Args,
    per_sample_size: bool,
) -> common.MultiBlockMasks:
    return common.draw(
        key,
        size_key,
        batch_size=batch_size,
        grid=args.grid,
        per_sample_size=per_sample_size,
        draws=3,  # duration, area, aspect ratio
        sizes=lambda u: _sizes(u, args.tables),
        one=lambda k, s: _one(k, s, args),
        capacities=(args.context_capacity, args.target_capacity),
    )
