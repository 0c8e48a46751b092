"""torch's ``index_*`` family: ``index_add``, ``index_copy``, ``index_fill``, ``index_reduce``.

Each moves whole slices along one axis: it checks its arguments at trace time (and a concrete
index's values, with torch's ``IndexError``) and hands one request to the scatter engine
(``jgather._engine.scatter``) with the index's slices as whole rows.
Out-of-range values under jit and the ``mode`` argument are described in the "Out-of-range
indices under jit" guide.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _engine, _indexing

__all__ = ["index_add", "index_copy", "index_fill", "index_reduce"]

_INDEX_REDUCTIONS = ("prod", "mean", "amax", "amin")


# ----------------------------------------------------------------------------------------------
# Checks.


def _vector_index(fn: str, index: Any) -> tuple[jax.Array, Any]:
    """A 0-d or 1-D integer index (torch's 'index is supposed to be a vector')."""
    index, wide = _indexing.as_index(fn, "index", index)
    _indexing.check_index_dtype(fn, index)
    if index.ndim > 1:
        raise ValueError(
            f"{fn}: index must be 1-D (or 0-d), got shape {index.shape}; flatten it with "
            "index.reshape(-1) (and the source's axis dim with it)."
        )
    return index, wide


def _along_dim(
    fn: str, input: Any, dim: Any, index: Any, source: Any, mode: Any, *, wrap: bool = False
) -> tuple[jax.Array, int, jax.Array, Any, Any]:
    """Checks of the slice-moving ops; returns (input, dim, index, source, wide index).

    ``source`` None (index_fill) skips the source checks. ``wrap``: negative values in
    ``[-size, 0)`` count from the end (torch's index_fill).
    """
    input = _checks.as_array(fn, "input", input)
    dim = _indexing.canonical_dim(fn, dim, input.ndim)
    index, wide = _vector_index(fn, index)
    _checks.one_of(fn, "mode", mode, _indexing.SCATTER_MODES)
    size = input.shape[dim] if input.ndim else 1
    k = index.size
    out_source = None
    if source is not None:
        source = _checks.as_array(fn, "source", source)
        _checks.same_dtype(fn, "source", source, input.dtype)
        if input.ndim == 0:
            want: tuple[int, ...] = ()
            if k != 1:
                raise ValueError(
                    f"{fn}: a 0-d input takes an index of exactly one value, got shape "
                    f"{index.shape}."
                )
        else:
            want = (*input.shape[:dim], k, *input.shape[dim + 1 :])
        if source.shape != want:
            raise ValueError(
                f"{fn}: source shape {source.shape} must be input's shape {input.shape} with "
                f"dimension {dim} replaced by the number of indices ({k}): expected {want}."
            )
        out_source = source
    if k:
        _dtypes.key_dtype_for(fn, math.prod(input.shape))
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, dim, size, scatter=True, wrap=wrap)
    return input, dim, index, out_source, wide


def _rows(
    input: jax.Array,
    dim: int,
    index: jax.Array,
    src: jax.Array,
    op: str,
    mode: str | None,
    include_self: bool = True,
) -> jax.Array:
    """The engine request of the slice-moving ops: slice ``k`` of ``src`` along ``dim`` is
    reduced into slice ``index[k]`` of ``input``."""
    if input.ndim == 0:
        out = _rows(input[None], 0, index.reshape(-1), src.reshape(-1), op, mode, include_self)
        return out.reshape(())
    index = index.reshape(-1)
    lead = input.shape[:dim]
    index = jnp.broadcast_to(index, (*lead, index.shape[0]))
    return _engine.scatter(
        input,
        index,
        src,
        dim=dim,
        op=op,
        mode=mode,
        include_self=include_self,
        trailing=tuple(input.shape[dim + 1 :]),
    )


# ----------------------------------------------------------------------------------------------
# Slices along one axis.


def _alpha_as(fn: str, alpha: Any, dtype: Any) -> Any:
    """``alpha`` checked against ``input``'s dtype: None for 1 (nothing to multiply)."""
    if _checks.is_traced(alpha) or isinstance(alpha, jax.Array):
        a = jnp.asarray(alpha)
        if a.ndim != 0:
            raise ValueError(f"{fn}: alpha must be a scalar, got shape {a.shape}.")
        if jnp.issubdtype(a.dtype, jnp.inexact) and not jnp.issubdtype(dtype, jnp.inexact):
            raise TypeError(
                f"{fn}: alpha of dtype {a.dtype} cannot scale an input of dtype "
                f"{np.dtype(dtype)}; pass an integer alpha."
            )
        if jnp.issubdtype(a.dtype, jnp.complexfloating) and not jnp.issubdtype(
            dtype, jnp.complexfloating
        ):
            raise TypeError(f"{fn}: a complex alpha needs a complex input, got {np.dtype(dtype)}.")
        return a.astype(dtype)
    if not _checks.is_scalar(alpha):
        raise TypeError(f"{fn}: alpha must be a number, got {type(alpha).__name__} {alpha!r}.")
    if np.dtype(dtype) == np.bool_:
        if not isinstance(alpha, bool | int | np.bool_ | np.integer):
            raise TypeError(
                f"{fn}: alpha must be a bool or an int for a bool input, got {alpha!r}."
            )
        return None if bool(alpha) else jnp.asarray(False)
    if not jnp.issubdtype(dtype, jnp.inexact) and not isinstance(
        alpha, bool | int | np.bool_ | np.integer
    ):
        raise TypeError(
            f"{fn}: alpha={alpha!r} is not an integer but input is {np.dtype(dtype)}; pass an "
            "integer alpha (torch truncates a fractional one), or cast input to a float dtype."
        )
    if isinstance(alpha, complex | np.complexfloating) and not jnp.issubdtype(
        dtype, jnp.complexfloating
    ):
        raise TypeError(f"{fn}: a complex alpha needs a complex input, got {np.dtype(dtype)}.")
    if alpha == 1 and not isinstance(alpha, complex | np.complexfloating):
        return None
    _indexing.check_scalar_fits(fn, "alpha", alpha, dtype)
    return _indexing.scalar_as(alpha, dtype)


def index_add(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    source: ArrayLike,
    *,
    alpha: ArrayLike = 1,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Adds slices of ``source`` into a copy of ``input`` at ``index`` along ``dim``.

    Mirrors ``torch.index_add(input, dim, index, source, alpha=1)`` (``Tensor.index_add_``
    returns the array here): slice ``k`` of ``source`` along ``dim``, times ``alpha``, is added
    to slice ``index[k]`` of ``input``; duplicate indices accumulate. Sums of bf16, fp16 and
    float8 accumulate in float32 and round once (torch's CPU kernel adds in the input's
    dtype: 512 bf16 ones added into one element give 256 there, 512 here). Gradients are
    torch's: the cotangent w.r.t. ``input`` and ``alpha`` times the cotangent's slices at
    ``index`` w.r.t. ``source``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; any dtype (bool adds as "or").
      dim: the axis; negative values count from the end. Static.
      index: integer array ``[K]`` (or 0-d, one index) of values in ``[0, N)``.
      source: array of ``input``'s dtype and shape with ``K`` at ``dim``.
      alpha: scale of ``source``: a number (an integer for integer and bool inputs) or a
        0-d array.
      mode: what an out-of-range index value does: None (default: ``IndexError`` for a
        concrete index; under jit the slice is dropped and checkify reports it),
        ``'drop'``, ``'clip'`` or ``'promise_in_bounds'``. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: non-integer ``index``, ``source`` dtype differs from ``input``'s, or an
        ``alpha`` the dtype cannot hold as an integer.
      ValueError: ``index`` with more than one dimension, a ``source`` of the wrong shape,
        an unknown ``mode``.
      IndexError: ``dim`` out of range, or (mode None) a concrete index value outside
        ``[0, N)`` (negative values do not wrap, as in torch).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_add
      >>> index_add(jnp.zeros((3, 2)), 0, jnp.array([0, 2, 0]), jnp.ones((3, 2)), alpha=2)
      Array([[4., 4.],
             [0., 0.],
             [2., 2.]], dtype=float32)
    """
    fn = "index_add"
    input, dim, index, src, _ = _along_dim(fn, input, dim, index, source, mode)
    scale = _alpha_as(fn, alpha, input.dtype)
    if scale is not None:
        src = src & scale if input.dtype == jnp.bool_ else src * scale
    return _rows(input, dim, index, src, "sum", mode)


def index_copy(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    source: ArrayLike,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Copies slices of ``source`` into a copy of ``input`` at ``index`` along ``dim``.

    Mirrors ``torch.index_copy(input, dim, index, source)``: slice ``k`` of ``source`` along
    ``dim`` replaces slice ``index[k]`` of ``input``. Duplicate indices: the **last** ``k``
    wins, on every backend (torch's CPU result; torch leaves it unspecified), and only the
    winning slice gets a gradient (torch gives every duplicate the cotangent). Otherwise
    gradients are torch's: the cotangent with the copied slices zeroed w.r.t. ``input``, its
    slices at ``index`` w.r.t. ``source``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; any dtype.
      dim: the axis; negative values count from the end. Static.
      index: integer array ``[K]`` (or 0-d) of values in ``[0, N)``.
      source: array of ``input``'s dtype and shape with ``K`` at ``dim``.
      mode: out-of-range behaviour, as in :func:`index_add`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError, ValueError, IndexError: as :func:`index_add`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_copy
      >>> index_copy(jnp.zeros(3), 0, jnp.array([1, 1, 2]), jnp.array([1.0, 2.0, 3.0]))
      Array([0., 2., 3.], dtype=float32)
    """
    fn = "index_copy"
    input, dim, index, src, _ = _along_dim(fn, input, dim, index, source, mode)
    return _rows(input, dim, index, src, "set", mode)


def index_fill(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    value: ArrayLike,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Fills the slices of a copy of ``input`` at ``index`` along ``dim`` with ``value``.

    Mirrors ``torch.index_fill(input, dim, index, value)``: negative index values in
    ``[-N, 0)`` count from the end, as in torch. ``value`` is a number or a 0-d array of any
    dtype, cast to ``input``'s (a fractional value into an integer input truncates, as in
    torch). Gradients are torch's: the cotangent with the filled slices zeroed w.r.t.
    ``input``, and its sum over the filled slices (each once) w.r.t. ``value``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; any dtype.
      dim: the axis; negative values count from the end. Static.
      index: integer array ``[K]`` (or 0-d) of values in ``[-N, N)``.
      value: a number or a 0-d array.
      mode: out-of-range behaviour, as in :func:`index_add`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: non-integer ``index``; a complex array ``value`` for a real input.
      ValueError: ``index`` with more than one dimension, a ``value`` that is not 0-d or
        that the dtype cannot hold, an unknown ``mode``.
      IndexError: ``dim`` out of range, or (mode None) a concrete index value outside
        ``[-N, N)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_fill
      >>> index_fill(jnp.zeros((2, 3)), 1, jnp.array([0, -1]), 7.0)
      Array([[7., 0., 7.],
             [7., 0., 7.]], dtype=float32)
    """
    fn = "index_fill"
    input, dim, index, _, _ = _along_dim(fn, input, dim, index, None, mode, wrap=True)
    fill = _fill_value(fn, value, input.dtype)
    size = input.shape[dim] if input.ndim else 1
    return _rows(input, dim, _indexing.wrap(index, size), fill, "set", mode)


def _fill_value(fn: str, value: Any, dtype: Any) -> jax.Array:
    """A number or 0-d array cast to ``dtype`` (checked when concrete)."""
    if _checks.is_scalar(value):
        _indexing.check_scalar_fits(fn, "value", value, dtype)
        return _indexing.scalar_as(value, dtype)
    value = _checks.as_array(fn, "value", value)
    if value.ndim != 0:
        raise ValueError(
            f"{fn}: value must be a number or a 0-d array, got shape {value.shape} (torch "
            "takes only a 0-dimensional value tensor); for per-slice values use index_copy."
        )
    if jnp.issubdtype(value.dtype, jnp.complexfloating) and not jnp.issubdtype(
        dtype, jnp.complexfloating
    ):
        raise TypeError(
            f"{fn}: a complex value ({value.dtype}) cannot fill an input of dtype "
            f"{np.dtype(dtype)}; pass its real part."
        )
    if not _checks.is_traced(value):
        _indexing.check_scalar_fits(fn, "value", np.asarray(value).item(), dtype)
    return value.astype(dtype)


def index_reduce(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    source: ArrayLike,
    reduce: Literal["prod", "mean", "amax", "amin"],
    *,
    include_self: bool = True,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reduces slices of ``source`` into a copy of ``input`` at ``index`` along ``dim``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; integer or floating dtype.
      dim: the axis; negative values count from the end. Static.
      index: integer array ``[K]`` (or 0-d) of values in ``[0, N)``.
      source: array of ``input``'s dtype and shape with ``K`` at ``dim``.
      reduce: ``'prod'``, ``'mean'``, ``'amax'`` or ``'amin'``. Static.
      include_self: whether ``input``'s slices take part. Static.
      mode: out-of-range behaviour, as in :func:`index_add`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: as :func:`index_add`; also a bool or complex input (torch implements
        neither) and a non-bool ``include_self``.
      ValueError: as :func:`index_add`; also an unknown ``reduce`` (torch's index_reduce
        has no 'sum': use :func:`index_add`).
      IndexError: as :func:`index_add`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_reduce
      >>> x = jnp.array([1.0, 2.0, 3.0])
      >>> index_reduce(x, 0, jnp.array([0, 0, 2]), jnp.array([4.0, 5.0, 6.0]), "amax")
      Array([5., 2., 6.], dtype=float32)
      >>> index_reduce(x, 0, jnp.array([0, 0]), jnp.array([4.0, 5.0]), "mean",
      ...              include_self=False)
      Array([4.5, 2. , 3. ], dtype=float32)

    Mirrors ``torch.index_reduce(input, dim, index, source, reduce, include_self=True)``:
    each slice of the output is the ``'prod'``, ``'mean'``, ``'amax'`` or ``'amin'`` of the
    slices of ``source`` sent to it, with ``input``'s own slice when ``include_self``; slices
    that receive nothing keep ``input``. Integer means floor, as in torch; means of bf16,
    fp16 and float8 accumulate in float32 and round once. Values, NaN handling and
    gradients are those of ``jgather.scatter_reduce`` with the same ``reduce`` (whose
    docstring gives them): 'prod' gradients are finite at zeros, 'amax'/'amin' split the
    cotangent among ties.
    """
    fn = "index_reduce"
    if reduce not in _INDEX_REDUCTIONS:
        raise ValueError(
            f"{fn}: reduce must be one of 'prod', 'mean', 'amax' or 'amin' (as torch's), got "
            f"{reduce!r}; for sums use index_add."
        )
    if not isinstance(include_self, bool):
        raise TypeError(f"{fn}: include_self must be a bool, got {include_self!r}.")
    input, dim, index, src, _ = _along_dim(fn, input, dim, index, source, mode)
    if input.dtype == jnp.bool_ or jnp.issubdtype(input.dtype, jnp.complexfloating):
        raise TypeError(
            f"{fn}: not defined for {input.dtype} inputs (torch: not implemented); cast input "
            "and source to an integer or float dtype."
        )
    return _rows(input, dim, index, src, reduce, mode, include_self)
