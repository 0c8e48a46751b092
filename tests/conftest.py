"""Test-session configuration shared by every test module.

* The XLA settings of ``pipelines.SESSION_FLAGS``, which says what each does: 8 host CPU
  devices (real meshes on a CPU-only machine), and compiles for speed (no LLVM optimisation,
  XLA:CPU's faster-compiling fusion emitters). They go into ``XLA_FLAGS`` at import time here,
  before JAX initialises its backend; a flag that ``XLA_FLAGS`` already sets wins.
* Strict NumPy semantics: implicit rank promotion raises (as equinox's test suite does).
* A hypothesis profile sized for CI (2 cores, < 10 minutes for the whole suite).
* Shared fixtures: ``x64`` (each test runs with jax_enable_x64 off, then on), ``x64_on`` (on),
  both restoring the session's setting and asserting that they did; ``key``, the fixed PRNG key
  ``jax.random.key(0)`` for tests that need one key and no particular one.
"""

import contextlib
import os

from pipelines import SESSION_FLAGS

for _name, _value in SESSION_FLAGS.items():
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
