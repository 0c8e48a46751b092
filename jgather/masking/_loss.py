"""MAE's and VideoMAE's reconstruction loss: per-patch mean squared error over the removed
patches, with either reference's target normalisation."""

from __future__ import annotations

import functools
import inspect
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks
from jgather._checks import as_array, is_traced, static_int
from jgather.masking._masked_tokens import removed_rows
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.masking._take import take_rows

# MAE adds this to the per-patch variance before the square root (norm_pix_loss=True/"mae");
# VideoMAE adds it to the per-channel standard deviation (norm_pix_loss="videomae").
_NORM_PIX_EPS = 1e-6

_NORMS = {False: None, True: "mae", "mae": "mae", "videomae": "videomae"}


def _normalise(target: jax.Array, norm: str | None, channels: int | None) -> jax.Array:
    """The normalised target patches [..., P] (``norm`` None: unchanged)."""
    if norm == "mae":  # per patch, over all its values
        mean = jnp.mean(target, axis=-1, keepdims=True)
        var = jnp.var(target, axis=-1, keepdims=True, ddof=1)  # unbiased, as torch.var
        return (target - mean) / jnp.sqrt(var + _NORM_PIX_EPS)
    if norm == "videomae" and channels:  # per channel over the tubelet: (u p q c), c fastest
        shape = target.shape
        split = target.reshape(*shape[:-1], shape[-1] // channels, channels)
        mean = jnp.mean(split, axis=-2, keepdims=True)
        std = jnp.sqrt(jnp.var(split, axis=-2, keepdims=True, ddof=1))
        return ((split - mean) / (std + _NORM_PIX_EPS)).reshape(shape)
    return target


@functools.partial(jax.jit, static_argnames=("norm", "channels"))
def _mae_loss(
    pred: jax.Array, target: jax.Array, mask: jax.Array, *, norm: str | None, channels: int | None
) -> jax.Array:
    # JAX's standard promotion of the two dtypes, then explicit casts: a bf16 prediction
    # against a float32 target stays legal under jax_numpy_dtype_promotion="strict".
    with jax.numpy_dtype_promotion("standard"):
        dtype = jnp.promote_types(jnp.promote_types(pred.dtype, target.dtype), jnp.float32)
    pred = pred.astype(dtype)
    target = target.astype(dtype)
    if pred.shape[1] != target.shape[1]:  # predictions for the removed tokens only
        sharding = batch_sharding(pred, target, mask)
        pred, target, mask = (to_batch_sharding(a, sharding) for a in (pred, target, mask))
        count = pred.shape[1]
        # astype(bool) is ``mask != 0`` for every dtype, without a Python 0 to promote.
        pick = lambda t, m: take_rows(t, removed_rows(m.astype(jnp.bool_), count), None)
        target = _normalise(jax.vmap(pick)(target, mask), norm, channels)
        return jnp.mean(jnp.square(pred - target))
    mask = mask.astype(dtype)
    target = _normalise(target, norm, channels)
    per_patch = jnp.mean(jnp.square(pred - target), axis=-1)  # [N, L]
    return jnp.sum(per_patch * mask) / jnp.sum(mask)


def mae_loss(
    *args: Any,
    pred: jax.Array | None = None,
    target: jax.Array | None = None,
    mask: jax.Array | None = None,
    norm_pix_loss: bool | str = False,
    channels: int | None = None,
) -> jax.Array:
    """Mean squared error per patch, averaged over the removed patches (MAE, VideoMAE).

    Mirrors MAE's ``forward_loss``, with the target already patchified (``patchify``): the
    squared error is averaged over each patch's values, then over the patches where ``mask``
    is 1.

    Args:
      pred: [N, L, P] predicted patches (the decoder output), or [N, K, P] predictions for the
        ``K`` removed tokens of each sample in original order; keyword-only.
      target: [N, L, P] target patches (``patchify(imgs, p)``), keyword-only.
      mask: [N, L], 1 (or True) for removed patches, 0 for kept; e.g. ``random_masking``'s;
        keyword-only.
      norm_pix_loss: static; ``False``, ``True`` / ``"mae"`` or ``"videomae"`` (see above).
      channels: static ``C``, the channels per pixel; required by ``"videomae"`` (``P`` must
        be a multiple of ``C`` with at least 2 pixels per patch), not allowed otherwise.

    Returns:
      Scalar loss, float32 (or wider).

    Raises:
      TypeError: a positional argument, ``pred``, ``target`` or ``mask`` missing, or
        ``channels`` not an int.
      ValueError: shapes disagree; a concrete mask that does not remove ``K`` tokens per row
        for a ``[N, K, P]`` ``pred``; an unknown ``norm_pix_loss``, ``channels`` missing,
        superfluous or not dividing ``P``; or a normalisation over one value (its unbiased
        variance is undefined).

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> pred, target = jnp.zeros((1, 2, 3)), jnp.array([[[1.0, 1, 1], [2, 2, 2]]])
      >>> jgather.mae_loss(pred=pred, target=target, mask=jnp.array([[0.0, 1.0]]))
      Array(4., dtype=float32)
      >>> jgather.mae_loss(pred=pred[:, :1], target=target, mask=jnp.array([[0.0, 1.0]]))
      Array(4., dtype=float32)
      >>> clip = jnp.arange(12.0).reshape(1, 2, 6)  # 2 tokens of 3 pixels x 2 channels
      >>> loss = jgather.mae_loss(pred=jnp.zeros((1, 2, 6)), target=clip, mask=jnp.ones((1, 2)),
      ...                         norm_pix_loss="videomae", channels=2)
      >>> round(float(loss), 4)  # each channel's 3 values [0, 2, 4] become [-1, 0, 1]
      0.6667

    Predictions for the removed tokens only (VideoMAE's decoder): a ``pred`` of ``[N, K, P]``
    with ``K`` smaller than the target's ``L`` is compared with ``target``'s removed tokens in
    original order (VideoMAE's ``labels = patches[mask]``, ``take_masked``) and the loss is
    the mean over all of them (VideoMAE's ``MSELoss``), the same value as the full-prediction
    form when every sample removes ``K`` tokens. Each row of a concrete ``mask`` must then
    remove exactly ``K`` tokens (``ValueError``); under ``jax.jit`` this cannot be checked,
    and a row that removes fewer is compared with its first kept tokens as well.

    Target normalisation (``norm_pix_loss``), a choice between the two references:

    * ``True`` or ``"mae"`` (MAE): each target patch by its own mean and unbiased variance,
      ``(target - mean) / sqrt(var + 1e-6)``.
    * ``"videomae"`` (VideoMAE, with ``channels=C``): each channel of each patch by its own
      mean and unbiased variance over the patch's (tubelet's) ``P / C`` pixels,
      ``(target - mean) / (sqrt(var) + 1e-6)``, reading the patch vector as ``(u, p, q, c)``
      with the channel fastest, as ``patchify`` lays it out (VideoMAE's ``(p0 p1 p2) c``).
      VideoMAE normalises the un-normalised clip (``videos * std + mean``): patchify that.
    * ``False`` (default): the targets as given.

    On a clip whose channels differ in scale the two normalisations differ; pick the one of
    the recipe being followed.

    Every argument is keyword-only: MAE's ``forward_loss(imgs, pred, mask)`` puts the target
    first, and a swapped ``pred``/``target`` is silent (equal without ``norm_pix_loss``, wrong
    with it), so a positional call is a ``TypeError`` that shows the keyword form.

    Computed in float32 at least (in the promoted dtype of ``pred`` and ``target`` if wider).
    A mask with no removed patch gives NaN (0 / 0), as the reference does.

    References:
      He et al., "Masked Autoencoders Are Scalable Vision Learners",
      https://arxiv.org/abs/2111.06377
      Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for
      Self-Supervised Video Pre-Training",
      https://arxiv.org/abs/2203.12602
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
    if (
        target.ndim != 3
        or pred.ndim != 3
        or pred.shape[::2] != target.shape[::2]
        or pred.shape[1] > target.shape[1]
    ):
        raise ValueError(
            f"{fn}: pred and target must be [N, L, P] with equal shapes (or pred [N, K, P] with "
            f"K <= L for the K removed tokens), got {tuple(pred.shape)} and "
            f"{tuple(target.shape)}; patchify the images first."
        )
    if mask.shape != target.shape[:2]:
        raise ValueError(
            f"{fn}: mask must be [N, L] = {tuple(target.shape[:2])}, got {tuple(mask.shape)}."
        )
    norm, channels = _check_norm(fn, norm_pix_loss, channels, target.shape[-1])
    count = pred.shape[1]
    if count != target.shape[1] and not is_traced(mask):
        # One explicit device-to-host read; no scalar goes to the device (transfer guards).
        removed = np.count_nonzero(np.asarray(jax.device_get(mask)), axis=1)
        bad = np.flatnonzero(removed != count)
        if bad.size:
            raise ValueError(
                f"{fn}: pred holds K={count} removed tokens per sample, but row "
                f"{int(bad[0])} of mask removes {int(removed[bad[0]])}; pass [N, L, P] "
                "predictions, or a mask with K removed tokens in every row."
            )
    return _mae_loss(pred, target, mask, norm=norm, channels=channels)


def _check_norm(
    fn: str, norm_pix_loss: Any, channels: Any, size: int
) -> tuple[str | None, int | None]:
    """``norm_pix_loss`` as None, ``"mae"`` or ``"videomae"``, and the checked ``channels``."""
    if isinstance(norm_pix_loss, np.bool_):
        norm_pix_loss = bool(norm_pix_loss)
    if not isinstance(norm_pix_loss, bool | str):
        raise TypeError(
            f"{fn}: norm_pix_loss must be a bool or 'mae' / 'videomae', got "
            f"{type(norm_pix_loss).__name__} {norm_pix_loss!r}."
        )
    _checks.one_of(
        fn,
        "norm_pix_loss",
        norm_pix_loss,
        tuple(_NORMS),
        hint="True or 'mae': per patch (MAE); 'videomae': per channel over the tubelet "
        "(VideoMAE, with channels=C).",
    )
    norm = _NORMS[norm_pix_loss]
    if norm != "videomae":
        if channels is not None:
            raise ValueError(
                f"{fn}: channels={channels!r} is only read by norm_pix_loss='videomae' (per "
                f"channel); with norm_pix_loss={norm_pix_loss!r} leave it unset."
            )
        if norm == "mae" and size < 2:
            raise ValueError(
                f"{fn}: norm_pix_loss needs at least 2 values per patch (unbiased variance), "
                f"got P={size}."
            )
        return norm, None
    if channels is None:
        raise ValueError(
            f"{fn}: norm_pix_loss='videomae' normalises each channel: pass channels=C (3 for "
            "RGB), the fastest axis of patchify's (u, p, q, c) patch vectors."
        )
    channels = static_int(fn, "channels", channels, minimum=1, what="the target layout")
    if size % channels or size // channels < 2:
        raise ValueError(
            f"{fn}: norm_pix_loss='videomae' needs P={size} to be a multiple of "
            f"channels={channels} with at least 2 pixels per channel (unbiased variance)."
        )
    return norm, channels


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
            "norm_pix_loss",
            inspect.Parameter.KEYWORD_ONLY,
            default=False,
            annotation="bool | str",
        ),
        inspect.Parameter(
            "channels", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="int | None"
        ),
    ],
    return_annotation="jax.Array",
)
