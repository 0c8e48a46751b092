"""torch_scatter's sorted-index (COO) family: ``segment_coo``, ``segment_{sum,add,mean,min,
max}_coo`` and their inverse ``gather_coo``, along axis ``index.ndim - 1``.

The reductions are :func:`jgather.segment.scatter`'s with ``indices_are_sorted=True`` passed to
``lax.scatter``, so XLA may exploit the order.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _indexing
from jgather.segment import _arguments, _lowering, _reductions, _sorted

__all__ = [
    "gather_coo",
    "segment_add_coo",
    "segment_coo",
    "segment_max_coo",
    "segment_mean_coo",
    "segment_min_coo",
    "segment_sum_coo",
]


def _check_sorted(fn: str, index: jax.Array, dim: int) -> None:
    if _checks.is_traced(index) or index.shape[dim] < 2:
        return
    if (np.diff(np.asarray(index), axis=dim) < 0).any():
        raise ValueError(
            f"{fn}: index must be sorted (non-decreasing) along its last axis, as torch_scatter "
            "assumes; sort it (with src), or use jgather.segment.scatter for an unsorted index."
        )


def _coo(
    fn: str,
    op: str,
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None,
    dim_size: int | None,
    mode: str | None,
) -> Any:  # an array, or (values, arg) for 'min' / 'max'
    src = _arguments.as_src(fn, src)
    if op in ("min", "max"):
        _dtypes.check_ordered(fn, src.dtype, op)
    _checks.one_of(fn, "mode", mode, _indexing.SCATTER_MODES)
    idx, wide = _sorted.lead_index(fn, "index", index, src, whole=True)
    dim = _sorted.index_ndim(index) - 1
    if out is not None:
        out = _arguments.check_out(fn, out, src, dim)
    size = _arguments.resolve_dim_size(fn, wide, dim_size, out, dim)
    _arguments.check_bounds(fn, wide, dim, size, mode)
    _check_sorted(fn, idx, dim)
    return _lowering.call(
        _coo_core, (src, idx, out), dim, checked=size, op=op, size=size, mode=mode
    )


@functools.partial(jax.jit, static_argnames=("op", "dim", "size", "mode"))
def _coo_core(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    *,
    op: str,
    dim: int,
    size: int,
    mode: str | None,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    if op == "sum":
        return _reductions.reduce_sum(src, idx, out, dim, size, mode, sorted=True)
    if op == "mean":
        # torch_scatter's CPU kernel divides in the dtype (C++): integer means
        # truncate towards zero, half-precision sums round before the division.
        return _reductions.reduce_mean(src, idx, out, dim, size, mode, sorted=True, kernel=True)
    return _reductions.reduce_arg(op, src, idx, out, dim, size, mode, sorted=True)


def segment_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    reduce: Literal["sum", "add", "mean", "min", "max"] = "sum",
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reduces ``src`` over runs of a sorted ``index`` with ``reduce`` (sum/add, mean, min, max).

    torch_scatter's ``segment_coo``: :func:`jgather.segment.scatter` along axis
    ``index.ndim - 1``, with its semantics (empty segments 0, or keep ``out``;
    ``'min'``/``'max'`` give the values only), except that integer means truncate towards
    zero, as torch_scatter's CPU kernel. ``index`` must be sorted (non-decreasing) along its
    last axis, as torch_scatter requires: a concrete index is checked (``ValueError``); a
    traced unsorted index gives unspecified values (the scatter is marked
    ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      reduce: ``'sum'``/``'add'``, ``'mean'``, ``'min'`` or ``'max'`` (default ``'sum'``). Static.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``src``'s shape with axis ``index.ndim - 1`` -> ``dim_size``, in ``src``'s dtype.

    Raises:
      ValueError: unknown ``reduce``, unsorted concrete index, shapes that do not broadcast,
        traced index without ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``,
        complex ``src`` for a max/min (complex numbers have no order).
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_coo
      >>> segment_coo(jnp.arange(6.0), jnp.array([0, 0, 1, 1, 1, 3]), reduce="sum")
      Array([1., 9., 0., 5.], dtype=float32)
    """
    fn = "segment_coo"
    _checks.one_of(fn, "reduce", reduce, _sorted.REDUCES)
    op = {"add": "sum"}.get(reduce, reduce)
    res = _coo(fn, op, src, index, out, dim_size, mode)
    return res[0] if op in ("min", "max") else res


def segment_sum_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Sums ``src`` over runs of a sorted ``index``.

    torch_scatter's ``segment_sum_coo``: :func:`jgather.segment.scatter_sum` along axis
    ``index.ndim - 1``; empty segments are 0 (or keep ``out``). ``index`` must be sorted
    (non-decreasing) along its last axis, as torch_scatter requires: a concrete index is
    checked (``ValueError``); a traced unsorted index gives unspecified values (the scatter is
    marked ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``src``'s shape with the reduced axis -> ``dim_size``, in ``src``'s dtype.

    Raises:
      ValueError: unsorted concrete index, shapes that do not broadcast, traced index without
        ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``.
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_sum_coo
      >>> segment_sum_coo(jnp.array([1, 2, 3]), jnp.array([0, 0, 2]))
      Array([3, 0, 3], dtype=int32)
    """
    return _coo("segment_sum_coo", "sum", src, index, out, dim_size, mode)


def segment_add_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Sums ``src`` over runs of a sorted ``index``: torch_scatter's ``segment_add_coo``.

    The same function as :func:`segment_sum_coo` under torch_scatter's other name: the sum
    along axis ``index.ndim - 1``; empty segments are 0 (or keep ``out``). ``index`` must be
    sorted (non-decreasing) along its last axis, as torch_scatter requires: a concrete index is
    checked (``ValueError``); a traced unsorted index gives unspecified values (the scatter is
    marked ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``src``'s shape with the reduced axis -> ``dim_size``, in ``src``'s dtype.

    Raises:
      ValueError: unsorted concrete index, shapes that do not broadcast, traced index without
        ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``.
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_add_coo
      >>> segment_add_coo(jnp.array([1, 2, 3]), jnp.array([0, 0, 2]))
      Array([3, 0, 3], dtype=int32)
    """
    return _coo("segment_add_coo", "sum", src, index, out, dim_size, mode)


def segment_mean_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Means of ``src`` over runs of a sorted ``index`` (integer means truncate to zero).

    torch_scatter's ``segment_mean_coo``: :func:`jgather.segment.scatter_mean` along axis
    ``index.ndim - 1``: ``(out + sum) / max(count, 1)`` (``out`` is added, not counted); empty
    segments are 0. Integer means truncate towards zero, as torch_scatter's CPU kernel (its
    CUDA kernel and ``scatter_mean`` floor). ``index`` must be sorted (non-decreasing) along
    its last axis, as torch_scatter requires: a concrete index is checked (``ValueError``); a
    traced unsorted index gives unspecified values (the scatter is marked
    ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``src``'s shape with the reduced axis -> ``dim_size``, in ``src``'s dtype.

    Raises:
      ValueError: unsorted concrete index, shapes that do not broadcast, traced index without
        ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``.
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_mean_coo
      >>> segment_mean_coo(jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 0, 2]))
      Array([1.5, 0. , 3. ], dtype=float32)
    """
    return _coo("segment_mean_coo", "mean", src, index, out, dim_size, mode)


def segment_min_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Minimum and argmin over runs of a sorted ``index``.

    torch_scatter's ``segment_min_coo``: :func:`jgather.segment.scatter_min` along axis
    ``dim = index.ndim - 1``: ties go to the first position, empty segments give 0 and arg
    ``src.shape[dim]``, NaN propagates, the whole gradient goes to the argmin. ``index`` must be
    sorted (non-decreasing) along its last axis, as torch_scatter requires: a concrete index is
    checked (``ValueError``); a traced unsorted index gives unspecified values (the scatter is
    marked ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``(values, arg)``, each ``src``'s shape with the reduced axis -> ``dim_size``; values in
      ``src``'s dtype, arg in the index's integer dtype.

    Raises:
      ValueError: unsorted concrete index, shapes that do not broadcast, traced index without
        ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``,
        complex ``src`` for a max/min (complex numbers have no order).
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_min_coo
      >>> segment_min_coo(jnp.array([4, 2, 3]), jnp.array([0, 0, 2]))
      (Array([2, 0, 3], dtype=int32), Array([1, 3, 2], dtype=int32))
    """
    return _coo("segment_min_coo", "min", src, index, out, dim_size, mode)


def segment_max_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Maximum and argmax over runs of a sorted ``index``.

    torch_scatter's ``segment_max_coo``: :func:`jgather.segment.scatter_max` along axis
    ``dim = index.ndim - 1``: ties go to the first position, empty segments give 0 and arg
    ``src.shape[dim]``, NaN propagates, the whole gradient goes to the argmax. ``index`` must be
    sorted (non-decreasing) along its last axis, as torch_scatter requires: a concrete index is
    checked (``ValueError``); a traced unsorted index gives unspecified values (the scatter is
    marked ``indices_are_sorted=True``, so XLA may assume the order).

    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``(values, arg)``, each ``src``'s shape with the reduced axis -> ``dim_size``; values in
      ``src``'s dtype, arg in the index's integer dtype.

    Raises:
      ValueError: unsorted concrete index, shapes that do not broadcast, traced index without
        ``dim_size``.
      TypeError: non-integer index, bool ``src``, ``out`` dtype differs, non-int ``dim_size``,
        complex ``src`` for a max/min (complex numbers have no order).
      IndexError: a concrete index value outside ``[0, dim_size)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_max_coo
      >>> segment_max_coo(jnp.array([4, 2, 3]), jnp.array([0, 0, 2]))
      (Array([4, 0, 3], dtype=int32), Array([0, 3, 2], dtype=int32))
    """
    return _coo("segment_max_coo", "max", src, index, out, dim_size, mode)


@functools.partial(jax.jit, static_argnames=("dim", "mode"))
def _gather_core(src: jax.Array, idx: jax.Array, *, dim: int, mode: str | None) -> jax.Array:
    shape = (*src.shape[:dim], idx.shape[dim], *src.shape[dim + 1 :])
    size = src.shape[dim]
    if size == 0:  # every entry is out of range (dropped: 0)
        return jnp.zeros(shape, src.dtype)
    idx = _indexing.prepare(idx, size, mode)
    out = _dtypes.gather_upcast_transpose(lambda x, i: _lowering.gather_back(x, i, dim), src, idx)
    valid = _lowering.in_range(idx, size, mode)
    if valid is not None:
        out = jnp.where(valid, out, 0)
    return jnp.broadcast_to(out, shape)


def _check_gather_out(fn: str, out: ArrayLike, result: jax.Array) -> None:
    out = _checks.as_array(fn, "out", out)
    if out.shape != result.shape or out.dtype != result.dtype:
        raise ValueError(
            f"{fn}: out has shape {out.shape} and dtype {out.dtype} but the result is "
            f"{result.shape} {result.dtype}; out only fixes the destination, as torch_scatter."
        )


def gather_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reads each entry's segment value: ``out[..., e, ...] = src[..., index[..., e], ...]``.

    torch_scatter's ``gather_coo`` (the inverse of :func:`segment_coo`) along axis
    ``index.ndim - 1``; the index's leading axes broadcast against ``src``'s. Any index order
    works. Gradient: a scatter-add back into ``src``. Out-of-range values: ``IndexError`` for a
    concrete index (mode None), else 0 (``'drop'``/traced) or clamped (``'clip'``).

    Args:
      src: per-segment values ``[..., S, ...]`` with ``S`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` of segment ids in ``[0, S)``; its leading axes equal
        ``src``'s or are 1.
      out: optional destination of the result's shape and dtype; overwritten as
        torch_scatter's (its values take no part). JAX returns the result instead of writing it.
      mode: index values outside ``[0, S)``: None raises ``IndexError`` for a concrete index
        and reads 0 when traced (``checkify.index_checks`` reports them); ``'drop'`` reads 0,
        ``'clip'`` clamps into ``[0, S - 1]``, ``'promise_in_bounds'`` promises none (else
        unspecified). Static.

    Returns:
      ``src``'s shape with axis ``index.ndim - 1`` -> ``E``, in ``src``'s dtype.

    Raises:
      ValueError: shapes that do not broadcast, ``out`` of the wrong shape or dtype.
      TypeError: non-integer index, bool ``src``.
      IndexError: a concrete index value outside ``[0, S)`` (``mode=None``).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import gather_coo
      >>> gather_coo(jnp.array([10.0, 20.0, 30.0]), jnp.array([0, 0, 2, 2]))
      Array([10., 10., 30., 30.], dtype=float32)
    """
    fn = "gather_coo"
    src = _arguments.as_src(fn, src)
    _checks.one_of(fn, "mode", mode, _indexing.SCATTER_MODES)
    idx, wide = _sorted.lead_index(fn, "index", index, src, whole=False)
    dim = _sorted.index_ndim(index) - 1
    _arguments.check_bounds(fn, wide, dim, src.shape[dim], mode)
    res = _lowering.call(_gather_core, (src, idx), dim, checked=src.shape[dim], mode=mode)
    if out is not None:
        _check_gather_out(fn, out, res)
    return res
