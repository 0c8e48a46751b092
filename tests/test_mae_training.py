"""The MAE pretraining example (examples/mae_pretraining/) trains on jgather's masking.

A few optimizer steps of a tiny MAE on a slice of scikit-learn's digits, for both loss
settings: the loss on a fixed held-out batch and fixed masks goes down, every gradient is
finite, and gradients reach the encoder's patch embedding (through ``random_masking``'s gather
and ``unshuffle``). The straightforward port used for the throughput comparison is checked to
compute the same masking as jgather given the same noise, so that comparison is like for like.
"""

import jax
import jax.numpy as jnp
import mae_pretraining as mp  # examples/mae_pretraining/, installed with jgather
import numpy as np
import pytest
from flax import nnx

import jgather

TINY = dict(
    embed_dim=16,
    depth=1,
    num_heads=2,
    decoder_dim=16,
    decoder_depth=1,
    decoder_heads=2,
    mlp_ratio=2,
    mask_ratio=0.5,
)


@pytest.fixture(scope="module")
def digits():
    train, heldout = mp.load_digits_split()
    return train[:256], heldout[:32]


def test_digits_split_is_fixed_and_disjoint():
    train, heldout = mp.load_digits_split(0.2, seed=0)
    again, _ = mp.load_digits_split(0.2, seed=0)
    assert train.shape == (1438, 8, 8, 1) and heldout.shape == (359, 8, 8, 1)
    assert train.dtype == np.float32 and 0.0 <= train.min() and train.max() <= 1.0
    np.testing.assert_array_equal(train, again)
    # No held-out image appears in the training set (the digits set has no exact duplicates
    # across this split).
    train_rows = {row.tobytes() for row in train.reshape(len(train), -1)}
    assert not any(row.tobytes() in train_rows for row in heldout.reshape(len(heldout), -1))


def _all_finite(tree) -> bool:
    return all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(tree))


# One compiled loss-and-gradient for a given model structure (graphdef is static).
_value_and_grad = jax.jit(jax.value_and_grad(mp.loss_fn), static_argnums=1)


@pytest.mark.parametrize("norm_pix_loss", [False, True], ids=["pixels", "norm_pix"])
def test_few_train_steps_lower_the_loss_with_finite_gradients(digits, norm_pix_loss):
    train_images, heldout = digits
    config = mp.MAEConfig(**TINY, norm_pix_loss=norm_pix_loss)
    graphdef, params0 = mp.init_model(config, seed=0)
    batch, key = jnp.asarray(heldout), jax.random.key(7)

    loss0, grads0 = _value_and_grad(params0, graphdef, batch, key)
    assert np.isfinite(float(loss0)) and _all_finite(grads0)
    # Gradients flow back through unshuffle and random_masking's gather to the patch embedding.
    assert float(jnp.abs(grads0["patch_embed"]["kernel"][...]).max()) > 0

    result = mp.train(
        config,
        train_images=train_images,
        steps=40,
        batch_size=32,
        lr=3e-3,
        warmup=5,
        seed=0,
        init=(graphdef, params0),
    )
    history = result.history
    assert history["loss"].shape == (40,) and np.all(np.isfinite(history["loss"]))
    assert history["grads_finite"].all()
    assert np.all(np.isfinite(history["grad_norm"])) and np.all(history["grad_norm"] > 0)
    # Compare the loss before and after on the same held-out batch and masks.
    loss_after, grads_after = _value_and_grad(result.params, graphdef, batch, key)
    loss_after = float(loss_after)
    assert _all_finite(grads_after)
    assert loss_after < 0.7 * float(loss0), (float(loss0), loss_after)
    assert history["loss"][-10:].mean() < history["loss"][:10].mean()
    # One jit, traced once for all 40 steps; the step number is folded into the key, so each
    # step sees its own batch and masks.
    assert result.step_fn._cache_size() == 1
    assert len(set(history["loss"][:5].tolist())) == 5
    assert _all_finite(result.params)


def test_port_masking_equals_jgather_given_the_same_noise():
    x = jax.random.normal(jax.random.key(0), (6, 16, 8))
    noise = jax.random.uniform(jax.random.key(1), (6, 16))
    ours = jgather.random_masking(None, x, 0.75, noise=noise)
    port = mp.port_random_masking(None, x, 0.75, noise=noise)
    for a, b in zip(ours, port, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert port.ids_restore.dtype == jnp.int32 and port.mask.dtype == x.dtype

    encoded = jnp.concatenate([jnp.ones((6, 1, 8)), ours.x_masked], axis=1)  # cls in front
    token = jnp.arange(8.0)
    np.testing.assert_array_equal(
        np.asarray(jgather.unshuffle(encoded, ours.ids_restore, token, num_prefix=1)),
        np.asarray(mp.port_unshuffle(encoded, ours.ids_restore, token, num_prefix=1)),
    )


def test_norm_pix_target_matches_jgather_mae_loss():
    target = jax.random.uniform(jax.random.key(2), (3, 16, 4))
    mask = jnp.ones((3, 16))
    normalized = mp.normalize_patches(target)
    assert (
        float(jgather.mae_loss(pred=normalized, target=target, mask=mask, norm_pix_loss=True))
        < 1e-10
    )


def test_sincos_position_table():
    table = mp.sincos_pos_embed_2d(4, 4, 16)
    assert table.shape == (17, 16) and table.dtype == np.float32
    np.testing.assert_array_equal(table[0], 0.0)  # the cls row
    # Every patch position gets its own code; tokens in one row share the row half.
    assert len({row.tobytes() for row in table[1:]}) == 16
    np.testing.assert_array_equal(table[1, :8], table[4, :8])
    with pytest.raises(ValueError, match="multiple of 4"):
        mp.sincos_pos_embed_2d(4, 4, 10)


def test_evaluate_baselines_are_what_they_claim(digits):
    train_images, heldout = digits
    config = mp.MAEConfig(**TINY)
    graphdef, params = mp.init_model(config)
    out = mp.evaluate(graphdef, params, heldout, train_images=train_images, repeats=1)
    # Recompute both baselines with NumPy on the same masks (the model's first mask draw).
    key = jax.random.split(jax.random.key(1234), 1)[0]
    forward = jax.jit(lambda p, x, k: nnx.merge(graphdef, p)(x, k))
    _, mask, target = forward(params, jnp.asarray(heldout), key)
    t, m = np.asarray(target, np.float64), np.asarray(mask, bool)
    within = ((t - t.mean(-1, keepdims=True)) ** 2).mean(-1)
    mean_patch = np.asarray(jgather.patchify(jnp.asarray(train_images), 2)).mean(0)
    to_mean = ((t - mean_patch[None]) ** 2).mean(-1)
    np.testing.assert_allclose(out["patch_mean"], within[m].mean(), rtol=1e-5)
    np.testing.assert_allclose(out["train_mean_patch"], to_mean[m].mean(), rtol=1e-5)
