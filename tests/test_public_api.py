"""Every public function under JAX's strict flags, a transfer guard and symbolic export.

Each call of ``public_calls.CALLS`` (checked complete below) is jitted once as the reference,
then, each against it:

* traced again under ``jax_numpy_dtype_promotion="strict"``, ``jax_numpy_rank_promotion="raise"``,
  ``jax_debug_nans`` and ``jax_debug_infs`` together, so jgather's trace-time code runs under
  them: no implicit promotion, no false NaN/inf alarm in what runs while tracing. The trace is
  the reference's program (its jaxpr is compared), so the reference's executable, run under
  ``jax_debug_nans`` and ``jax_debug_infs`` (which are not part of jit's cache key), checks its
  outputs without a second compile of the same program;
* under ``jax.transfer_guard("disallow")`` on device-resident arguments: no hidden transfer;
* through ``jax.export`` with a symbolic batch dimension (``jax.export.symbolic_shape("b")`` on
  the leading axis of each batched argument), serialised and deserialised.

Functions whose batch size is a static argument (``public_calls.STATIC_BATCH``) export with
their fixed batch.

Each call compiles two programs, and they are compiled two ways (tests/pipelines.py): the
reference with XLA's default HLO passes and fusion emitters (``pipelines.USERS_PIPELINE``, the
program a user's CPU runs), the deserialised export with the session's faster-compiling
emitters. So the comparison of the two also checks, for every public function, that the
session's settings give the same bits as users' (the premise of the rest of the suite's value
checks). Both compile without LLVM optimisation, which leaves the HLO as it is.
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
import pytest
from jax import export
from pipelines import USERS_PIPELINE
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


def _check(name, fn, args, avals):
    """The strict-flag trace, the transfer guard and the round-tripped export of ``fn``."""
    fn = _flat(fn)
    jitted = jax.jit(fn, compiler_options=USERS_PIPELINE)
    want = jitted(*args)  # compiled outside the guard: tracing may read Python constants
    with jax.transfer_guard("disallow"):
        _equal(jitted(*args), want, name)
    with _strict():
        strict = jax.jit(fn).trace(*args)
    assert str(strict.jaxpr) == str(jitted.trace(*args).jaxpr), name
    with jax.debug_nans(True), jax.debug_infs(True):
        _equal(jitted(*args), want, name)
    exported = _roundtrip(export.export(jax.jit(fn))(*avals))
    # The session's emitters (tests/pipelines.py), against the reference's default ones.
    _equal(jax.jit(exported.call)(*args), want, f"{name}, exported")


@pytest.mark.parametrize("name", sorted(CALLS))
def test_strict_flags_transfer_guard_and_symbolic_batch_export(name):
    call = CALLS[name]
    args = as_jax(call.args(B))
    (b,) = export.symbolic_shape("b")
    avals = [
        jax.ShapeDtypeStruct((b, *a.shape[1:]) if k in call.batched else a.shape, a.dtype)
        for k, a in enumerate(args)
    ]
    _check(name, call.fn, args, avals)


@pytest.mark.parametrize("name", sorted(STATIC_BATCH))
def test_static_batch_functions_under_the_same_checks(name):
    key = jax.random.key(3)
    _check(name, STATIC_BATCH[name], (key,), (key,))


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
