"""Evaluation: held-out loss against two baselines, and images for display."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jgather


def normalize_patches(patches: jax.Array) -> jax.Array:
    """Each patch minus its mean, over its unbiased std (eps 1e-6): the norm_pix_loss target."""
    mean = patches.mean(axis=-1, keepdims=True)
    var = patches.var(axis=-1, keepdims=True, ddof=1)
    return (patches - mean) / jnp.sqrt(var + 1e-6)


def evaluate(
    graphdef: Any,
    params: Any,
    images: np.ndarray,
    *,
    train_images: np.ndarray,
    seed: int = 1234,
    repeats: int = 4,
) -> dict[str, float]:
    """Held-out reconstruction loss on the masked patches, next to two baselines.

    Every number is ``jgather.mae_loss`` (per-patch MSE averaged over the *masked* patches) in
    the space the model is trained in (pixels, or per-patch normalised pixels when
    ``norm_pix_loss``), on the same masks, averaged over ``repeats`` mask draws:

    * ``loss``: the model's prediction.
    * ``patch_mean``: each masked patch predicted by its own mean value (the best constant for
      that patch; it peeks at the target, so it is an oracle for a constant-per-patch guess).
      Its loss is the mean within-patch variance. With ``norm_pix_loss`` this prediction is 0.
    * ``train_mean_patch``: each masked patch predicted by the training set's mean patch at
      that position (the best guess that ignores the visible patches).

    Returns:
      ``{"loss", "patch_mean", "train_mean_patch"}`` as floats.
    """
    config = nnx.merge(graphdef, params).config
    norm_pix, patch_size = config.norm_pix_loss, config.patch_size

    def in_loss_space(p: jax.Array) -> jax.Array:
        return normalize_patches(p) if norm_pix else p

    train_patches = in_loss_space(jgather.patchify(jnp.asarray(train_images), patch_size))
    mean_patch = train_patches.mean(axis=0)  # [L, P]

    @jax.jit
    def one_draw(params, key):
        model = nnx.merge(graphdef, params)
        pred, mask, target = model(jnp.asarray(images), key)
        space = in_loss_space(target)
        own_mean = jnp.broadcast_to(space.mean(axis=-1, keepdims=True), space.shape)
        train_mean = jnp.broadcast_to(mean_patch[None], space.shape)
        losses = {
            "loss": jgather.mae_loss(pred=pred, target=target, mask=mask, norm_pix_loss=norm_pix),
            "patch_mean": jgather.mae_loss(
                pred=own_mean, target=target, mask=mask, norm_pix_loss=norm_pix
            ),
            "train_mean_patch": jgather.mae_loss(
                pred=train_mean, target=target, mask=mask, norm_pix_loss=norm_pix
            ),
        }
        return losses

    keys = jax.random.split(jax.random.key(seed), repeats)
    draws = jax.device_get([one_draw(params, k) for k in keys])
    return {name: float(np.mean([d[name] for d in draws])) for name in draws[0]}


def reconstruct(
    graphdef: Any, params: Any, images: np.ndarray, *, seed: int = 1234
) -> dict[str, np.ndarray]:
    """Original, masked and reconstructed images for display, each [n, H, W, C].

    ``masked`` has removed patches set to NaN (show them as blank). ``reconstruction`` pastes
    the model's predictions into the masked patches and keeps the visible ones; with
    ``norm_pix_loss`` the predictions are mapped back to pixels with each target patch's own
    mean and std (as MAE's visualisation does; that peeks at the target's statistics).
    """
    model = nnx.merge(graphdef, params)
    c = model.config
    pred, mask, target = model(jnp.asarray(images), jax.random.key(seed))
    if c.norm_pix_loss:
        mean = target.mean(axis=-1, keepdims=True)
        std = jnp.sqrt(target.var(axis=-1, keepdims=True, ddof=1) + 1e-6)
        pred = pred * std + mean
    removed = mask[:, :, None] > 0
    masked = jnp.where(removed, jnp.nan, target)
    pasted = jnp.where(removed, pred, target)

    def to_images(x: jax.Array) -> np.ndarray:
        return np.asarray(jgather.unpatchify(x, c.patch_size, c.channels))

    return {
        "original": np.asarray(images),
        "masked": to_images(masked),
        "reconstruction": to_images(pasted),
        "prediction": to_images(pred),
    }
