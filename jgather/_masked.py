"""The masked family with torch semantics: ``masked_fill``, ``masked_scatter``, ``masked_select``.

The mask is broadcast against the input as torch's out-of-place functions do (both grow to
their common shape). None of the three needs a scatter: ``masked_fill`` is a select,
``masked_scatter`` gathers ``source`` by the running count of the mask (the k-th True
position reads ``source``'s k-th element) and ``masked_select`` gathers the input at the
True positions (``jnp.flatnonzero``), with a static output size.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _indexing

__all__ = ["masked_fill", "masked_scatter", "masked_select"]


_KINDS = "biufc"  # NumPy's kinds of bool, integers, floats and complex


def _kind(dtype: Any) -> int:
    """0 bool, 1 integer, 2 floating (bfloat16 and float8 included), 3 complex: the order of
    the kinds in JAX's promotion lattice."""
    kinds = (jnp.bool_, jnp.integer, jnp.floating, jnp.complexfloating)
    return next(k for k, kind in enumerate(kinds) if jnp.issubdtype(dtype, kind))


def _mask(fn: str, mask: Any) -> tuple[jax.Array, Any]:
    """The mask as a JAX array, and its values when they are known now (else None).

    A NumPy mask is known even under ``jax.jit``, where its JAX copy is traced; a tracer is
    not. ``TypeError`` unless the dtype is bool (torch's rule).
    """
    known: Any = None
    if not isinstance(mask, jax.Array):
        try:
            known = np.asarray(mask)
        except (TypeError, ValueError):
            known = None
    elif not _checks.is_traced(mask):
        known = mask
    mask = _checks.as_array(fn, "mask", mask)
    if mask.dtype != jnp.bool_:
        raise TypeError(
            f"{fn}: mask must be a bool array (torch only supports boolean masks), got "
            f"{mask.dtype}; pass mask != 0 or mask.astype(bool)."
        )
    return mask, known


def _broadcast(fn: str, input_shape: tuple[int, ...], mask_shape: tuple[int, ...]) -> Any:
    """The common shape of ``input`` and ``mask`` (NumPy's and torch's broadcasting)."""
    try:
        return tuple(jnp.broadcast_shapes(input_shape, mask_shape))
    except ValueError:
        raise ValueError(
            f"{fn}: mask shape {mask_shape} does not broadcast against input shape "
            f"{input_shape} (sizes must be equal or 1 from the trailing axis on); reshape "
            "the mask, e.g. mask[..., None] to mask whole trailing slices."
        ) from None


def _value(fn: str, name: str, value: Any, dtype: Any) -> jax.Array:
    """A fill value as a 0-d array of ``dtype``, converted as torch converts a Scalar.

    A Python scalar or a concrete 0-d array is checked (``ValueError`` where ``dtype`` cannot
    hold it, torch's "cannot be converted ... without overflow") and converted. A traced 0-d
    array cannot be checked, so it must already promote to ``dtype`` (JAX's promotion
    lattice: a weakly typed value of the same or a lower kind, or a dtype that promotes to
    ``dtype``); anything else is a ``TypeError`` asking for an explicit cast.
    """
    if _checks.is_scalar(value):
        _indexing.check_scalar_fits(fn, name, value, dtype)
        return _indexing.scalar_as(value, dtype)
    raw, value = value, _checks.as_array(fn, name, value)
    if value.ndim != 0:
        raise ValueError(
            f"{fn}: {name} must be a scalar or a 0-d array (torch only supports a "
            f"0-dimensional value tensor), got shape {value.shape}; pass one element, "
            f"e.g. {name}[0], or use masked_scatter to write an array."
        )
    if not _checks.is_traced(raw):  # a NumPy value is known even where its copy is traced
        host = np.asarray(jax.device_get(raw))
        if host.dtype.kind not in _KINDS:  # bfloat16 and float8: exact in float64
            host = host.astype(np.float64)
        item = host.item()
        _indexing.check_scalar_fits(fn, name, item, dtype)
        return _indexing.scalar_as(item, dtype)
    dtype = np.dtype(dtype)
    if value.dtype == dtype:
        return value
    weak = jax.typeof(value).weak_type
    promotes = (
        _kind(value.dtype) <= _kind(dtype)
        if weak
        else jnp.promote_types(value.dtype, dtype) == dtype
    )
    if not promotes:
        raise TypeError(
            f"{fn}: a traced {name} of dtype {value.dtype} does not promote to the input's "
            f"dtype {dtype}, and its value cannot be checked under jit; cast it explicitly "
            f"({name}.astype({dtype})) or pass a concrete scalar, which is checked as torch "
            "checks it."
        )
    return value.astype(dtype)


# --------------------------------------------------------------------------------------------
# masked_fill


@functools.partial(jax.jit, static_argnames=("shape",))
def _masked_fill_core(
    input: jax.Array, mask: jax.Array, value: jax.Array, *, shape: tuple[int, ...]
) -> jax.Array:
    # Gradients summed over broadcast axes (all of them for value) add in float32.
    return jnp.where(
        jnp.broadcast_to(mask, shape),
        _dtypes.broadcast_upcast_transpose(value, shape),
        _dtypes.broadcast_upcast_transpose(input, shape),
    )


def masked_fill(input: ArrayLike, mask: ArrayLike, value: ArrayLike) -> jax.Array:
    """Fills ``input`` with ``value`` where ``mask`` is True.

    Args:
      input: array of any shape and dtype.
      mask: bool array broadcastable against ``input``.
      value: a Python scalar or a 0-d array. A concrete value is checked and converted; a
        traced one (under ``jax.jit``) must promote to ``input``'s dtype (e.g. float32 into
        float32 or float64, a weakly typed Python float into bfloat16).

    Returns:
      Array of the broadcast shape of ``input`` and ``mask``, of ``input``'s dtype.

    Raises:
      TypeError: ``mask`` is not bool, or a traced ``value`` does not promote to ``input``'s
        dtype.
      ValueError: the shapes do not broadcast, ``value`` is not 0-d, or a concrete
        ``value`` does not fit ``input``'s dtype (torch's "value cannot be converted to type
        ... without overflow").

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import masked_fill
      >>> scores = jnp.array([[0.5, 1.5, 2.5], [3.0, 1.0, 0.0]])
      >>> masked_fill(scores, jnp.array([False, True, True]), -jnp.inf)
      Array([[ 0.5, -inf, -inf],
             [ 3. , -inf, -inf]], dtype=float32)

    Mirrors ``torch.masked_fill(input, mask, value)`` (``input.masked_fill(mask, value)``):
    ``mask`` and ``input`` are broadcast to their common shape, and the result keeps
    ``input``'s dtype. ``value`` is converted to that dtype as torch converts it: fractional
    floats into integers truncate towards zero, anything non-zero into bool is True, and a
    value the dtype cannot hold raises.

    Gradients as torch's: w.r.t. ``input``, the cotangent where ``mask`` is False (summed
    over broadcast axes); w.r.t. a 0-d array ``value``, the sum of the cotangent where
    ``mask`` is True.
    """
    fn = "masked_fill"
    input = _checks.as_array(fn, "input", input)
    mask, _ = _mask(fn, mask)
    shape = _broadcast(fn, input.shape, mask.shape)
    value = _value(fn, "value", value, input.dtype)
    return _masked_fill_core(input, mask, value, shape=shape)


# --------------------------------------------------------------------------------------------
# masked_scatter


def _count(mask: Any, shape: tuple[int, ...]) -> int:
    """The number of True values of a concrete ``mask`` broadcast to ``shape``."""
    host = np.asarray(jax.device_get(mask))
    return int(np.broadcast_to(host, shape).sum())


@functools.partial(jax.jit, static_argnames=("shape", "mode"))
def _masked_scatter_core(
    input: jax.Array,
    mask: jax.Array,
    source: jax.Array,
    *,
    shape: tuple[int, ...],
    mode: str | None,
) -> jax.Array:
    x = _dtypes.broadcast_upcast_transpose(input, shape).reshape(-1)
    m = jnp.broadcast_to(mask, shape).reshape(-1)
    n = source.size
    if x.size == 0 or n == 0:  # nothing can be read: True positions keep the input
        return x.reshape(shape)
    # The k-th True position (k from 0) reads source's k-th element: k is the running count
    # of the mask, minus one. Positions beyond the source keep the input (mode 'drop'; with
    # mode None checkify reports them through the probe).
    rank = jnp.cumsum(m, dtype=_dtypes.key_dtype_for("masked_scatter", x.size)) - 1
    if mode is None:
        _indexing.probe(jnp.where(m, rank, 0), n)
    # Clamped explicitly (not by the gather's mode): checkify's gather rule checks clamping
    # gathers too, and only the probe above should report.
    values = jnp.take(source.reshape(-1), jnp.clip(rank, 0, n - 1), mode="clip")
    return jnp.where(m & (rank < n), values, x).reshape(shape)


def masked_scatter(
    input: ArrayLike,
    mask: ArrayLike,
    source: ArrayLike,
    *,
    mode: Literal["drop"] | None = None,
) -> jax.Array:
    """Writes ``source``'s elements, in order, into ``input`` where ``mask`` is True.

    Args:
      input: array of any shape and dtype.
      mask: bool array broadcastable against ``input``.
      source: array of ``input``'s dtype, any shape, with at least as many elements as
        ``mask`` has True values (after broadcasting).
      mode: what a True position beyond ``source``'s size does (``source`` too small):
        None (default: ``ValueError`` for a concrete mask, as torch; under ``jax.jit`` the
        position keeps ``input``'s value and ``checkify.index_checks`` reports the
        position's rank against ``source``'s size) or ``'drop'`` (keep ``input``'s value,
        also eagerly). Static.

    Returns:
      Array of the broadcast shape of ``input`` and ``mask``, of ``input``'s dtype.

    Raises:
      TypeError: ``mask`` is not bool, ``source`` is not an array, or its dtype differs
        from ``input``'s.
      ValueError: the shapes do not broadcast, an unknown ``mode``, or (mode None, concrete
        mask) ``source`` has fewer elements than ``mask`` has True values.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import masked_scatter
      >>> x = jnp.zeros((2, 3), jnp.int32)
      >>> mask = jnp.array([[True, False, True], [False, True, True]])
      >>> masked_scatter(x, mask, jnp.array([1, 2, 3, 4, 5]))
      Array([[1, 0, 2],
             [0, 3, 4]], dtype=int32)

    Mirrors ``torch.masked_scatter(input, mask, source)`` (``input.masked_scatter(mask,
    source)``): ``mask`` and ``input`` are broadcast to their common shape; the k-th True
    position of the broadcast mask, in row-major order, receives the k-th element of
    ``source`` (flattened, row-major; ``source`` may have any shape and more elements than
    needed). Lowers without a scatter: each position gathers ``source`` at the running count
    of the mask.

    Gradients as torch's: w.r.t. ``input``, the cotangent where ``mask`` is False (summed
    over broadcast axes); w.r.t. ``source``, the cotangent at the True positions in order,
    zero for the elements no position reads.
    """
    fn = "masked_scatter"
    _checks.one_of(fn, "mode", mode, (None, "drop"))
    input = _checks.as_array(fn, "input", input)
    mask, known = _mask(fn, mask)
    if _checks.is_scalar(source):
        raise TypeError(
            f"{fn}: source must be an array, got {type(source).__name__} {source!r} (torch "
            "wants a tensor too); to write one value use masked_fill."
        )
    source = _checks.as_array(fn, "source", source)
    _checks.same_dtype(fn, "source", source, input.dtype)
    shape = _broadcast(fn, input.shape, mask.shape)
    _dtypes.key_dtype_for(fn, math.prod(shape))
    if mode is None and known is not None:
        count = _count(known, shape)
        if count > source.size:
            raise ValueError(
                f"{fn}: source has {source.size} elements but the mask (broadcast to "
                f"{shape}) has {count} True values (torch: 'Number of elements of source < "
                "number of ones in mask'); pass a larger source, or mode='drop' to keep the "
                "input at the positions beyond it."
            )
    return _masked_scatter_core(input, mask, source, shape=shape, mode=mode)


# --------------------------------------------------------------------------------------------
# masked_select


@functools.partial(jax.jit, static_argnames=("shape", "size"))
def _masked_select_core(
    input: jax.Array,
    mask: jax.Array,
    fill: jax.Array,
    *,
    shape: tuple[int, ...],
    size: int,
) -> jax.Array:
    x = _dtypes.broadcast_upcast_transpose(input, shape).reshape(-1)
    m = jnp.broadcast_to(mask, shape).reshape(-1)
    if size == 0:
        return jnp.zeros((0,), input.dtype)
    if x.size == 0:
        return jnp.broadcast_to(fill, (size,))
    positions = jnp.flatnonzero(m, size=size, fill_value=0)
    values = jnp.take(x, positions, mode="clip")
    count = jnp.sum(m, dtype=positions.dtype)
    return jnp.where(jnp.arange(size, dtype=positions.dtype) < count, values, fill)


def masked_select(
    input: ArrayLike,
    mask: ArrayLike,
    *,
    size: int | None = None,
    fill_value: ArrayLike | None = None,
) -> jax.Array:
    """The elements of ``input`` where ``mask`` is True, as a 1-D array in row-major order.

    Args:
      input: array of any shape and dtype.
      mask: bool array broadcastable against ``input``.
      size: the static length of the result. Required for a traced ``mask``; with a
        concrete one it must be at least the True count. Static.
      fill_value: the padding value (a scalar, checked against ``input``'s dtype as
        :func:`masked_fill`'s ``value``); default zero.

    Returns:
      Array ``[count]`` (``[size]`` when given) of ``input``'s dtype.

    Raises:
      TypeError: ``mask`` is not bool, ``size`` is not an int, or ``size`` is missing for a
        traced ``mask``.
      ValueError: the shapes do not broadcast, ``size`` is negative or (concrete mask) below
        the True count, or ``fill_value`` does not fit ``input``'s dtype.

    Example:
      >>> import jax
      >>> import jax.numpy as jnp
      >>> from jgather import masked_select
      >>> x = jnp.array([[1, 2, 3], [4, 5, 6]])
      >>> masked_select(x, x % 2 == 0)
      Array([2, 4, 6], dtype=int32)
      >>> jax.jit(lambda x: masked_select(x, x > 2, size=5, fill_value=-1))(x)
      Array([ 3,  4,  5,  6, -1], dtype=int32)

    Mirrors ``torch.masked_select(input, mask)``: ``mask`` and ``input`` are broadcast to
    their common shape first. The result's length is the number of True values, which must
    be known when the function is traced: with a concrete ``mask`` it is counted; with a
    traced one (under ``jax.jit`` or ``jax.vmap``) pass ``size=``, as for ``jnp.nonzero`` and
    ``jnp.extract``: the result then has ``size`` elements, padded with ``fill_value``
    beyond the True count, and True values beyond ``size`` are left out.

    Gradient as torch's: w.r.t. ``input``, each selected element's cotangent at its position
    (summed over broadcast axes), zero elsewhere; padding receives none.
    """
    fn = "masked_select"
    input = _checks.as_array(fn, "input", input)
    mask, known = _mask(fn, mask)
    shape = _broadcast(fn, input.shape, mask.shape)
    if size is not None:
        size = _checks.static_int(fn, "size", size, minimum=0, what="the result's length")
    if known is None:
        if size is None:
            raise TypeError(
                f"{fn}: the mask is traced (under jax.jit or jax.vmap), so the number of "
                "selected elements, which fixes the result's length, is unknown; pass "
                "size= (a static int: the result is padded with fill_value beyond the True "
                "count, as jnp.nonzero(size=...) does), or call it with a concrete mask."
            )
    else:
        count = _count(known, shape)
        if size is None:
            size = count
        elif size < count:
            raise ValueError(
                f"{fn}: size={size} is below the mask's {count} True values (broadcast to "
                f"{shape}); pass size >= {count}, or leave size out."
            )
    fill = _value(fn, "fill_value", 0 if fill_value is None else fill_value, input.dtype)
    return _masked_select_core(input, mask, fill, shape=shape, size=size)
