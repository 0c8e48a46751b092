"""Every public function under JAX's strict flags, a transfer guard and symbolic export.

Each call of ``public_calls.CALLS`` (checked complete below) is jitted once as the reference,
then, each against it:

* under ``jax_numpy_dtype_promotion="strict"``, ``jax_numpy_rank_promotion="raise"``,
  ``jax_debug_nans`` and ``jax_debug_infs`` together (a re-trace, so jgather's trace-time code
  runs under them): no implicit promotion, no false NaN/inf alarm on clean input;
* under ``jax.transfer_guard("disallow")`` on device-resident arguments: no hidden transfer;
* through ``jax.export`` with a symbolic batch dimension (``jax.export.symbolic_shape("b")`` on
  the leading axis of each batched argument), serialised and deserialised.

Functions whose batch size is a static argument (``public_calls.STATIC_BATCH``) export with
their fixed batch.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest
from jax import export
from public_calls import CALLS, STATIC_BATCH, as_jax, covered, public_functions

import jgather

B = 4


@contextlib.contextmanager
def _strict():
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        with jax.debug_nans(True), jax.debug_infs(True):
            yield


def _flat(fn):
    """The results as a flat list (dataclass results are pytrees; exports return leaves)."""
    return lambda *a: jax.tree.leaves(fn(*a))


def _equal(got, want, name):
    got, want = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got) == len(want), name
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, name
        np.testing.assert_array_equal(g, w, err_msg=name)


def _roundtrip(exported):
    return export.deserialize(exported.serialize())


def test_every_public_function_is_in_the_table():
    missing = public_functions() - covered()
    assert not missing, f"add these to tests/public_calls.py: {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CALLS))
def test_strict_flags_transfer_guard_and_symbolic_batch_export(name):
    call = CALLS[name]
    fn = _flat(call.fn)
    args = as_jax(call.args(B))
    jitted = jax.jit(fn)
    want = jitted(*args)  # compiled outside the guard: tracing may read Python constants
    with jax.transfer_guard("disallow"):
        _equal(jitted(*args), want, name)
    with _strict():
        _equal(jax.jit(fn)(*args), want, name)
    (b,) = export.symbolic_shape("b")
    avals = [
        jax.ShapeDtypeStruct((b, *a.shape[1:]) if k in call.batched else a.shape, a.dtype)
        for k, a in enumerate(args)
    ]
    exported = _roundtrip(export.export(jax.jit(fn))(*avals))
    _equal(exported.call(*args), want, f"{name}, exported with a symbolic batch")


@pytest.mark.parametrize("name", sorted(STATIC_BATCH))
def test_static_batch_functions_under_the_same_checks(name):
    fn = _flat(STATIC_BATCH[name])
    key = jax.random.key(3)
    jitted = jax.jit(fn)
    want = jitted(key)
    with jax.transfer_guard("disallow"):
        _equal(jitted(key), want, name)
    with _strict():
        _equal(jax.jit(fn)(key), want, name)
    _equal(_roundtrip(export.export(jax.jit(fn))(key)).call(key), want, f"{name}, exported")


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
