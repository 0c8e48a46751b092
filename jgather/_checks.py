"""Argument checks shared by every public function (trace time, static values and shapes only).

One rule for exception types: a wrong type (including a traced value where a static Python
value is required) is a ``TypeError``, a wrong value of the right type is a ``ValueError``, and
an out-of-range dim or index is an ``IndexError`` (``_indexing.canonical_dim`` and
``_indexing.check_bounds_eagerly``, which follow torch's rules for dims and indices). Every
message starts with the public function's name, says what came and what to do.

The same concept is checked by one function everywhere: ``num_prefix`` by :func:`num_prefix`,
a mask ratio or probability by :func:`static_ratio`, a choice among names (a mode, a reduction)
by :func:`one_of`, a shape-fixing count by :func:`static_int`, a token grid by
:func:`static_grid`, an array argument by :func:`as_array`. Argument names are written
into messages as the caller spells them (some callers quote them in backticks).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_traced(value: Any) -> bool:
    """True for a tracer (a value under ``jax.jit``, ``jax.vmap`` or ``grad``)."""
    return isinstance(value, jax.core.Tracer)


def is_scalar(value: Any) -> bool:
    """True for a Python or NumPy scalar (a value torch reads as a ``Scalar``, not a tensor)."""
    return isinstance(value, bool | int | float | complex | np.generic)


def traced_where_static(fn: str, name: str, kind: str, what: str) -> TypeError:
    """The error for a traced ``name`` where a static Python ``kind`` is required.

    ``what`` says what the argument fixes (e.g. "the output shape"). Returned, not raised, so
    callers write ``raise traced_where_static(...)``.
    """
    bare = name.strip("`")
    return TypeError(
        f"{fn}: {name} fixes {what}, so {name} must be a static Python {kind}; got a traced "
        f"value. Pass a concrete {kind}, and under jax.jit mark it static "
        f"(static_argnames=('{bare}',))."
    )


def as_array(fn: str, name: str, value: Any, *, hint: str | None = None) -> jax.Array:
    """``value`` as a JAX array (arrays and tracers pass through unchanged).

    Raises:
      TypeError: ``value`` is ``None``, a string, or anything ``jnp.asarray`` cannot read.
    """
    if isinstance(value, jax.Array):
        return value
    tail = f"; {hint}." if hint else "."
    if value is None or isinstance(value, str | bytes):
        raise TypeError(f"{fn}: {name} must be an array, got {value!r}{tail}")
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be an array, got {type(value).__name__}{tail}") from e


def one_of(
    fn: str, name: str, value: Any, allowed: tuple[Any, ...], *, hint: str | None = None
) -> None:
    """Checks that ``value`` is one of ``allowed`` (a mode, a reduction, a layout...).

    Raises:
      ValueError: ``value`` is not one of them (the message lists them, then ``hint``).
    """
    # Names compare as strings (a NumPy str too), flags as bools; anything else only by
    # identity (None), so an array, which compares elementwise, is never a choice.
    ok = any(
        value is a
        or (isinstance(value, str) and value == a)
        or (isinstance(value, bool | np.bool_) and isinstance(a, bool) and bool(value) == a)
        for a in allowed
    )
    if not ok:
        tail = f" {hint}" if hint else ""
        raise ValueError(
            f"{fn}: unknown {name} {value!r}; expected one of "
            f"{', '.join(map(repr, allowed))}.{tail}"
        )


def per_token(
    fn: str, name: str, value: Any, n: int, length: int, num_prefix: int, *, hint: str
) -> jax.Array:
    """``value`` as an ``[N, L]`` array: one entry per token after ``num_prefix`` prefix tokens.

    Raises:
      TypeError: ``value`` is not an array.
      ValueError: ``value`` does not have shape ``(n, length)``.
    """
    value = as_array(fn, name, value, hint=hint)
    if value.shape != (n, length):
        raise ValueError(
            f"{fn}: {name} must have shape [N, L] = {(n, length)} (one per token after the "
            f"{num_prefix} prefix tokens), got {tuple(value.shape)}."
        )
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def static_int(
    fn: str,
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    what: str = "the output shape",
    hint: str | None = None,
) -> int:
    """A static Python int, optionally in ``[minimum, maximum]`` (``hint`` ends the message).

    Raises:
      TypeError: ``value`` is traced, or not an int (bools are not ints here).
      ValueError: ``value`` is outside the bounds.
    """
    if is_traced(value):
        raise traced_where_static(fn, name, "int", what)
    if not _is_int(value):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__} {value!r}.")
    value = int(value)
    tail = f" {hint}" if hint else ""
    if minimum is not None and value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}.{tail}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{fn}: {name} must be <= {maximum}, got {value}.{tail}")
    return value


def static_float(
    fn: str, name: str, value: Any, *, what: str = "how many tokens are masked (a shape)"
) -> float:
    """A static, finite Python float (ints and NumPy scalars are read as floats).

    Raises:
      TypeError: ``value`` is traced, a bool, a string, not 0-d, or not a real number.
      ValueError: ``value`` is not finite.
    """
    if is_traced(value):
        raise traced_where_static(fn, name, "float", what)
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0:
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}.")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{fn}: {name} must be a real number, got {value!r}.") from None
    if not math.isfinite(out):
        raise ValueError(f"{fn}: {name} must be finite, got {out}.")
    return out


def static_ratio(
    fn: str,
    name: str,
    value: Any,
    *,
    closed: bool = True,
    what: str = "how many tokens are masked (a shape)",
) -> float:
    """A static ratio in ``[0, 1]`` (``closed=True``) or ``[0, 1)`` (``closed=False``).

    Raises:
      TypeError: as :func:`static_float`.
      ValueError: ``value`` is outside the interval (NaN and infinities included).
    """
    if is_traced(value):
        raise traced_where_static(fn, name, "float", what)
    interval = "[0, 1]" if closed else "[0, 1)"
    wrong = f"{fn}: {name} must be a float (a real number in {interval}), got {value!r}."
    if isinstance(value, bool | str | bytes) or np.ndim(value) != 0:
        raise TypeError(wrong)
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(wrong) from None
    if not (0.0 <= out <= 1.0 if closed else 0.0 <= out < 1.0):
        raise ValueError(f"{fn}: {name} must be in {interval}, got {out!r}.")
    return out


def static_grid(fn: str, name: str, grid: Any, ndim: int) -> tuple[int, ...]:
    """A static tuple of ``ndim`` positive ints (an int ``g`` means ``(g, g)`` when ndim is 2).

    Raises:
      TypeError: ``grid`` is neither a tuple/list nor (for ndim 2) an int; an entry is not an
        int or is traced.
      ValueError: ``grid`` has the wrong length, or an entry is below 1.
    """
    if _is_int(grid) and ndim == 2:
        grid = (grid, grid)
    want = "(H, W)" if ndim == 2 else "(T, H, W)"
    if not isinstance(grid, tuple | list):
        raise TypeError(
            f"{fn}: {name} must be a tuple {want} of {ndim} positive ints (the token grid), "
            f"got {type(grid).__name__} {grid!r}."
        )
    if len(grid) != ndim:
        raise ValueError(
            f"{fn}: {name} must be a tuple {want} of {ndim} positive ints (the token grid), "
            f"got {grid!r}."
        )
    bare = name.strip("`")
    quote = "`" if name.startswith("`") else ""
    return tuple(
        static_int(fn, f"{quote}{bare}[{i}]{quote}", g, minimum=1) for i, g in enumerate(grid)
    )


def static_bool(fn: str, name: str, value: Any) -> bool:
    """A static Python (or NumPy) bool; ints are not accepted.

    Raises:
      TypeError: ``value`` is not a bool.
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{fn}: {name} must be a bool, got {value!r}.")
    return bool(value)


def num_prefix(fn: str, value: Any, length: int, *, maskable: bool = True) -> int:
    """The number of leading prefix (cls / register) tokens of a sequence of ``length``.

    With ``maskable=True`` at least one token must follow the prefix (``[0, length)``); with
    ``maskable=False`` the prefix may be the whole sequence (``[0, length]``).

    Raises:
      TypeError: ``value`` is traced or not an int.
      ValueError: the sequence is empty (``maskable=True``), or ``value`` is out of range.
    """
    if is_traced(value):
        raise traced_where_static(fn, "num_prefix", "int", "the token layout")
    if not _is_int(value):
        raise TypeError(
            f"{fn}: num_prefix must be a Python int (the number of leading cls/register "
            f"tokens), got {type(value).__name__}."
        )
    value = int(value)
    if maskable:
        if length == 0:
            raise ValueError(
                f"{fn}: the sequence has no tokens (L=0); pass at least one token per sample."
            )
        if not 0 <= value < length:
            raise ValueError(
                f"{fn}: num_prefix={value} must be in [0, {length}) for a sequence of "
                f"{length} tokens: at least one token must follow the prefix, else there is "
                "no token to drop or mask. Check num_prefix (the leading cls/register tokens)."
            )
    elif not 0 <= value <= length:
        raise ValueError(
            f"{fn}: num_prefix={value} must be in [0, {length}] for a sequence with {length} "
            "tokens."
        )
    return value


def dtype(fn: str, name: str, value: Any, *, hint: str) -> np.dtype:
    """``value`` as a dtype.

    Raises:
      TypeError: ``value`` is not a dtype (``hint`` says which one to pass).
    """
    try:
        return jnp.dtype(value)
    except TypeError as e:
        raise TypeError(f"{fn}: {name} must be a dtype ({hint}), got {value!r}.") from e


def same_dtype(fn: str, name: str, value: jax.Array, dtype: Any) -> None:
    """Raises ``TypeError`` unless ``value`` has ``dtype`` (torch's same-dtype rule)."""
    if value.dtype != dtype:
        raise TypeError(
            f"{fn}: {name} dtype {value.dtype} differs from input dtype {np.dtype(dtype)} "
            f"(torch raises too); cast {name} with {name}.astype({np.dtype(dtype)})."
        )


def static_range(
    fn: str, name: str, value: Any, *, low: float, high: float, what: str = "the block sizes"
) -> tuple[float, float]:
    """A static ``(lo, hi)`` pair with ``low <= lo <= hi <= high`` (a float means ``(x, x)``)."""
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(f"{fn}: `{name}` must be a pair (lo, hi), got {value!r}.")
        lo = static_float(fn, f"`{name}[0]`", value[0], what=what)
        hi = static_float(fn, f"`{name}[1]`", value[1], what=what)
    else:
        lo = hi = static_float(fn, f"`{name}`", value, what=what)
    if not low <= lo <= hi <= high:
        raise ValueError(
            f"{fn}: `{name}` must satisfy {low} <= lo <= hi <= {high}, got ({lo}, {hi})."
        )
    return lo, hi
