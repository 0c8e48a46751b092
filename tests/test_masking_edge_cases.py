"""Edge cases of the masking family: subnormal noise, NaN ratios, clear errors.

(The demo's --seed range and --out /dev/null cases live in tests/test_demo.py.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import jgather


@pytest.mark.parametrize(
    "dtype",
    [np.float32, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e5m2, ml_dtypes.float8_e4m3fn],
)
def test_subnormal_noise_is_ordered_bit_exactly(dtype):
    # XLA on CPU flushes subnormals to zero in float arithmetic; the order must not depend on it.
    tiny = float(np.finfo(dtype).smallest_subnormal)
    noise = np.array([[tiny, 0.0, 2 * tiny, -tiny, -0.0, np.nan, 3 * tiny, -2 * tiny]])
    noise = noise.astype(dtype)
    x = np.arange(8, dtype=np.float32).reshape(1, 8, 1)
    expected = np.argsort(np.argsort(noise.astype(np.float64), kind="stable"), kind="stable")
    # (A lambda, not jax.jit(jgather.random_masking): that would share the jit cache that
    # test_masking's retrace counter reads.)
    fn = lambda noise: jgather.random_masking(None, x, 0.5, noise=noise).ids_restore
    for run in (fn, jax.jit(fn)):
        np.testing.assert_array_equal(run(noise), expected)
    if dtype == np.float32:  # the example, against torch's stable argsort
        out = jgather.random_masking(None, x[:, :4], 0.5, noise=[[1e-45, 0, 2e-45, -1e-45]])
        assert out.ids_restore[0].tolist() == [2, 1, 3, 0]


def test_variable_ratio_traced_nan_masks_at_least_one():
    fn = jax.jit(lambda r: jgather.variable_ratio_masking(jax.random.key(0), 3, 10, r=r))
    out = fn(jnp.array([jnp.nan, 0.0, 0.5]))
    assert out.num_masked.tolist()[:2] == [1, 10]
    assert (out.mask.sum(-1) == out.num_masked).all() and (out.num_masked >= 1).all()
    assert float(out.r[0]) == 1.0  # NaN is used as r = 1
    with pytest.raises(ValueError, match=r"\[0, 1\]"):  # a concrete NaN is an error
        jgather.variable_ratio_masking(jax.random.key(0), 1, 10, r=np.array([np.nan]))


X = np.ones((1, 4, 3), np.float32)
KEY = jax.random.key(0)
ERRORS = [
    (lambda: jgather.unshuffle(X[:, :2], np.zeros((1, 4), np.int32), None, num_prefix=0), TypeError,
     ["unshuffle", "mask_token", "None"]),
    (lambda: jgather.mae_loss(pred=X, target=X, mask=None), TypeError, ["mae_loss", "mask", "None"]),
    (lambda: jgather.apply_mask(X, None, 2), TypeError, ["apply_mask", "mask", "None"]),
    (lambda: jgather.mask_schedule("cosine", "a"), TypeError, ["mask_schedule", "ratio", "'a'"]),
    (lambda: jgather.unpatchify(np.ones((1, 16, 48)), 4, 3, grid=4), TypeError,
     ["unpatchify", "grid", "(4, 4)"]),
    (lambda: jgather.running_cell_masking(KEY, 1, (2, 4, 4), 0.5, cell=(1, 1)), ValueError,
     ["running_cell_masking", "cell=(1, 1)", "at least 2 tokens"]),
    (lambda: jgather.random_masking(KEY, np.ones((1, 0, 3)), 0.5), ValueError,
     ["random_masking", "no tokens", "L=0"]),
]  # fmt: skip


@pytest.mark.parametrize(("call", "exc", "words"), ERRORS)
def test_errors_name_the_function_and_the_fix(call, exc, words):
    with pytest.raises(exc) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_onehot_selection_with_signed_zeros_and_non_finite_values_is_as_documented():
    """'gather' moves every value exactly; 'onehot' is exact for finite values but turns
    -0.0 into +0.0 and spreads an inf/NaN feature as NaN over the sample's kept tokens."""
    x = jnp.arange(1.0, 25.0).reshape(1, 8, 3)
    x = x.at[0, 5, 0].set(-0.0).at[0, 0, 1].set(jnp.inf).at[0, 2, 2].set(jnp.nan)
    noise = jnp.arange(8.0)[None, ::-1]  # keeps tokens 7, 6, 5, 4; removes the inf and NaN
    exact = jgather.random_masking(None, x, 0.5, noise=noise, method="gather").x_masked
    np.testing.assert_array_equal(exact[0], x[0, [7, 6, 5, 4]])
    assert np.signbit(exact[0, 2, 0])
    hot = jgather.random_masking(None, x, 0.5, noise=noise, method="onehot").x_masked
    np.testing.assert_array_equal(hot[0, :, 0], [22.0, 19.0, 0.0, 13.0])
    assert not np.signbit(hot[0, 2, 0])  # -0.0 became +0.0
    assert np.isnan(hot[0, :, 1:]).all()  # features 1 and 2 hold an inf / a NaN elsewhere
    # A kept token holding the inf keeps it (1 * inf); the other kept tokens get NaN there.
    kept_inf = jnp.arange(8.0)[None]  # keeps tokens 0, 1, 2, 3
    hot = jgather.random_masking(None, x, 0.5, noise=kept_inf, method="onehot").x_masked
    assert hot[0, 0, 1] == np.inf and np.isnan(hot[0, 1:, 1]).all()
