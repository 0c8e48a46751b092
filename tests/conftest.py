"""Test-session configuration shared by every test module.

* 8 host CPU devices, so the sharding tests can build a real 1-D mesh on a CPU-only machine.
  This must happen before JAX initialises its backend, hence at import time here.
* Strict NumPy semantics: implicit rank promotion raises (as equinox's test suite does).
* A hypothesis profile sized for CI (2 cores, < 10 minutes for the whole suite).
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import jax  # noqa: E402
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
