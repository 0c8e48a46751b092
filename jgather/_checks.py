"""Argument checks shared by every public function (trace time, static values only)."""

from __future__ import annotations

import math

import jax
import numpy as np


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def _static_int(fn: str, name: str, value, *, minimum: int | None = None) -> int:
    if _is_traced(value):
        raise TypeError(
            f"{fn}: `{name}` fixes the output shape, so it must be a static Python int; got a "
            f"traced value. Pass a concrete int (mark it static if you jit a caller)."
        )
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{fn}: `{name}` must be an int, got {type(value).__name__} {value!r}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: `{name}` must be >= {minimum}, got {value}.")
    return value


def _static_float(fn: str, name: str, value) -> float:
    if _is_traced(value):
        raise TypeError(
            f"{fn}: `{name}` fixes how many tokens are masked (a shape), so it must be a static "
            f"Python float; got a traced value. Pass a concrete number (mark it static if you "
            f"jit a caller)."
        )
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0:
        raise TypeError(f"{fn}: `{name}` must be a real number, got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: `{name}` must be a real number, got {value!r}.") from None
    if not math.isfinite(out):
        raise ValueError(f"{fn}: `{name}` must be finite, got {out}.")
    return out


def _static_grid(fn: str, name: str, grid, ndim: int) -> tuple[int, ...]:
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool) and ndim == 2:
        grid = (grid, grid)
    if not isinstance(grid, tuple | list) or len(grid) != ndim:
        want = "(H, W)" if ndim == 2 else "(T, H, W)"
        raise ValueError(
            f"{fn}: `{name}` must be a tuple {want} of {ndim} positive ints (the token grid), "
            f"got {grid!r}."
        )
    return tuple(_static_int(fn, f"{name}[{i}]", g, minimum=1) for i, g in enumerate(grid))
