"""Per-platform lowering: one program for XLA:CPU, another for GPU and TPU.

The choice is staged with ``jax.lax.platform_dependent``, so it follows the platform the
program is lowered for (also ``jax.export`` and AOT compilation for another platform), never
the host's default backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from jax import lax

T = TypeVar("T")


def cpu_or_accelerator(cpu: Callable[..., T], accelerator: Callable[..., T], *args: Any) -> T:
    """``cpu(*args)`` when lowered for XLA:CPU, ``accelerator(*args)`` for every other platform.

    Both are traced; the compiler only ever sees the branch of its platform.
    """
    return lax.platform_dependent(*args, cpu=cpu, default=accelerator)


def tpu_or_other(tpu: Callable[..., T], other: Callable[..., T], *args: Any) -> T:
    """``tpu(*args)`` when lowered for TPU, ``other(*args)`` for every other platform."""
    return lax.platform_dependent(*args, tpu=tpu, default=other)
