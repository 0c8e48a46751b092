"""checkify through every public masking function: no crash, no false error, grads still work.

``jax.experimental.checkify`` with ``errors=index_checks`` used to fail with ``IndexError:
tuple index out of range`` on ``random_masking`` and ``apply_mask`` (its rule for scatters with
batching dimensions, reached through the vmapped inverse-permutation scatter), and rejected
``block_masking``'s vmapped while loop.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jgather

N, L, D = 2, 16, 3
X = np.random.default_rng(0).standard_normal((N, L, D)).astype(np.float32)
NOISE = np.random.default_rng(1).random((N, L), dtype=np.float32)
KEY = jax.random.key(0)
MASK = np.tile(np.arange(L) % 2 == 0, (N, 1))

CASES = {
    "random_masking": lambda: tuple(jgather.random_masking(KEY, X, 0.5, num_prefix=1)),
    "random_masking_noise": lambda: tuple(jgather.random_masking(None, X, 0.5, noise=NOISE)),
    "apply_mask": lambda: tuple(jgather.apply_mask(X, MASK, L // 2)),
    "random_masking_per_sample": lambda: tuple(
        jgather.random_masking_per_sample(KEY, X, np.array([0.25, 0.75]), capacity=12)
    ),
    "unshuffle": lambda: jgather.unshuffle(
        X[:, : L // 2], np.tile(np.arange(L), (N, 1)), X[0, 0], num_prefix=0
    ),
    "tube_masking": lambda: jgather.tube_masking(KEY, N, (2, 4, 4), 0.5),
    "running_cell_masking": lambda: jgather.running_cell_masking(KEY, N, (2, 4, 4), 0.5),
    "block_masking": lambda: jgather.block_masking(KEY, N, (6, 6), 10, min_num_patches=4),
    "simmim_masking": lambda: jgather.simmim_masking(
        KEY, N, 32, mask_patch_size=8, model_patch_size=4
    ),
    "patch_dropout": lambda: tuple(jgather.patch_dropout(KEY, X, 0.5)),
    "variable_ratio_masking": lambda: tuple(jgather.variable_ratio_masking(KEY, N, L)),
    "mask_schedule": lambda: jgather.mask_schedule("cosine", jnp.array([0.2, 0.7])),
    "patchify": lambda: jgather.patchify(X.reshape(N, 4, 4, D), 2),
    "unpatchify": lambda: jgather.unpatchify(X.reshape(N, 4, 12), 2, 3),
    "mae_loss": lambda: jgather.mae_loss(pred=X, target=X + 1, mask=MASK, norm_pix_loss=True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_checkify_index_checks(name):
    fn = CASES[name]
    expected = fn()
    for run in (fn, jax.jit(fn)):
        err, out = checkify.checkify(run, errors=checkify.index_checks)()
        assert err.get() is None, err.get()
        jax.tree.map(np.testing.assert_array_equal, out, expected)


def test_checkify_all_checks_and_grad_through_masking():
    def loss(x):
        out = jgather.random_masking(KEY, x, 0.5)
        full = jgather.unshuffle(out.x_masked, out, jnp.zeros(D))
        return jgather.mae_loss(pred=full, target=x, mask=out.mask)

    x = jnp.asarray(X)
    err, value = checkify.checkify(jax.jit(loss), errors=checkify.all_checks)(x)
    assert err.get() is None
    np.testing.assert_allclose(value, loss(x), rtol=1e-6)
    # Gradients of the same code still work. (checkify *of* the gradient goes through the
    # transpose of the token gather, a batched scatter-add in the ops: not covered here.)
    grad = jax.jit(jax.grad(loss))(x)
    assert np.isfinite(np.asarray(grad)).all() and np.abs(np.asarray(grad)).sum() > 0


def test_vmap_of_masking_still_works():
    # A caller's vmap goes through the inverse permutation's custom batching rule.
    keys = jax.random.split(KEY, 3)
    out = jax.vmap(lambda k: jgather.random_masking(k, X, 0.5))(keys)
    for i in range(3):
        one = jgather.random_masking(keys[i], X, 0.5)
        jax.tree.map(np.testing.assert_array_equal, jax.tree.map(lambda a, i=i: a[i], out), one)
