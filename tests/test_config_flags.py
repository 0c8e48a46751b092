"""The public API under JAX's strict configuration flags, which research code turns on.

Each public function (``public_calls.CALLS``, checked complete below) runs, eagerly and under
``jax.jit``, with

* ``jax_numpy_dtype_promotion="strict"`` and ``jax_numpy_rank_promotion="raise"``: no
  implicit promotion inside jgather (its results equal the default configuration's);
* ``jax_debug_nans`` and ``jax_debug_infs``: no false alarm on clean input;
* ``jax.transfer_guard("disallow")`` around a jitted call on device-resident arguments: no
  hidden host transfer.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest
from public_calls import CALLS, STATIC_BATCH, as_jax, covered, public_functions

import jgather

B = 4


@contextlib.contextmanager
def _strict():
    """All four trace-time flags at once (one compile per call)."""
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        with jax.debug_nans(True), jax.debug_infs(True):
            yield


def _leaves(tree):
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def _equal(got, want, name):
    got, want = _leaves(got), _leaves(want)
    assert len(got) == len(want), name
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def test_every_public_function_is_in_the_table():
    missing = public_functions() - covered()
    assert not missing, f"add these to tests/public_calls.py: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_strict_promotion_rank_promotion_debug_flags_and_transfer_guard(name):
    """Each flag re-traces the jitted call, so jgather's trace-time code runs under it."""
    call = CALLS[name]
    args = as_jax(call.args(B))
    jitted = jax.jit(call.fn)
    want = jitted(*args)  # compiled outside the guard: tracing may read Python constants
    with jax.transfer_guard("disallow"):
        _equal(jitted(*args), want, name)
    with _strict():
        _equal(jax.jit(call.fn)(*args), want, name)


@pytest.mark.parametrize("name", sorted(STATIC_BATCH))
def test_static_batch_functions_under_the_same_flags(name):
    fn = STATIC_BATCH[name]
    key = jax.random.key(3)
    jitted = jax.jit(fn)
    want = jitted(key)
    with jax.transfer_guard("disallow"):
        _equal(jitted(key), want, name)
    with _strict():
        _equal(jax.jit(fn)(key), want, name)


def test_per_sample_ratios_on_device_stay_there_eagerly():
    """Device-resident ratios: the counts are computed on the device; the only transfer is
    the explicit read that validates them (which the guard allows)."""
    key = jax.random.key(0)
    x = jax.numpy.ones((4, 16, 3))
    ratios = jax.numpy.array([0.1, 0.5, 0.7, 0.9])
    want = jgather.random_masking_per_sample(key, x, ratios, capacity=14)
    with jax.transfer_guard("disallow"):
        got = jgather.random_masking_per_sample(key, x, ratios, capacity=14)
    _equal(got, want, "random_masking_per_sample")
    with pytest.raises(ValueError, match="random_masking_per_sample: mask_ratio must lie"):
        jgather.random_masking_per_sample(
            key, x, jax.numpy.array([0.1, 1.5, 0.7, 0.9]), capacity=14
        )
