"""Edges where jgather must still agree with torch and torch_scatter: aliases torch accepts,
non-finite values in ``scatter_std``, zero segments under jit, strict dtype promotion."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather
from jgather import segment


@pytest.mark.parametrize(("alias", "name"), [("max", "amax"), ("min", "amin")])
def test_scatter_reduce_accepts_torchs_max_and_min(alias, name):
    """torch's scatter_reduce takes 'max'/'min' for 'amax'/'amin' (ported ToMe code does)."""
    x = jnp.array([0.5, 0.0, 3.0])
    index = jnp.array([0, 0, 2, 1])
    src = jnp.array([1.0, -2.0, 2.0, 4.0])
    for include_self in (True, False):
        got = jgather.scatter_reduce(x, 0, index, src, alias, include_self=include_self)
        want = jgather.scatter_reduce(x, 0, index, src, name, include_self=include_self)
        np.testing.assert_array_equal(got, want)


def test_scatter_reduce_still_rejects_unknown_reductions():
    with pytest.raises(ValueError, match="scatter_reduce: reduce must be one of"):
        jgather.scatter_reduce(jnp.zeros(2), 0, jnp.array([0]), jnp.ones(1), "maximum")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_scatter_std_propagates_non_finite_values(bad):
    """torch_scatter (and jnp.std) give NaN for a segment holding NaN or an infinity."""
    got = segment.scatter_std(jnp.array([bad, 1.0, 2.0, 4.0]), jnp.array([0, 0, 1, 1]))
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1], np.std([2.0, 4.0], ddof=1), rtol=1e-6)


def test_scatter_std_of_a_negative_out_is_nan_and_constant_segments_stay_zero():
    got = segment.scatter_std(
        jnp.array([1.0, 3.0, 5.0]), jnp.array([0, 0, 1]), out=jnp.array([-10.0, 0.0])
    )
    assert np.isnan(got[0]) and got[1] == 0.0
    # One-element and constant segments: 0, with a zero (not NaN) gradient.
    grad = jax.grad(lambda s: segment.scatter_std(s, jnp.array([0, 1, 1]), dim_size=2).sum())
    np.testing.assert_array_equal(grad(jnp.array([1.0, 2.0, 2.0])), [0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    "name",
    [
        "scatter_sum",
        "scatter_mean",
        "scatter_max",
        "scatter_min",
        "scatter_std",
        "scatter_logsumexp",
    ],
)
def test_no_segments_with_a_traced_index(name):
    """dim_size=0: every entry is out of range and dropped, under jit as eagerly."""
    f = getattr(segment, name)
    src, index = jnp.ones((3, 2)), jnp.array([0, 1, 2])
    out = jax.jit(lambda s, i: f(s, i, dim=0, dim_size=0, mode="drop"))(src, index)
    values = out[0] if isinstance(out, tuple) else out
    assert values.shape == (0, 2)


def test_apply_mask_takes_a_bool_mask_under_strict_promotion():
    x = jnp.arange(24.0).reshape(1, 6, 4)
    mask = jnp.array([[False, True, True, False, True, False]])
    with jax.numpy_dtype_promotion("strict"):
        masked = jgather.apply_mask(x, mask, 3)
    np.testing.assert_array_equal(masked.x_masked[0], x[0, [0, 3, 5]])


def test_unsigned_means_floor_in_their_own_signedness_in_both_apis():
    """uint32 [3e9, 1] averages to 1.5e9 (a signed 32-bit sum would read 3e9 as negative)."""
    src = jnp.array([3_000_000_000, 1], jnp.uint32)
    index = jnp.array([0, 0])
    torch_style = jgather.scatter_reduce(
        jnp.zeros(1, jnp.uint32), 0, index, src, "mean", include_self=False
    )
    results = {
        "scatter_reduce": torch_style,
        "segment.scatter_mean": segment.scatter_mean(src, index),
        "segment.segment_mean_coo": segment.segment_mean_coo(src, index),
        "segment.segment_mean_csr": segment.segment_mean_csr(src, jnp.array([0, 2])),
    }
    for name, got in results.items():
        assert got.dtype == jnp.uint32, name
        np.testing.assert_array_equal(got, [1_500_000_000], err_msg=name)
