"""The view scatters with torch semantics: ``select_scatter``, ``slice_scatter``,
``diagonal_scatter``.

Each writes ``src`` into a copy of ``input`` at the positions of one of torch's views
(``input.select(dim, index)``, ``input[..., start:end:step]`` along ``dim``,
``input.diagonal(offset, dim1, dim2)``), which are static. So none needs a scatter: a
selection or a contiguous slice is one ``lax.dynamic_update_slice`` at static starts; a
strided slice and a diagonal are a select between ``input`` and ``src`` laid out on the
view's positions by ``lax.pad`` (interior padding) or a broadcast, under a mask built from
iotas.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks, _indexing

__all__ = ["diagonal_scatter", "select_scatter", "slice_scatter"]


def _input(fn: str, input: Any, view: str) -> jax.Array:
    input = _checks.as_array(fn, "input", input)
    if input.ndim == 0:
        raise IndexError(
            f"{fn}: {view} cannot be applied to a 0-d input (as torch); reshape it to 1-D first."
        )
    return input


def _src(fn: str, src: Any, input: jax.Array, view_shape: tuple[int, ...]) -> jax.Array:
    """``src`` checked against the view's shape and converted to ``input``'s dtype.

    torch copies ``src`` into the view, converting any dtype (``Tensor.copy_``); a complex
    ``src`` into a real ``input`` would drop the imaginary part, which torch does with a
    warning and jgather refuses.
    """
    src = _checks.as_array(fn, "src", src)
    if tuple(src.shape) != tuple(view_shape):
        raise ValueError(
            f"{fn}: expected src to have a size equal to the slice of input. src shape "
            f"{tuple(src.shape)}, slice shape {tuple(view_shape)} (torch does not broadcast "
            "src either); reshape or broadcast src to the slice's shape."
        )
    if jnp.issubdtype(src.dtype, jnp.complexfloating) and not jnp.issubdtype(
        input.dtype, jnp.complexfloating
    ):
        raise TypeError(
            f"{fn}: src is complex ({src.dtype}) but input is {input.dtype}: the imaginary "
            "part would be dropped (torch drops it with a warning); pass jnp.real(src) if "
            "that is meant."
        )
    return src.astype(input.dtype)


def _static(fn: str, name: str, value: Any) -> int:
    return _checks.static_int(fn, name, value, what="the written positions")


# --------------------------------------------------------------------------------------------
# select_scatter


@functools.partial(jax.jit, static_argnames=("dim", "index"))
def _select_scatter_core(input: jax.Array, src: jax.Array, *, dim: int, index: int) -> jax.Array:
    return lax.dynamic_update_index_in_dim(input, src, index, dim)


def select_scatter(input: ArrayLike, src: ArrayLike, dim: int, index: int) -> jax.Array:
    """Writes ``src`` into a copy of ``input`` at ``index`` along ``dim``.

    Mirrors ``torch.select_scatter(input, src, dim, index)``: the result equals ``input``
    except that ``out.select(dim, index)`` (``out[..., index, ...]``) is ``src``. ``src``
    has exactly that view's shape (``input``'s without ``dim``) and is converted to
    ``input``'s dtype, as torch copies it. Lowers to one ``lax.dynamic_update_slice`` at a
    static position.

    Gradients as torch's: w.r.t. ``input``, the cotangent with the selected slice zeroed;
    w.r.t. ``src``, the cotangent's selected slice.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``, at least 1-D.
      src: array of ``input``'s shape without ``dim``; any real dtype for a real ``input``.
      dim: the axis; negative values count from the end. Static.
      index: the position along ``dim``, in ``[-N, N)``; negative values count from the end.
        Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: ``dim`` or ``index`` is not an int (or is traced), or ``src`` is complex
        for a real ``input``.
      IndexError: ``input`` is 0-d, or ``dim`` or ``index`` is out of range.
      ValueError: ``src``'s shape is not the selected slice's.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import select_scatter
      >>> select_scatter(jnp.zeros((2, 3)), jnp.ones(2), 1, -1)
      Array([[0., 0., 1.],
             [0., 0., 1.]], dtype=float32)
    """
    fn = "select_scatter"
    input = _input(fn, input, "select")
    dim = _indexing.canonical_dim(fn, dim, input.ndim)
    index = _static(fn, "index", index)
    n = input.shape[dim]
    if not -n <= index < n:
        raise IndexError(
            f"{fn}: index {index} is out of range for dimension {dim} of size {n} (input "
            f"shape {input.shape}); valid indices are in [{-n}, {n})."
        )
    src = _src(fn, src, input, input.shape[:dim] + input.shape[dim + 1 :])
    return _select_scatter_core(input, src, dim=dim, index=index % n)


# --------------------------------------------------------------------------------------------
# slice_scatter


@functools.partial(jax.jit, static_argnames=("dim", "start", "step"))
def _slice_scatter_core(
    input: jax.Array, src: jax.Array, *, dim: int, start: int, step: int
) -> jax.Array:
    count = src.shape[dim]
    if count == 0:
        return input
    if step == 1 or count == 1:
        starts = tuple(start if d == dim else 0 for d in range(input.ndim))
        return lax.dynamic_update_slice(input, src, starts)
    # A strided slice: src spread over its positions by interior padding, then selected.
    span = (count - 1) * step + 1
    config = [(0, 0, 0)] * input.ndim
    config[dim] = (start, input.shape[dim] - start - span, step - 1)
    spread = lax.pad(src, jnp.zeros((), src.dtype), config)
    at = lax.broadcasted_iota(np.int32, input.shape, dim) - start
    written = (at >= 0) & (at < span) & (at % step == 0)
    return jnp.where(written, spread, input)


def slice_scatter(
    input: ArrayLike,
    src: ArrayLike,
    dim: int = 0,
    start: int | None = None,
    end: int | None = None,
    step: int = 1,
) -> jax.Array:
    """Writes ``src`` into a copy of ``input`` at the slice ``start:end:step`` along ``dim``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``, at least 1-D.
      src: array of the slice's shape (``input``'s, with the slice's length at ``dim``).
      dim: the axis; negative values count from the end. Static.
      start: first position, or None for 0. Static.
      end: position after the last, or None for ``N``. Static.
      step: distance between positions, at least 1. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: ``dim``, ``start``, ``end`` or ``step`` is not an int (or is traced), or
        ``src`` is complex for a real ``input``.
      IndexError: ``input`` is 0-d, or ``dim`` is out of range.
      ValueError: ``step`` is not positive, or ``src``'s shape is not the slice's.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import slice_scatter
      >>> slice_scatter(jnp.zeros(6, jnp.int32), jnp.array([1, 2, 3]), start=1, step=2)
      Array([0, 1, 0, 2, 0, 3], dtype=int32)

    Mirrors ``torch.slice_scatter(input, src, dim=0, start=None, end=None, step=1)``: the
    result equals ``input`` except that its slice along ``dim`` is ``src``. ``start`` and
    ``end`` are read as Python's slicing reads them (negative values count from the end; out
    of range values are clamped to the axis, so the slice may be empty), and ``step`` must be
    positive. ``src`` has exactly the slice's shape and is converted to ``input``'s dtype,
    as torch copies it. A contiguous slice lowers to one ``lax.dynamic_update_slice``, a
    strided one to ``lax.pad`` and a select; neither scatters.

    Gradients as torch's: w.r.t. ``input``, the cotangent with the slice zeroed; w.r.t.
    ``src``, the cotangent's slice.
    """
    fn = "slice_scatter"
    input = _input(fn, input, "slice")
    dim = _indexing.canonical_dim(fn, dim, input.ndim)
    start = None if start is None else _static(fn, "start", start)
    end = None if end is None else _static(fn, "end", end)
    step = _static(fn, "step", step)
    if step < 1:
        raise ValueError(
            f"{fn}: slice step must be positive (as torch), got {step}; to write a reversed "
            "slice, reverse src and use a positive step."
        )
    first, stop, step = slice(start, end, step).indices(input.shape[dim])
    count = len(range(first, stop, step))
    view = (*input.shape[:dim], count, *input.shape[dim + 1 :])
    src = _src(fn, src, input, view)
    return _slice_scatter_core(input, src, dim=dim, start=first, step=step)


# --------------------------------------------------------------------------------------------
# diagonal_scatter


@functools.partial(jax.jit, static_argnames=("offset", "dim1", "dim2"))
def _diagonal_scatter_core(
    input: jax.Array, src: jax.Array, *, offset: int, dim1: int, dim2: int
) -> jax.Array:
    length = src.shape[-1]
    if length == 0:
        return input
    # Element k of the diagonal sits at (k + max(-offset, 0), k + max(offset, 0)) on
    # (dim1, dim2): it is the row index along dim1 for offset >= 0, else the column along
    # dim2. src is padded to that axis and broadcast along the other.
    along = dim1 if offset >= 0 else dim2
    rest = [d for d in range(input.ndim) if d not in (dim1, dim2)]
    pad = [(0, 0, 0)] * (src.ndim - 1) + [(0, input.shape[along] - length, 0)]
    src = lax.pad(src, jnp.zeros((), src.dtype), pad)
    position = sum(d < along for d in rest)  # src's axes in the order of input's axes
    src = jnp.moveaxis(src, -1, position)
    spread = lax.broadcast_in_dim(src, input.shape, tuple(sorted((*rest, along))))
    row = lax.broadcasted_iota(np.int32, input.shape, dim1)
    column = lax.broadcasted_iota(np.int32, input.shape, dim2)
    return jnp.where(column - row == offset, spread, input)


def diagonal_scatter(
    input: ArrayLike, src: ArrayLike, offset: int = 0, dim1: int = 0, dim2: int = 1
) -> jax.Array:
    """Writes ``src`` into a copy of ``input`` along the diagonal of ``dim1`` and ``dim2``.

    Args:
      input: array with at least 2 dimensions.
      src: array of the diagonal's shape.
      offset: which diagonal: 0 the main one, > 0 above it, < 0 below it. Static.
      dim1: the first axis of the matrices (rows); negative values count from the end.
        Static.
      dim2: the second axis (columns), different from ``dim1``. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: ``offset``, ``dim1`` or ``dim2`` is not an int (or is traced), or ``src``
        is complex for a real ``input``.
      IndexError: ``dim1`` or ``dim2`` is out of range.
      ValueError: ``dim1`` and ``dim2`` are the same axis, or ``src``'s shape is not the
        diagonal's.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import diagonal_scatter
      >>> diagonal_scatter(jnp.zeros((3, 4), jnp.int32), jnp.array([1, 2, 3]), 1)
      Array([[0, 1, 0, 0],
             [0, 0, 2, 0],
             [0, 0, 0, 3]], dtype=int32)

    Mirrors ``torch.diagonal_scatter(input, src, offset=0, dim1=0, dim2=1)``: the result
    equals ``input`` except that ``out.diagonal(offset, dim1, dim2)`` is ``src``. Element
    ``k`` of the diagonal is at position ``k + max(-offset, 0)`` along ``dim1`` and ``k +
    max(offset, 0)`` along ``dim2`` (offset > 0: above the main diagonal). ``src`` has
    exactly the diagonal's shape -- ``input``'s without ``dim1`` and ``dim2``, then the
    diagonal's length (zero for an offset beyond the matrix) -- and is converted to
    ``input``'s dtype, as torch copies it. Lowers to a select under an iota mask; no scatter.

    Gradients as torch's: w.r.t. ``input``, the cotangent with the diagonal zeroed; w.r.t.
    ``src``, the cotangent's diagonal.
    """
    fn = "diagonal_scatter"
    input = _checks.as_array(fn, "input", input)
    first = _indexing.canonical_dim(fn, dim1, input.ndim)
    second = _indexing.canonical_dim(fn, dim2, input.ndim)
    if first == second:
        raise ValueError(
            f"{fn}: diagonal dimensions cannot be identical (dim1={dim1}, dim2={dim2} on an "
            f"input with {input.ndim} dimensions); pass two different axes."
        )
    offset = _static(fn, "offset", offset)
    rows, columns = input.shape[first], input.shape[second]
    if offset >= 0:
        length = max(min(rows, columns - offset), 0)
    else:
        length = max(min(rows + offset, columns), 0)
    rest = (n for d, n in enumerate(input.shape) if d not in (first, second))
    view = (*rest, length)
    src = _src(fn, src, input, view)
    return _diagonal_scatter_core(input, src, offset=offset, dim1=first, dim2=second)
