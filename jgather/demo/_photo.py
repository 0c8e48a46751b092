"""The bundled photograph, masked by one member of the masking family per figure row."""

from __future__ import annotations

import importlib.resources
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks
from jgather.masking import (
    apply_mask,
    block_masking,
    patchify,
    random_masking,
    simmim_masking,
    tube_masking,
    unpatchify,
    unshuffle,
)

#: Masking strategies the demo can draw, in figure-row order.
STRATEGIES = ("random", "tube", "block", "simmim")

#: Value (of 255) of the mask token that ``unshuffle`` writes back in the restored panel.
MASK_GREY = 128


class MaskedImage(NamedTuple):
    """One strategy applied to the photograph: what the figure's row is drawn from.

    Attributes:
      name: the strategy, one of :data:`STRATEGIES`.
      mask: [gh, gw] bool token grid, True where the token is masked.
      visible: [K, p, p, 3] uint8, the kept tokens in encoder (``x_masked``) order.
      restored: [H, W, 3] uint8, ``unshuffle(x_masked, ids_restore, grey)`` as an image.
    """

    name: str
    mask: np.ndarray
    visible: np.ndarray
    restored: np.ndarray


def load_sample_image() -> np.ndarray:
    """The bundled sample photograph (CC0; see ``jgather/data/NOTICE.md``).

    Returns:
      A ``uint8`` array of shape [224, 224, 3] (RGB).
    """
    resource = importlib.resources.files("jgather") / "data" / "chelsea_224.npy"
    with resource.open("rb") as f:
        return np.load(f, allow_pickle=False)


def _strategy_mask(
    name: str, key: jax.Array, image_size: int, patch_size: int, ratio: float
) -> jax.Array:
    """Boolean [1, L] mask (True = masked) drawn by one member of the masking family."""
    g = image_size // patch_size
    if name == "tube":
        # A still photo as a two-slice clip: one spatial mask repeated over both slices.
        mask = tube_masking(key, 1, (2, g, g), ratio)
        return mask.reshape(1, 2, g * g)[:, 0]
    if name == "block":
        target = int(ratio * g * g)
        return block_masking(key, 1, (g, g), target, min_num_patches=max(1, min(16, target)))
    if name == "simmim":
        # Coarse cells of two tokens a side where that leaves at least a 4 x 4 cell grid.
        double = 2 * patch_size
        coarse = double if image_size % double == 0 and image_size // double >= 4 else patch_size
        return simmim_masking(
            key,
            1,
            image_size,
            mask_patch_size=coarse,
            model_patch_size=patch_size,
            mask_ratio=ratio,
        )
    raise AssertionError(name)  # mask_image checked it


def _as_uint8(a: object) -> np.ndarray:
    return np.clip(np.round(np.asarray(a) * 255.0), 0, 255).astype(np.uint8)


def mask_image(
    image: np.ndarray, strategy: str, key: jax.Array, mask_ratio: float, patch_size: int
) -> MaskedImage:
    """Masks the photograph's tokens with one strategy and puts mask tokens back.

    ``random`` is MAE's ``random_masking``; the others draw a boolean mask (``tube_masking``
    on a two-slice clip, ``block_masking``, ``simmim_masking`` on cells of two tokens a side)
    and turn it into the same ``(x_masked, mask, ids_restore)`` triple with ``apply_mask``.
    The number of kept tokens is whatever the masking returns (``x_masked.shape[1]``).

    Args:
      image: ``uint8`` [H, W, 3], H = W a multiple of ``patch_size``.
      strategy: one of :data:`STRATEGIES`.
      key: PRNG key.
      mask_ratio: fraction of tokens to mask.
      patch_size: token side in pixels.

    Returns:
      A :class:`MaskedImage`.

    Raises:
      ValueError: an unknown strategy, a patch size that does not divide the image, or a
        ratio that leaves no token visible (the masking functions' own errors, or, for a
        strategy whose mask covers every token, this function's).

    Example:
      >>> import jax
      >>> row = mask_image(load_sample_image(), "random", jax.random.key(0), 0.75, 16)
      >>> row.mask.shape, int(row.mask.sum()), row.visible.shape
      ((14, 14), 147, (49, 16, 16, 3))
    """
    _checks.one_of("mask_image", "strategy", strategy, tuple(STRATEGIES))
    height, width, _ = image.shape
    pixels = jnp.asarray(image[None].astype(np.float32) / 255.0)  # [1, H, W, 3]
    tokens = patchify(pixels, patch_size)  # [1, L, p*p*3]; raises if p does not divide H, W
    grid = (height // patch_size, width // patch_size)
    if strategy == "random":
        masked = random_masking(key, tokens, mask_ratio)
    else:
        mask = _strategy_mask(strategy, key, height, patch_size, mask_ratio)
        num_keep = int(mask.size - np.asarray(mask).sum())
        if num_keep < 1:  # e.g. SimMIM rounds its masked count up and can cover everything
            raise ValueError(
                f"mask_image: mask_ratio={mask_ratio} masks every token with the {strategy} "
                "strategy; use a smaller ratio."
            )
        masked = apply_mask(tokens, mask, num_keep)
    grey = jnp.full((tokens.shape[-1],), MASK_GREY / 255.0, jnp.float32)
    full = unshuffle(masked.x_masked, masked.ids_restore, grey, num_prefix=0)  # [1, L, p*p*3]
    restored = unpatchify(full, patch_size, 3, grid=grid)[0]
    visible = _as_uint8(masked.x_masked[0]).reshape(-1, patch_size, patch_size, 3)
    return MaskedImage(
        strategy,
        np.asarray(masked.mask[0]).astype(bool).reshape(grid),
        visible,
        _as_uint8(restored),
    )
