"""Indices: full-width conversion, torch's eager bounds check, modes, and the checkify probe.

Shared by the gathers, the scatters and ``jgather.segment``. Every check runs at trace time on
static shapes and dtypes, except ``check_bounds_eagerly``, which reads a concrete index's
values (torch's ``IndexError``); under ``jax.jit`` the ``mode`` decides and ``probe`` lets
``checkify.index_checks`` report the caller's own value.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _checks, _sharding

GatherMode = Literal["clip", "fill", "promise_in_bounds"] | None
ScatterMode = Literal["clip", "drop", "promise_in_bounds"] | None

GATHER_MODES = (None, "clip", "fill", "promise_in_bounds")
SCATTER_MODES = (None, "clip", "drop", "promise_in_bounds")


def canonical_dim(fn: str, dim: Any, ndim: int) -> int:
    """Returns ``dim`` in ``[0, max(ndim, 1))``; torch treats a 0-d array as having one dim."""
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer):
        raise TypeError(
            f"{fn}: dim must be a Python int, got {dim!r} of type {type(dim).__name__}; "
            "pass the axis as an int (it is static under jit)."
        )
    dim = int(dim)
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{fn}: dim {dim} is out of range for an input with {ndim} dimensions "
            f"(expected dim in [{-n}, {n - 1}])."
        )
    return dim % n


def as_index(fn: str, name: str, x: Any) -> tuple[jax.Array, Any]:
    """Converts an index to a JAX array and returns it with the values to bounds-check.

    The second result is what :func:`check_bounds_eagerly` reads: the caller's own values at
    their full width (a NumPy int64 array stays int64 even with x64 off) or a tracer. With x64
    off ``jnp.asarray`` would narrow 64-bit values to 32 bits and wrap ``2**32 + 1`` into ``1``;
    here out-of-range wide values saturate to the narrow type's limits instead, which are out
    of range for every axis JAX can hold, so no mode can read them as in range.
    """
    if isinstance(x, jax.Array):
        return x, x
    try:
        wide = np.asarray(x)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{fn}: {name} must be an array, got {type(x).__name__}: {e}") from None
    if (
        wide.dtype.kind in "iu"
        and wide.dtype.itemsize == 8
        and not jax.config.read("jax_enable_x64")
    ):
        narrow = np.dtype(np.int32 if wide.dtype.kind == "i" else np.uint32)
        info = np.iinfo(narrow)
        return jnp.asarray(np.clip(wide, info.min, info.max).astype(narrow)), wide
    return _checks.as_array(fn, name, wide), wide


def operands(
    fn: str,
    input: Any,
    index: Any,
    mode: Any,
    modes: tuple[Any, ...],
    *,
    dim: Any = None,
    name: str = "index",
) -> tuple[jax.Array, jax.Array, Any, Any]:
    """The checks every indexing function starts with; returns ``(input, index, wide, dim)``.

    ``input`` as an array, ``index`` at full width (:func:`as_index`, ``wide`` the caller's
    values) with an integer dtype, ``dim`` canonical when given (else None) and ``mode`` one
    of ``modes``.
    """
    input = _checks.as_array(fn, "input", input)
    index, wide = as_index(fn, name, index)
    check_index_dtype(fn, index, name)
    if dim is not None:
        dim = canonical_dim(fn, dim, input.ndim)
    _checks.one_of(fn, "mode", mode, modes)
    return input, index, wide, dim


def check_index_dtype(fn: str, index: jax.Array | np.ndarray, name: str = "index") -> None:
    """Raises ``TypeError`` unless ``index`` has an integer (not bool) dtype."""
    if not jnp.issubdtype(index.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: {name} must have an integer dtype (int32 or int64 as in torch), got "
            f"{index.dtype}; convert it with {name}.astype(jnp.int32)."
        )


def check_same_ndim(fn: str, input_shape: tuple[int, ...], index_shape: tuple[int, ...]) -> None:
    """Equal ranks, where (as in torch) a 0-d array counts as 1-D of size 1."""
    if max(len(index_shape), 1) != max(len(input_shape), 1):
        raise ValueError(
            f"{fn}: index has {len(index_shape)} dimensions (shape {index_shape}) but input has "
            f"{len(input_shape)} (shape {input_shape}); torch semantics need index.ndim == "
            "input.ndim and do not broadcast. Add the missing axes (e.g. index[..., None] "
            "broadcast with jnp.broadcast_to), or use take_along_dim, which broadcasts."
        )


def check_gather_shapes(
    fn: str, input_shape: tuple[int, ...], index_shape: tuple[int, ...], dim: int
) -> None:
    """torch.gather's shape rule: same ndim, index no larger than input off ``dim``.

    As in torch, an empty index is not compared with the input, not even its rank (a gather
    then returns an empty array of the index's shape, a scatter the input unchanged).
    """
    if 0 in index_shape:  # empty: reads and writes nothing
        return
    check_same_ndim(fn, input_shape, index_shape)
    if len(input_shape) <= 1:  # 0-d pairs with 1-D
        return
    for d, (i, n) in enumerate(zip(index_shape, input_shape, strict=True)):
        if d != dim and i > n:
            raise ValueError(
                f"{fn}: index shape {index_shape} is larger than input shape {input_shape} at "
                f"dimension {d} ({i} > {n}); off dimension {dim} the index must be no larger "
                "than the input. Slice the index, or pick the dim you meant."
            )


def check_scatter_shapes(
    fn: str,
    input_shape: tuple[int, ...],
    index_shape: tuple[int, ...],
    src_shape: tuple[int, ...] | None,
    dim: int,
) -> None:
    """torch.scatter's shape rule; ``src_shape`` is None for a scalar src."""
    check_gather_shapes(fn, input_shape, index_shape, dim)
    if src_shape is None or 0 in index_shape:  # torch: an empty index writes nothing
        return
    src_shape, index_shape = src_shape or (1,), index_shape or (1,)
    if len(src_shape) != len(index_shape):
        raise ValueError(
            f"{fn}: src has {len(src_shape)} dimensions (shape {src_shape}) but index has "
            f"{len(index_shape)} (shape {index_shape}); src.ndim must equal index.ndim "
            "(no broadcasting)."
        )
    for d, (i, s) in enumerate(zip(index_shape, src_shape, strict=True)):
        if i > s:
            raise ValueError(
                f"{fn}: src shape {src_shape} is smaller than index shape {index_shape} at "
                f"dimension {d} ({s} < {i}); src must be at least as large as index in every "
                "dimension (extra src entries are ignored)."
            )


def check_scalar_fits(fn: str, name: str, value: Any, dtype: Any) -> None:
    """Raises ``ValueError`` when a concrete scalar cannot be stored in ``dtype`` as it is.

    torch raises "value cannot be converted to type X without overflow" for such values;
    without this check ``astype`` would wrap (300 into uint8), saturate (1e10 into int32),
    drop an imaginary part, or raise a bare OverflowError (2**40 into int32). torch's
    bounds, which this follows:

    * into an integer dtype, a float must lie in ``[min, max]`` (127.5 into int8 raises) and
      truncates toward zero (2.7 -> 2); NaN and infinities raise;
    * into an unsigned dtype, a negative integer down to ``-max`` wraps, two's complement
      (-1 into uint8 is 255; -256 raises); a negative float raises.
    """
    if _checks.is_traced(value) or np.dtype(dtype) == np.bool_:
        return
    if isinstance(value, bool | int | float | complex):
        item = value  # a Python int may exceed every NumPy dtype
    else:
        v = np.asarray(value)
        if v.ndim != 0 or v.dtype.kind not in "biufc":
            return
        item = v.item()
    dtype = np.dtype(dtype)
    problem = None
    if isinstance(item, complex) and item.imag != 0 and dtype.kind != "c":
        problem = "has a non-zero imaginary part"
    elif dtype.kind in "iu":
        real = item.real if isinstance(item, complex) else item
        info = np.iinfo(dtype)
        if isinstance(real, float):
            if not np.isfinite(real):
                problem = "is not finite"
            elif not info.min <= real <= info.max:
                problem = f"is outside [{info.min}, {info.max}]"
        else:  # torch wraps a negative integer into an unsigned dtype
            low = -info.max if dtype.kind == "u" else info.min
            if not low <= real <= info.max:
                problem = f"is outside [{low}, {info.max}]"
    elif jnp.issubdtype(dtype, jnp.floating):
        real = item.real if isinstance(item, complex) else item
        finfo = jnp.finfo(dtype)
        if np.isfinite(real) and abs(real) > float(finfo.max):
            problem = f"is outside [{finfo.min}, {finfo.max}]"
        elif np.isinf(real) and not np.isinf(np.asarray(real).astype(dtype)):
            problem = "is infinite and the dtype has no infinity"
    if problem is not None:
        raise ValueError(
            f"{fn}: {name}={value!r} cannot be converted to {dtype} without overflow (it "
            f"{problem}); pass a value that {dtype} can hold, or cast input to a wider dtype."
        )


def scalar_as(value: Any, dtype: Any) -> jax.Array:
    """A checked (:func:`check_scalar_fits`) concrete scalar as a 0-d array of ``dtype``.

    Into a float narrower than 32 bits (float16, bfloat16, float8) the value goes through
    float32 first, as torch converts a Scalar (its half-precision types are built from a
    float): ``1 + 2**-8 + 2**-30`` becomes bfloat16 ``1.0`` (the float32 value is a tie, which
    rounds to even), not the ``1.0078125`` a direct rounding gives.
    """
    v = np.asarray(value)
    dtype = np.dtype(dtype)
    if v.dtype.kind == "c" and dtype.kind != "c":
        v = v.real  # the imaginary part is zero (checked)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4 and v.dtype.kind in "iuf":
        v = v.astype(np.float32)
    return jnp.asarray(v.astype(dtype))


def check_bounds_eagerly(
    fn: str,
    index: Any,
    dim: int,
    size: int,
    *,
    scatter: bool = False,
    wrap: bool = False,
    segments: bool = False,
) -> None:
    """Raises torch's ``IndexError`` for the first out-of-range value of a concrete index.

    Valid values are ``[0, size)``: negatives are out of range, as in torch's gather and
    scatter, which do not wrap them. With ``wrap=True`` (``take_along_dim``, whose negative
    indices wrap as in torch) valid values are ``[-size, size)``. ``index`` is read at its
    full width (the second result of :func:`as_index`). ``segments`` words the message for
    ``jgather.segment``, whose size is ``dim_size``. Tracers are skipped: under jit the mode
    decides, and checkify reports.
    """
    if _checks.is_traced(index):
        return
    values = np.asarray(index)
    if values.size == 0:
        return
    low = -size if wrap else 0
    if not wrap and values.dtype.kind in "iu":
        # One reduction: viewed as unsigned, a negative value is above every axis size.
        if values.view(values.dtype.str.replace("i", "u")).max() < size:
            return
    elif values.min() >= low and values.max() < size:
        return
    bad = (values < low) | (values >= size)
    if not bad.any():
        return
    first = int(values.reshape(-1)[int(np.argmax(bad.reshape(-1)))])
    if segments:
        raise IndexError(
            f"{fn}: index value {first} is out of range for dim_size {size} (dimension {dim} "
            f"of the output); values must lie in [0, {size}). Pass a larger dim_size, or "
            "mode='drop' (ignore those entries) or mode='clip'."
        )
    raise IndexError(
        f"{fn}: index {first} is out of bounds for dimension {dim} with size {size}"
        f"{_WRAP_NOTE[wrap]}. Pass mode='clip' or "
        f"mode={'drop' if scatter else 'fill'!r} to choose what out-of-range values do."
    )


_WRAP_NOTE = {
    False: " (torch semantics: negative indices do not wrap)",
    True: " (valid values are in [-size, size))",
}


def widen_index(index: jax.Array) -> jax.Array:
    """Widens int8/int16/uint8/uint16 indices to int32 (losslessly) before any arithmetic.

    ``index + size`` in int8 would overflow (``-1 + 300``); int32 holds every such sum.
    """
    if index.dtype.itemsize < 4:
        return index.astype(jnp.int32)
    return index


def wrap(index: jax.Array, size: Any) -> jax.Array:
    """torch's negative indices: values in ``[-size, 0)`` plus ``size``, at full width.

    Values below ``-size`` stay as they are, so checkify reports ``-6`` on size 5 as ``-6``
    (not as a wrapped ``-1``); unsigned indices have no negatives. Narrow indices are widened
    first (int8 ``-1 + 300`` must not overflow).
    """
    index = widen_index(index)
    if not jnp.issubdtype(index.dtype, jnp.signedinteger):
        return index
    return jnp.where((index < 0) & (index >= -size), index + size, index)


def narrows_lossily(index: jax.Array) -> bool:
    """True when :func:`narrow_index` may change an out-of-range value (64-bit or uint32)."""
    return index.dtype.itemsize > 4 or index.dtype == jnp.uint32


def narrow_index(index: jax.Array, size: int) -> jax.Array:
    """The index as int32 (int64 for axes over 2**31 - 1), out-of-range values made -1.

    In-range means ``0 <= index < size``. The comparison runs at the index's full width
    *before* narrowing, so a 64-bit ``2**32 + 1`` cannot wrap into ``1`` (XLA's own gather and
    scatter also narrow indices to 32 bits for small operands, wrapping them).
    """
    index = widen_index(index)
    target = jnp.int32 if size <= np.iinfo(np.int32).max else jnp.int64
    if index.dtype == target or (
        jnp.issubdtype(index.dtype, jnp.signedinteger) and index.dtype.itemsize < 8
    ):
        return index.astype(target)
    ok = index < size
    if jnp.issubdtype(index.dtype, jnp.signedinteger):
        ok = ok & (index >= 0)
    return jnp.where(ok, index.astype(target), jnp.asarray(-1, target))


def prepare(
    index: jax.Array, size: int, mode: str | None, *, probe_lossy: bool = False
) -> jax.Array:
    """The caller's index ready for a lowering against an axis of ``size``.

    Widened first (:func:`widen_index`: int8 arithmetic cannot overflow), clamped for
    ``mode='clip'``, and narrowed (:func:`narrow_index`: int32, out-of-range values -1, compared
    at full width). ``probe_lossy``: when narrowing may change a value, :func:`probe` shows
    ``checkify`` the caller's full-width value first (callers that probe every index
    themselves leave it False). Every gather and scatter prepares its index here.
    """
    index = widen_index(index)
    if mode == "clip":
        index = clamp(index, size)
    elif probe_lossy and narrows_lossily(index) and mode != "promise_in_bounds":
        probe(index, size)  # checkify reports the caller's full-width value
    return narrow_index(index, size)


def probe(index: jax.Array, size: int) -> None:
    """A gather of ``index`` from an empty dummy ``[size, 0]`` array, its result unused.

    It exists so that ``checkify.index_checks`` sees the caller's index at its full width
    against ``size`` and reports an out-of-range value as the caller wrote it (not a narrowed
    or flattened internal key). The dummy holds no elements, so the probe costs nothing even
    before XLA removes it.
    """
    index = widen_index(index)
    if _sharding.explicit_mesh(index) is not None:
        # An explicitly sharded index cannot gather from an unsharded dummy without an
        # out_sharding; the op's own gather (or, for scatters, the per-shard probe inside
        # shard_map) is what checkify then sees.
        return
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(index.ndim,), collapsed_slice_dims=(0,), start_index_map=(0,)
    )
    # The dummy is derived from the index (zero of its elements), so that under jax.vmap it
    # is batched as the index is, and shares its sharding on a mesh with explicit axes.
    dummy = jnp.broadcast_to(index.reshape(-1)[:0].astype(jnp.bool_), (size, 0))
    lax.gather(
        dummy,
        index[..., None],
        dnums,
        (1, 0),
        mode=lax.GatherScatterMode.FILL_OR_DROP,
    )


def lax_mode(mode: str | None) -> lax.GatherScatterMode:
    """The lax mode for a jgather mode; 'clip' is handled by clamping before the op."""
    if mode in ("clip", "promise_in_bounds"):
        return lax.GatherScatterMode.PROMISE_IN_BOUNDS
    return lax.GatherScatterMode.FILL_OR_DROP


def clamp(index: jax.Array, size: int) -> jax.Array:
    return jnp.clip(index, 0, max(size - 1, 0)).astype(index.dtype)


def slice_to(x: jax.Array, shape: tuple[int, ...], dim: int | None) -> jax.Array:
    """Leading slice of ``x`` to ``shape`` on every axis except ``dim`` (a no-op if equal)."""
    limits = tuple(x.shape[d] if d == dim else shape[d] for d in range(x.ndim))
    if limits == x.shape:
        return x
    return lax.slice(x, (0,) * x.ndim, limits)


def batched_gather(
    operand: jax.Array,
    index: jax.Array,
    dim: int,
    mode: lax.GatherScatterMode,
    *,
    fill_value: Any = None,
    unique_indices: bool = False,
) -> jax.Array:
    """``out[..., i, ...] = operand[..., index[..., i, ...], ...]`` along ``dim``.

    ``operand`` and ``index`` have equal shapes off ``dim``; every other axis is a batching
    dimension, so XLA sees one gather with scalar slices and no iota index grid.
    ``unique_indices`` is passed on to ``lax.gather`` (its transpose is then marked too).
    """
    batch = tuple(d for d in range(operand.ndim) if d != dim)
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(),
        collapsed_slice_dims=(dim,),
        start_index_map=(dim,),
        operand_batching_dims=batch,
        start_indices_batching_dims=batch,
    )
    return lax.gather(
        operand,
        index[..., None],
        dnums,
        slice_sizes=(1,) * operand.ndim,
        mode=mode,
        fill_value=fill_value,
        unique_indices=unique_indices,
    )


def default_fill(dtype: Any) -> Any:
    """lax's FILL_OR_DROP default: NaN, signed min, unsigned max, True."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact):
        return np.nan
    if dtype == np.bool_:
        return True
    if jnp.issubdtype(dtype, jnp.signedinteger):
        return jnp.iinfo(dtype).min
    return jnp.iinfo(dtype).max


def fill_scalar(fn: str, mode: Any, fill_value: Any, dtype: Any) -> jax.Array | None:
    """Checks ``fill_value`` against ``mode`` and returns it as a 0-d array of ``dtype``."""
    if fill_value is None:
        return None
    if mode not in (None, "fill"):
        raise ValueError(
            f"{fn}: fill_value={fill_value!r} has no effect with mode={mode!r}; "
            "pass mode='fill' (or leave mode=None) to fill out-of-range positions."
        )
    if not _checks.is_traced(fill_value):
        value = np.asarray(fill_value)
        if value.ndim != 0:
            raise ValueError(f"{fn}: fill_value must be a scalar, got shape {value.shape}.")
        check_scalar_fits(fn, "fill_value", fill_value, dtype)
        if (
            jnp.issubdtype(dtype, jnp.integer)
            and np.issubdtype(value.dtype, np.inexact)
            and not (np.isfinite(value) and float(value).is_integer())
        ):
            raise ValueError(
                f"{fn}: fill_value={fill_value!r} cannot be represented in the input dtype "
                f"{np.dtype(dtype)}; pass an integer fill_value."
            )
    if not _checks.is_traced(fill_value):
        return scalar_as(fill_value, dtype)
    return jnp.asarray(fill_value).astype(dtype)
