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
