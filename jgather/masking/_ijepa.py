"""I-JEPA's multi-block masks: ``MaskCollator`` of ``src/masks/multiblock.py``, re-stated.

``IJepaConfig`` holds the collator's settings; ``multiblock_masking`` (``_multiblock``) takes it
as its ``preset``. The facts followed are listed in ``IJepaConfig``'s docstring.
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

# I-JEPA retries a context block 20 times per constraint level before dropping one target's
# complement from the acceptable region.
_TIMEOUT = 20


@dataclasses.dataclass(frozen=True)
class IJepaConfig:
    """I-JEPA's mask settings (its ``MaskCollator``), for ``multiblock_masking(preset=...)``.

    The defaults are the ViT-H/14 setup (``preset="ijepa"``). Grid ``(H, W)``.

    Attributes:
      num_targets: ``npred``, target blocks per image (``M``).
      target_scale: ``pred_mask_scale``, a float or ``(lo, hi)`` in ``[0, 1]``.
      aspect_ratio: the targets' aspect range ``(lo, hi)``, ``0 < lo <= hi``.
      context_scale: ``enc_mask_scale``; the context's aspect ratio is 1.
      min_keep: a context (and a target) needs more tokens than this.
      num_contexts: ``nenc``, context blocks per image (``C``); with ``C > 1`` the context
        fields of the result get a context axis after the batch.
      allow_overlap: ``allow_overlap``: the context block is not restricted to the targets'
        complement.

    Facts followed (I-JEPA's ``MaskCollator``):

    * one block size per batch for the targets and one for the context, each from **one**
      float32 uniform ``u`` that sets both the scale ``lo + u (hi - lo)`` and the aspect ratio
      ``lo + u (hi - lo)`` (they are correlated); ``max_keep = int(H * W * scale)``, ``h =
      round(sqrt(max_keep * ar))``, ``w = round(sqrt(max_keep / ar))`` (float64), then shrunk
      to at most ``H - 1`` and ``W - 1``;
    * corners ``randint(0, H - h)``, **exclusive** of ``H - h``: a block never touches the
      bottom or right edge;
    * each context is its block restricted to the complement of the targets, accepted when it
      keeps more than ``min_keep`` tokens; after 20 failures one target's complement (the last
      one) is dropped from the restriction, after 20 more the next, and so on. Here all ``20 *
      num_targets + 1`` attempts the reference can ever make are drawn at once and the first
      accepted one is taken (an exact, bounded construction: the last attempt is unrestricted
      and accepted). The ``num_contexts`` contexts are drawn alike and independently, against
      the same targets. With ``allow_overlap`` the block is the context (one attempt);
    * a target is never retried (its size is fixed, so the reference's check passes at once or
      loops forever); sizes that could hold ``min_keep`` tokens or fewer are a ``ValueError``.
    """

    num_targets: int = 4
    target_scale: float | tuple[float, float] = (0.15, 0.2)
    aspect_ratio: float | tuple[float, float] = (0.75, 1.5)
    context_scale: float | tuple[float, float] = (0.85, 1.0)
    min_keep: int = 10
    num_contexts: int = 1
    allow_overlap: bool = False

    def _masks(
        self,
        fn: str,
        key: jax.Array,
        size_key: jax.Array | None,
        batch_size: int,
        grid: int | tuple[int, ...],
        per_sample_size: bool,
    ) -> common.MultiBlockMasks:
        if not (isinstance(grid, int) or len(grid) == 2):
            raise ValueError(
                f"{fn}: an I-JEPA preset takes an image grid (H, W), got {grid!r}; for a video "
                "grid (T, H, W) use preset='vjepa'."
            )
        dims = _checks.static_grid(fn, "`grid`", grid, 2)
        args = _args(fn, dims, self._checked(fn))
        return _ijepa(
            key, size_key, batch_size=batch_size, args=args, per_sample_size=per_sample_size
        )

    def _checked(self, fn: str) -> _Settings:
        """The config's values validated and normalised (hashable, for the cache)."""
        return _Settings(
            num_targets=_checks.static_int(fn, "`num_targets`", self.num_targets, minimum=1),
            target_scale=_checks.static_range(
                fn, "target_scale", self.target_scale, low=0.0, high=1.0
            ),
            aspect_ratio=_checks.static_range(
                fn, "aspect_ratio", self.aspect_ratio, low=1e-6, high=float("inf")
            ),
            context_scale=_checks.static_range(
                fn, "context_scale", self.context_scale, low=0.0, high=1.0
            ),
            min_keep=_checks.static_int(fn, "`min_keep`", self.min_keep, minimum=0),
            num_contexts=_checks.static_int(fn, "`num_contexts`", self.num_contexts, minimum=1),
            allow_overlap=_checks.static_bool(fn, "`allow_overlap`", self.allow_overlap),
        )


def size_table(
    grid: tuple[int, ...], scale: tuple[float, float], aspect: tuple[float, float]
) -> common.StepTable:
    """I-JEPA's ``_sample_block_size``: one ``u`` sets both scale and aspect ratio."""
    h_grid, w_grid = grid
    area = h_grid * w_grid
    (s_lo, s_hi), (a_lo, a_hi) = scale, aspect

    def size(u: float) -> tuple[int, int]:
        keep = int(area * (s_lo + u * (s_hi - s_lo)))
        h, w = common.hw(keep, a_lo + u * (a_hi - a_lo))
        return min(h, h_grid - 1), min(w, w_grid - 1)  # "while h >= H: h -= 1"

    keeps = range(int(area * s_lo), int(area * s_hi) + 2)
    cands = common.linear_points(s_lo, s_hi, [k / area for k in keeps])
    for k in keeps:
        cands += common.linear_points(a_lo, a_hi, common.aspect_points(k, max(h_grid, w_grid)))
    return common.step_table(size, cands)


class _Settings(NamedTuple):
    num_targets: int
    target_scale: tuple[float, float]
    aspect_ratio: tuple[float, float]
    context_scale: tuple[float, float]
    min_keep: int
    num_contexts: int
    allow_overlap: bool


class _Args(NamedTuple):
    grid: tuple[int, ...]
    num_targets: int
    num_contexts: int
    allow_overlap: bool
    target_table: common.StepTable
    context_table: common.StepTable
    min_keep: int
    target_capacity: int
    context_capacity: int


@functools.cache
def _args(fn: str, grid: tuple[int, ...], config: _Settings) -> _Args:
    target = size_table(grid, config.target_scale, config.aspect_ratio)
    context = size_table(grid, config.context_scale, (1.0, 1.0))
    for what, table in (("target", target), ("context", context)):
        smallest = min(h * w for h, w in table.values)
        if smallest <= config.min_keep:
            raise ValueError(
                f"{fn}: a {what} block can have {smallest} tokens, not more than min_keep="
                f"{config.min_keep}; the reference would retry such a draw forever. Raise the "
                "scale, lower min_keep, or use a larger grid."
            )
    return _Args(
        grid=grid,
        num_targets=config.num_targets,
        num_contexts=config.num_contexts,
        allow_overlap=config.allow_overlap,
        target_table=target,
        context_table=context,
        min_keep=config.min_keep,
        target_capacity=max(h * w for h, w in target.values),
        context_capacity=max(h * w for h, w in context.values),
    )


def _sizes(u: jax.Array, args: _Args) -> jax.Array:
    """[2] uniforms -> [2, 2] int32: the target ``(h, w)`` and the context ``(h, w)``."""
    return jnp.stack(
        [common.lookup(u[0], args.target_table), common.lookup(u[1], args.context_table)]
    )


def _one(
    key: jax.Array, sizes: jax.Array, args: _Args
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """One image: (context [L] or [C, L], targets [M, L], context box [4] or [C, 4], target
    boxes [M, 1, 4])."""
    h_grid, w_grid = args.grid
    m, c = args.num_targets, args.num_contexts
    (th, tw), (ch, cw) = sizes[0], sizes[1]
    attempts = 1 if args.allow_overlap else _TIMEOUT * m + 1
    # One draw of uniforms for every corner (a single random-bits call keeps the program small);
    # floor(u * n) is uniform on {0, ..., n - 1}.
    u = common.uniforms(key, (2, m + c * attempts))
    # Targets: corners randint(0, H - h), exclusive of H - h. Never rejected: their size is
    # fixed per draw and checked to exceed min_keep, so the reference's loop accepts the first.
    tops = uniform_int(u[0, :m], h_grid - th)
    lefts = uniform_int(u[1, :m], w_grid - tw)
    t_boxes = common.boxes(jnp.stack([tops, lefts], axis=-1), sizes[0])  # [M, 4]
    targets = masks_of_boxes(t_boxes, args.grid)  # [M, L]
    # Contexts: every attempt the reference could make, drawn at once. Attempt a is restricted
    # to the complement of the first max(M - a // 20, 0) targets; the first attempt keeping
    # more than min_keep tokens is the reference's. The last attempt is unrestricted, and its
    # block has more than min_keep tokens (checked), so it always succeeds.
    ctops = uniform_int(u[0, m:], h_grid - ch).reshape(c, attempts)
    clefts = uniform_int(u[1, m:], w_grid - cw).reshape(c, attempts)
    c_boxes = common.boxes(jnp.stack([ctops, clefts], axis=-1), sizes[1])  # [C, A, 4]
    blocks = masks_of_boxes(c_boxes, args.grid)  # [C, A, L]
    if args.allow_overlap:  # unrestricted: the one attempt is accepted
        contexts, c_box = blocks[:, 0], c_boxes[:, 0]
    else:
        covered = jnp.cumsum(targets.astype(jnp.int32), axis=0) > 0  # union of the first k + 1
        covered = jnp.pad(covered, ((1, 0), (0, 0)))  # [M + 1, L]: row k = the first k's union
        levels = np.maximum(m - np.arange(attempts) // _TIMEOUT, 0)
        candidates = blocks & jnp.logical_not(covered[levels])[None]  # [C, A, L]
        ok = jnp.sum(candidates, axis=-1, dtype=jnp.int32) > args.min_keep
        first = jnp.argmax(ok, axis=-1)  # [C]
        pick = jax.vmap(lambda rows, i: rows[i])
        contexts, c_box = pick(candidates, first), pick(c_boxes, first)
    if c == 1:  # one context: no context axis
        contexts, c_box = contexts[0], c_box[0]
    return contexts, targets, c_box, t_boxes[:, None, :]


@functools.partial(jax.jit, static_argnames=("batch_size", "args", "per_sample_size"))
def _ijepa(
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
        draws=2,  # the target and the context sizes
        sizes=lambda u: _sizes(u, args),
        one=lambda k, s: _one(k, s, args),
        capacities=(args.context_capacity, args.target_capacity),
    )
