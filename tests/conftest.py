"""Test-session configuration shared by every test module.

* 8 host CPU devices, so the sharding tests can build a real 1-D mesh on a CPU-only machine.
  This must happen before JAX initialises its backend, hence at import time here.
* XLA's CPU backend without LLVM optimisation (``--xla_backend_optimization_level=0``): most
  of a compile's time on CPU, and the suite's time is mostly compiles. Every HLO pass still
  runs as by default (fusion, layout, the SPMD partitioner), so the programs whose structure
  the tests read are the ones users get (tests/test_sharding.py asserts the optimised HLO is
  identical at both levels); only the machine code is unoptimised. An ``XLA_FLAGS`` that
  already sets the level wins (``--xla_backend_optimization_level=3`` is XLA's default).
* Strict NumPy semantics: implicit rank promotion raises (as equinox's test suite does).
* A hypothesis profile sized for CI (2 cores, < 10 minutes for the whole suite).
* Shared fixtures: ``x64`` (each test runs with jax_enable_x64 off, then on), ``x64_on`` (on),
  both restoring the session's setting and asserting that they did; ``key``, the fixed PRNG key
  ``jax.random.key(0)`` for tests that need one key and no particular one.
"""

import contextlib
import os

_FLAGS = {
    "--xla_force_host_platform_device_count": "8",
    "--xla_backend_optimization_level": "0",
}
for _name, _value in _FLAGS.items():
    if _name not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_name}={_value}".strip()

import jax  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@contextlib.contextmanager
def _x64(enabled: bool):
    """jax_enable_x64 set to ``enabled`` inside; the previous setting back afterwards (checked)."""
    before = jax.config.jax_enable_x64
    with jax.enable_x64(enabled):
        assert jax.config.jax_enable_x64 == enabled
        yield enabled
    assert jax.config.jax_enable_x64 == before


@pytest.fixture(params=[False, True], ids=["x64-off", "x64-on"])
def x64(request):
    """The test runs twice, with jax_enable_x64 off and on; the fixture's value says which."""
    with _x64(request.param) as enabled:
        yield enabled


@pytest.fixture
def x64_on():
    """jax_enable_x64 on for the whole test (float64 finite differences, int64 data)."""
    with _x64(True):
        yield


@pytest.fixture
def key():
    """The fixed PRNG key jax.random.key(0)."""
    return jax.random.key(0)
