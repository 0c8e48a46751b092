"""The XLA settings the test session compiles with, and the compile that reads users' programs.

Most of the suite's time is XLA:CPU compiling small programs, so the session compiles for
speed. ``tests/conftest.py`` puts ``SESSION_FLAGS`` into ``XLA_FLAGS`` before jax starts (a
flag already in ``XLA_FLAGS`` wins), and the subprocesses the tests start (notebook kernels,
the multi-process workers) inherit them:

* ``--xla_force_host_platform_device_count=8``: eight host CPU devices, so the sharding tests
  build real meshes on a CPU-only machine.
* ``--xla_backend_optimization_level=0``: no LLVM optimisation of the machine code. The
  optimised HLO is the same as at XLA's default level, 3
  (``tests/test_sharding.py::test_backend_optimisation_level_leaves_the_hlo_alone``).
* ``--xla_cpu_use_fusion_emitters=false``: XLA:CPU's loop emitters for fused computations
  instead of its default MLIR fusion emitters, which roughly halves this suite's compile time.
  They also take a different route through XLA's HLO passes (gathers are canonicalised
  differently and the fusions differ), so:

  * a test that reads a compiled program (its scatters, loops, conditionals, collectives or
    memory) compiles it with :func:`users_compile`, which switches the default emitters back
    on, so it reads the program users' CPUs compile;
  * values do not depend on the emitters, and two tables check this bit for bit:
    ``tests/test_public_api.py`` runs every public function both ways, and
    ``tests/test_low_precision.py`` does the same for the reduced-precision sums.
"""

from __future__ import annotations

import os
from typing import Any

SESSION_FLAGS = {
    "--xla_force_host_platform_device_count": "8",
    "--xla_backend_optimization_level": "0",
    "--xla_cpu_use_fusion_emitters": "false",
}

#: Compiler options that give XLA's default HLO pipeline (jit's ``compiler_options=`` or
#: ``Lowered.compile``), at the session's LLVM level.
USERS_PIPELINE = {"xla_cpu_use_fusion_emitters": True}


def users_compile(lowered: Any) -> Any:
    """``lowered`` (a ``jax.stages.Lowered``) compiled as a user's CPU compiles it: XLA's
    default HLO passes and fusion emitters; only the LLVM level is the session's."""
    return lowered.compile(USERS_PIPELINE)


def child_xla_flags(devices: int | None = None) -> str:
    """``XLA_FLAGS`` for a process a test starts (a notebook kernel, ``python -m jgather``, a
    multi-process worker): this session's compile settings, with ``devices`` host devices
    (``None``: the default, one, as a user's machine has)."""
    device_count = "--xla_force_host_platform_device_count"
    kept = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(device_count)]
    return " ".join(kept + ([f"{device_count}={devices}"] if devices is not None else []))
