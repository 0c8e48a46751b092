"""SimMIM's masking: a random mask on a coarse grid, upsampled to the model's patch grid."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import shuffled_count

# --------------------------------------------------------------------------------------------
# SimMIM masking.
# --------------------------------------------------------------------------------------------


@functools.partial(jax.jit, static_argnames=("batch_size", "coarse", "scale", "mask_count"))
def _simmim_masking(
    key: jax.Array, batch_size: int, coarse: tuple[int, int], scale: int, mask_count: int
) -> jax.Array:
    gh, gw = coarse

    def one(k: jax.Array) -> jax.Array:
        m = shuffled_count(k, gh * gw, mask_count).reshape(gh, gw)
        return jnp.repeat(jnp.repeat(m, scale, axis=0), scale, axis=1).reshape(-1)

    return jax.vmap(one)(per_sample_keys(key, batch_size))


def simmim_masking(
    key: ArrayLike,
    batch_size: int,
    image_size: int | tuple[int, int] = 192,
    *,
    mask_patch_size: int = 32,
    model_patch_size: int = 4,
    mask_ratio: float = 0.6,
) -> jax.Array:
    """SimMIM masking: a random mask on a coarse grid, upsampled to the model's patch grid.

    Mirrors SimMIM's ``MaskGenerator``: ``ceil(coarse_count * mask_ratio)`` cells of
    ``mask_patch_size`` pixels are masked, then repeated onto the model's token grid.

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

    References:
      Xie et al., "SimMIM: A Simple Framework for Masked Image Modeling",
      https://arxiv.org/abs/2111.09886
    """
    fn = "simmim_masking"
    batch_size = _checks.static_int(fn, "`batch_size`", batch_size, minimum=1)
    size = _checks.static_grid(fn, "`image_size`", image_size, 2)
    mask_patch = _checks.static_int(fn, "`mask_patch_size`", mask_patch_size, minimum=1)
    model_patch = _checks.static_int(fn, "`model_patch_size`", model_patch_size, minimum=1)
    ratio = _checks.static_ratio(fn, "`mask_ratio`", mask_ratio)
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
    coarse = (size[0] // mask_patch, size[1] // mask_patch)
    mask_count = int(np.ceil(coarse[0] * coarse[1] * ratio))
    key = check_key(fn, key, batch_size)
    return _simmim_masking(key, batch_size, coarse, mask_patch // model_patch, mask_count)
