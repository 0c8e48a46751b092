"""MAE's reconstruction loss: per-patch mean squared error over the removed patches."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp

from jgather._checks import as_array

# MAE adds this to the per-patch variance before the square root (norm_pix_loss).
_NORM_PIX_EPS = 1e-6


@functools.partial(jax.jit, static_argnames=("norm_pix_loss",))
def _mae_loss(
    pred: jax.Array, target: jax.Array, mask: jax.Array, *, norm_pix_loss: bool
) -> jax.Array:
    dtype = jnp.promote_types(jnp.result_type(pred, target), jnp.float32)
    pred = pred.astype(dtype)
    target = target.astype(dtype)
    mask = mask.astype(dtype)
    if norm_pix_loss:
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True, ddof=1)  # unbiased, as torch.var
        target = (target - mean) / jnp.sqrt(var + _NORM_PIX_EPS)
    per_patch = jnp.mean(jnp.square(pred - target), axis=-1)  # [N, L]
    return jnp.sum(per_patch * mask) / jnp.sum(mask)


def mae_loss(
    *args: Any,
    pred: jax.Array | None = None,
    target: jax.Array | None = None,
    mask: jax.Array | None = None,
    norm_pix_loss: bool = False,
) -> jax.Array:
    """Mean squared error per patch, averaged over the removed patches.

    Mirrors MAE's ``forward_loss``, with the target already patchified (``patchify``): the
    squared error is averaged over each patch's values, then over the patches where ``mask``
    is 1. With ``norm_pix_loss`` each target patch is first normalised by its own mean and
    unbiased variance: ``(target - mean) / sqrt(var + 1e-6)``.

    Every argument is keyword-only: MAE's ``forward_loss(imgs, pred, mask)`` puts the target
    first, and a swapped ``pred``/``target`` is silent (equal without ``norm_pix_loss``, wrong
    with it), so a positional call is a ``TypeError`` that shows the keyword form.

    Computed in float32 at least (in the promoted dtype of ``pred`` and ``target`` if wider).
    A mask with no removed patch gives NaN (0 / 0), as the reference does.

    Args:
      pred: [N, L, P] predicted patches (the decoder output), keyword-only.
      target: [N, L, P] target patches (``patchify(imgs, p)``), keyword-only.
      mask: [N, L], 1 (or True) for removed patches, 0 for kept; e.g. ``random_masking``'s;
        keyword-only.
      norm_pix_loss: static; normalise each target patch first (needs ``P >= 2``).

    Returns:
      Scalar loss, float32 (or wider).

    Raises:
      TypeError: a positional argument, or ``pred``, ``target`` or ``mask`` missing.
      ValueError: shapes disagree, or ``norm_pix_loss`` with one value per patch (its unbiased
        variance is undefined).

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> pred, target = jnp.zeros((1, 2, 3)), jnp.array([[[1.0, 1, 1], [2, 2, 2]]])
      >>> jgather.mae_loss(pred=pred, target=target, mask=jnp.array([[0.0, 1.0]]))
      Array(4., dtype=float32)
    """
    fn = "mae_loss"
    if args:
        raise TypeError(
            f"{fn} takes keyword arguments only, got {len(args)} positional: call "
            f"{fn}(pred=pred, target=target, mask=mask, norm_pix_loss=False). (MAE's "
            "forward_loss(imgs, pred, mask) puts the target first; in jgather the target is "
            "the patchified images, target=patchify(imgs, p).)"
        )
    missing = [
        name for name, v in (("pred", pred), ("target", target), ("mask", mask)) if v is None
    ]
    if missing:
        raise TypeError(
            f"{fn}: {', '.join(missing)} is None (missing); call "
            f"{fn}(pred=pred, target=target, mask=mask) with arrays."
        )
    pred = as_array(fn, "pred", pred, hint="pass the [N, L, P] predicted patches")
    target = as_array(fn, "target", target, hint="pass the [N, L, P] target patches (patchify)")
    mask = as_array(fn, "mask", mask, hint="pass the [N, L] mask, 1 = removed (random_masking's)")
    if pred.ndim != 3 or pred.shape != target.shape:
        raise ValueError(
            f"{fn}: pred and target must both be [N, L, P] with equal shapes, got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}; patchify the images first."
        )
    if mask.shape != pred.shape[:2]:
        raise ValueError(
            f"{fn}: mask must be [N, L] = {tuple(pred.shape[:2])}, got {tuple(mask.shape)}."
        )
    if norm_pix_loss and pred.shape[-1] < 2:
        raise ValueError(
            f"{fn}: norm_pix_loss needs at least 2 values per patch (unbiased variance), got "
            f"P={pred.shape[-1]}."
        )
    return _mae_loss(pred, target, mask, norm_pix_loss=bool(norm_pix_loss))


# What help() and inspect show: the accepted form. ``*args`` above only exists to turn a
# positional call (MAE's argument order) into a TypeError that says what to write instead.
# Functions take the attribute at runtime (inspect reads it); mypy's function type has no
# __signature__, and setattr with a constant name is what ruff's B010 forbids.
mae_loss.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation="jax.Array")
        for name in ("pred", "target", "mask")
    ]
    + [
        inspect.Parameter(
            "norm_pix_loss", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool"
        )
    ],
    return_annotation="jax.Array",
)
