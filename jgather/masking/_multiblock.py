"""Multi-block masks of I-JEPA and V-JEPA: ``multiblock_masking``, the public face.

One module per paper: ``_ijepa`` (``IJepaConfig``, I-JEPA's ``MaskCollator``), ``_vjepa``
(``VJepaConfig``, V-JEPA's ``multiblock3d``); what they share (exact size tables, index sets,
the batch driver, the truncations, ``MultiBlockMasks``) is in ``_multiblock_common``. Boxes
become masks through ``_boxes``; ``apply_masks`` and its inverse are in ``_apply_masks``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking import _multiblock_common as common
from jgather.masking._ijepa import IJepaConfig
from jgather.masking._keys import check_key
from jgather.masking._multiblock_common import MultiBlockMasks
from jgather.masking._vjepa import VJepaConfig

__all__ = ["IJepaConfig", "MultiBlockMasks", "VJepaConfig", "multiblock_masking"]

Preset = Literal["ijepa", "vjepa", "vjepa_long"]
Truncate = Literal["batch_min", "batch_min_valid"]

_PRESETS: dict[str, IJepaConfig | VJepaConfig] = {
    # I-JEPA ViT-H/14 (configs/in1k_vith14_ep300.yaml).
    "ijepa": IJepaConfig(),
    # V-JEPA pre-training (configs/pretrain/vitl16.yaml): the short-range config and the
    # long-range one, drawn for the same batch.
    "vjepa": VJepaConfig(),
    "vjepa_long": VJepaConfig(num_blocks=2, spatial_scale=0.7),
}


def multiblock_masking(
    key: ArrayLike,
    batch_size: int,
    grid: int | tuple[int, ...],
    *,
    preset: Literal["ijepa", "vjepa", "vjepa_long"] | IJepaConfig | VJepaConfig = "ijepa",
    size_key: ArrayLike | None = None,
    per_sample_size: bool = False,
    truncate: Literal["batch_min", "batch_min_valid"] | None = None,
    **overrides: object,
) -> MultiBlockMasks:
    """Multi-block context and target masks of I-JEPA (images) and V-JEPA (video).

    The masks the JEPA collators make on the host, as a pure function of the keys with static
    shapes, so they are drawn inside the jitted step. Written for one sample and
    ``jax.vmap``-ed over the batch; tokens in row-major order (``l = h * W + w``, ``(t * H +
    h) * W + w`` for video).

    Args:
      key: one PRNG key (split inside) or a batch of ``batch_size`` keys (the positions of
        sample ``i`` then depend on ``key[i]`` alone, e.g. from ``example_keys``).
      batch_size: ``N`` (static).
      grid: ``(H, W)`` for I-JEPA (an int for a square grid), ``(T, H, W)`` for V-JEPA
        (static).
      preset: ``"ijepa"`` (I-JEPA ViT-H/14), ``"vjepa"`` or ``"vjepa_long"`` (V-JEPA's two
        pre-training configs), or an :class:`IJepaConfig` / :class:`VJepaConfig` for other
        settings.
      size_key: one key for the batch's block sizes (the references draw them once per batch).
        Required with a batch of keys unless ``per_sample_size``. For V-JEPA's two configs,
        pass the same ``size_key`` to both calls (and different keys): the reference draws
        both configs' sizes from the same uniforms.
      per_sample_size: draw each sample's sizes from its own key instead, so its whole mask
        depends on that key alone, whatever the batch size, position or sharding (static).
      truncate: ``None`` (index sets padded to a static capacity, ``valid`` marking the set's
        tokens), ``"batch_min"`` (every set cut to the batch's smallest count, the collators'
        ``cm[:min_keep]``; eager only) or ``"batch_min_valid"`` (the same tokens kept, in
        static shapes: ``valid &= slot < min(count over the batch)``; runs under ``jax.jit``).
      **overrides: deprecated: the config's fields (``num_targets=...``); pass
        ``preset=IJepaConfig(...)`` or ``VJepaConfig(...)`` instead.

    Returns:
      A :class:`MultiBlockMasks`: ``context_mask`` [N, L] and ``target_masks`` [N, M, L] bool;
      ``context_ids``/``context_valid`` [N, Kc] and ``target_ids``/``target_valid`` [N, M, Kt]
      (int32 / bool); ``context_box`` [N, 2d]; ``target_boxes`` [N, M, B, 2d]. ``M = 4, B =
      1`` for I-JEPA, ``M = 1, B = num_blocks`` for V-JEPA; ``IJepaConfig(num_contexts=C)``
      with ``C > 1`` adds a context axis: [N, C, L], [N, C, Kc], [N, C, 4].

    Raises:
      TypeError: traced or non-numeric static arguments, a bad key, or ``truncate="batch_min"``
        under a trace.
      ValueError: an unknown preset or truncate, a grid of the wrong rank, ranges out of
        bounds, sizes that cannot beat ``min_keep``, a batch of keys without ``size_key`` (or
        with ``per_sample_size``), a key batch of the wrong length.

    Example:
      >>> import jax, jgather
      >>> out = jgather.multiblock_masking(jax.random.key(0), 2, (16, 16))
      >>> out.context_mask.shape, out.target_masks.shape, out.target_ids.shape
      ((2, 256), (2, 4, 256), (2, 4, 54))
      >>> bool((out.context_mask[:, None] & out.target_masks).any())  # no overlap
      False
      >>> x = jax.numpy.ones((2, 256, 8))
      >>> jgather.apply_masks(x, out.target_ids, layout="NMK").shape  # [M * N, K, D]
      (8, 54, 8)
      >>> size_key, k1, k2 = jax.random.split(jax.random.key(1), 3)
      >>> short = jgather.multiblock_masking(
      ...     k1, 2, (8, 14, 14), preset="vjepa", size_key=size_key)
      >>> long = jgather.multiblock_masking(
      ...     k2, 2, (8, 14, 14), preset="vjepa_long", size_key=size_key)
      >>> short.target_boxes.shape, long.target_boxes.shape  # [N, M, B, 6]
      ((2, 1, 8, 6), (2, 1, 2, 6))

    Index sets: the padded default keeps every token of every set, so the encoder sees more
    context than the reference's, which cuts every set to the batch's smallest count. With
    I-JEPA's preset on a 14 x 14 grid (200 batches each): 81.9 context tokens per sample
    against the collator's 47.9 at batch size 256 (50.8 at 128, 56.2 at 32), and 0.48 of them
    in rows 7-13 against 0.18 (the raster-order cut keeps the top of each block). Pass
    ``truncate="batch_min_valid"`` (or ``"batch_min"``) for the reference's counts;
    ``batch_min_valid``'s minimum is over the whole batch, so on a batch-sharded mesh it is
    a collective (all-reduces of the context's and the targets' minimum counts).

    Block sizes are drawn exactly: the step function from the float32 uniform ``u`` to a size
    is tabulated in Python (the references' float64 formulas) at the smallest float32 ``u`` of
    each step, and looked up on device, so every ``u`` gives the reference's size. The facts
    each sampler follows are listed in :class:`IJepaConfig` and :class:`VJepaConfig`.

    References:
      Assran et al., "Self-Supervised Learning from Images with a Joint-Embedding
      Predictive Architecture" (I-JEPA),
      https://arxiv.org/abs/2301.08243
      Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations
      from Video" (V-JEPA),
      https://arxiv.org/abs/2404.08471
    """
    fn = "multiblock_masking"
    config = _config(fn, preset, overrides)
    _checks.one_of(
        fn,
        "truncate",
        truncate,
        (None, "batch_min", "batch_min_valid"),
        hint="None: padded index sets with valid flags; 'batch_min': cut to the batch's "
        "shortest, as the reference collators (eager); 'batch_min_valid': the same cut "
        "through the valid flags (jittable).",
    )
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    per_sample_size = _checks.static_bool(fn, "`per_sample_size`", per_sample_size)
    key = check_key(fn, key, batch_size)
    batched = key.shape[: key.ndim - (0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1)]
    if size_key is not None:
        if per_sample_size:
            raise ValueError(
                f"{fn}: size_key draws one block size for the batch and per_sample_size=True "
                "draws one per sample from its key; pass one or the other."
            )
        size_key = check_key(fn, size_key, 1)
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
    out = config._masks(fn, key, size_key, batch_size, grid, per_sample_size)
    if truncate == "batch_min":
        return common.batch_min(fn, out)
    if truncate == "batch_min_valid":
        return common.batch_min_valid(out)
    return out


def _config(fn: str, preset: Any, overrides: dict[str, Any]) -> IJepaConfig | VJepaConfig:
    """The preset as a config, with the deprecated keyword overrides applied."""
    config = _PRESETS.get(preset) if isinstance(preset, str) else preset
    if not isinstance(config, IJepaConfig | VJepaConfig):
        raise ValueError(
            f"{fn}: unknown preset {preset!r}; expected 'ijepa', 'vjepa', 'vjepa_long', an "
            "IJepaConfig or a VJepaConfig."
        )
    if not overrides:
        return config
    names = {f.name for f in dataclasses.fields(config)}
    wrong = sorted(set(overrides) - names)
    if wrong:
        raise ValueError(
            f"{fn}: {', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not an argument of "
            f"preset={preset!r}; pass a {type(config).__name__} field, or the other paper's "
            "config as the preset."
        )
    given = {k: v for k, v in overrides.items() if v is not None}  # None: the preset's
    kind = type(config).__name__
    warnings.warn(
        f"{fn}: passing the config's fields as keywords ({', '.join(sorted(overrides))}) is "
        f"deprecated; pass preset=jgather.{kind}(...) instead, e.g. "
        f"preset=jgather.{kind}({', '.join(f'{k}={v!r}' for k, v in sorted(given.items()))}).",
        DeprecationWarning,
        stacklevel=3,
    )
    return dataclasses.replace(config, **given)
