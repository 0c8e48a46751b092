"""mae_loss against a NumPy re-statement of MAE's forward_loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather


def mae_loss_reference(pred, target, mask, norm_pix_loss=False):
    pred, target, mask = (np.asarray(v, np.float64) for v in (pred, target, mask))
    if norm_pix_loss:
        mean = target.mean(axis=-1, keepdims=True)
        var = target.var(axis=-1, keepdims=True, ddof=1)
        target = (target - mean) / (var + 1e-6) ** 0.5
    per_patch = ((pred - target) ** 2).mean(axis=-1)
    return (per_patch * mask).sum() / mask.sum()


def batch(seed=0, n=3, length=16, p=12):
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal((n, length, p)).astype(np.float32)
    target = (3 * rng.standard_normal((n, length, p)) + 1).astype(np.float32)
    mask = (rng.random((n, length)) < 0.75).astype(np.float32)
    return pred, target, mask


@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_matches_reference(norm_pix_loss):
    pred, target, mask = batch()
    expected = mae_loss_reference(pred, target, mask, norm_pix_loss)
    fn = lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=norm_pix_loss)
    for f in (fn, jax.jit(fn)):
        loss = f(pred, target, mask)
        assert loss.dtype == jnp.float32 and loss.shape == ()
        np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # A boolean mask means the same; vmap over groups of batches.
    np.testing.assert_allclose(fn(pred, target, mask.astype(bool)), expected, rtol=1e-6)
    grouped = jax.vmap(fn)(*(np.stack([v, v]) for v in (pred, target, mask)))
    np.testing.assert_allclose(grouped, [expected, expected], rtol=1e-6)


def test_with_patchify_and_masking():
    # The MAE pipeline: patchify targets, random mask, loss over removed patches only.
    rng = np.random.default_rng(1)
    imgs = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)
    target = jgather.patchify(imgs, 2)
    mask = jgather.random_masking(jax.random.key(0), target, 0.75).mask
    pred = target.at[:, :, 0].add(jnp.where(mask == 1, 2.0, 100.0))  # kept errors do not count
    np.testing.assert_allclose(
        jgather.mae_loss(pred=pred, target=target, mask=mask), 4.0 / 12, rtol=1e-6
    )


def test_gradient_and_low_precision():
    pred, target, mask = batch(2)
    g = jax.grad(lambda p: jgather.mae_loss(pred=p, target=target, mask=mask))(pred)
    expected = 2 * (pred - target) * mask[..., None] / (pred.shape[-1] * mask.sum())
    np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-7)
    low = jgather.mae_loss(
        pred=pred.astype(jnp.bfloat16), target=target.astype(jnp.bfloat16), mask=mask
    )
    assert low.dtype == jnp.float32  # computed in float32
    ref = mae_loss_reference(
        np.asarray(pred.astype(jnp.bfloat16), np.float32),
        np.asarray(target.astype(jnp.bfloat16), np.float32),
        mask,
    )
    np.testing.assert_allclose(low, ref, rtol=1e-6)


def test_empty_mask_is_nan_and_errors():
    pred, target, mask = batch()
    assert np.isnan(jgather.mae_loss(pred=pred, target=target, mask=np.zeros_like(mask)))
    with pytest.raises(ValueError, match="equal shapes"):
        jgather.mae_loss(pred=pred, target=target[:, :3], mask=mask)
    with pytest.raises(ValueError, match="mask must be"):
        jgather.mae_loss(pred=pred, target=target, mask=mask[:, :3])
    with pytest.raises(ValueError, match="at least 2 values"):
        jgather.mae_loss(pred=pred[..., :1], target=target[..., :1], mask=mask, norm_pix_loss=True)


def _removed_only(seed=4, n=3, length=16, k=12, p=6):
    """[n, k, p] predictions for the removed tokens, [n, length, p] targets, an [n, length]
    bool mask that removes exactly ``k`` tokens per row."""
    pred, target, _ = batch(seed, n, length, p)
    ranks = np.argsort(np.argsort(np.random.default_rng(seed).random((n, length)), 1), 1)
    return pred[:, :k], target, ranks < k


def removed_only_reference(pred, target, mask, norm_pix_loss=False):
    """VideoMAE's MSELoss(pred, patches[mask]) in float64 on the normalised target."""
    target = np.asarray(target, np.float64)
    if norm_pix_loss:
        mean = target.mean(axis=-1, keepdims=True)
        target = (target - mean) / (target.var(axis=-1, keepdims=True, ddof=1) + 1e-6) ** 0.5
    labels = target[mask].reshape(pred.shape)  # row-major: each sample's removed, in order
    return ((np.asarray(pred, np.float64) - labels) ** 2).mean()


@pytest.mark.parametrize(
    "removed_only, bf16_pred, norm_pix_loss",
    [(False, True, False), (True, False, True), (True, True, False)],
    ids=["full-bf16-pred", "removed-only-bool-mask", "removed-only-bf16-pred"],
)
def test_strict_promotion_and_transfer_guard(removed_only, bf16_pred, norm_pix_loss):
    """Masked-only predictions with a bool mask and bf16 predictions against float32 targets
    under jax_numpy_dtype_promotion="strict" (the casts are explicit, the loss is float32, the
    promoted dtype); eagerly on device arrays under a transfer guard (the mask check reads the
    mask explicitly, no Python scalar goes to the device). Values as the references'."""
    pred, target, mask = _removed_only() if removed_only else batch(5)
    if bf16_pred:
        pred = np.asarray(pred.astype(jnp.bfloat16).astype(np.float32))  # the values bf16 holds
    ref = (removed_only_reference if removed_only else mae_loss_reference)(
        pred, target, mask, norm_pix_loss
    )
    args = jax.device_put((pred.astype(jnp.bfloat16) if bf16_pred else pred, target, mask))
    fn = lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=norm_pix_loss)
    with jax.numpy_dtype_promotion("strict"):
        for f in (fn, jax.jit(fn)):
            loss = f(*args)
            assert loss.dtype == jnp.float32 and loss.shape == ()
            np.testing.assert_allclose(loss, ref, rtol=1e-6)
    with jax.transfer_guard("disallow"):
        loss = fn(*args)
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
