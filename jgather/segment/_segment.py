"""torch_scatter's sorted-segment family: ``segment_coo``, ``segment_csr`` (and their
``segment_{sum,add,mean,min,max}_{coo,csr}`` forms), ``gather_coo``, ``gather_csr``.

The reduction axis is ``index.ndim - 1`` (``indptr.ndim - 1``); the index's leading axes
broadcast against ``src``'s (each equal or 1), as torch_scatter expands them.

* ``segment_coo`` is :func:`jgather.segment.scatter` along that axis with
  ``indices_are_sorted=True`` passed to ``lax.scatter``, so XLA may exploit the order. The index
  must be sorted (non-decreasing) along that axis, as torch_scatter requires: a concrete index
  is checked (``ValueError``); a traced unsorted index gives unspecified values (XLA is allowed
  to assume the order; today's CPU backend happens to give the scatter result).
* ``segment_csr`` turns ``indptr`` into per-entry segment ids (one scatter of ones at the
  pointers and a log-depth cumulative sum) and reduces them on the sorted path. Entries before
  ``indptr[0]`` or from ``indptr[-1]`` on belong to no segment. As torch_scatter's kernel,
  ``out=`` is overwritten, not reduced into: its values take no part.
* ``gather_coo`` / ``gather_csr`` are the inverses: every entry reads its segment's value.
"""

from __future__ import annotations

import functools
from typing import Any, Literal, Protocol, TypeVar, overload

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks
from jgather._indexing import ScatterMode
from jgather.segment import _checks as ck
from jgather.segment import _lowering as lw
from jgather.segment import _scatter as sc

__all__ = [
    "gather_coo",
    "gather_csr",
    "segment_add_coo",
    "segment_add_csr",
    "segment_coo",
    "segment_csr",
    "segment_max_coo",
    "segment_max_csr",
    "segment_mean_coo",
    "segment_mean_csr",
    "segment_min_coo",
    "segment_min_csr",
    "segment_sum_coo",
    "segment_sum_csr",
]

_REDUCES = ("sum", "add", "mean", "min", "max")


def _lead_index(fn: str, name: str, index: Any, src: jax.Array, *, whole: bool) -> jax.Array:
    """The index aligned to ``src``'s leading axes (trailing size-1 axes appended).

    ``whole``: the last index axis must match ``src`` too (segment_coo); otherwise it is free
    (gather_coo's output length, segment_csr's pointers).
    """
    index = ck.as_index(fn, index, name)
    if index.ndim == 0:
        raise ValueError(
            f"{fn}: {name} is 0-dimensional; it needs at least one axis (its last axis is the "
            "one reduced along)."
        )
    if index.ndim > src.ndim:
        raise ValueError(
            f"{fn}: {name} has {index.ndim} dimensions (shape {index.shape}) but src only "
            f"{src.ndim} (shape {src.shape}); {name}.ndim must be <= src.ndim."
        )
    last = index.ndim - 1
    for d in range(index.ndim if whole else last):
        if index.shape[d] not in (1, src.shape[d]):
            raise ValueError(
                f"{fn}: {name} shape {index.shape} does not broadcast against src shape "
                f"{src.shape} at axis {d} ({index.shape[d]} vs {src.shape[d]}); its leading "
                "axes must equal src's or be 1 (torch_scatter's rule)."
            )
    return index.reshape(index.shape + (1,) * (src.ndim - index.ndim))


def _check_sorted(fn: str, index: jax.Array, dim: int) -> None:
    if ck.is_traced(index) or index.shape[dim] < 2:
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
    src = ck.as_src(fn, src)
    ck.check_mode(fn, mode)
    idx = _lead_index(fn, "index", index, src, whole=True)
    dim = index_ndim(index) - 1
    if out is not None:
        out = ck.check_out(fn, out, src, dim)
    size = ck.resolve_dim_size(fn, idx, dim_size, out, dim)
    ck.check_bounds(fn, idx, dim, size, mode)
    _check_sorted(fn, idx, dim)
    return _coo_core(src, idx, out, op=op, dim=dim, size=size, mode=mode)


def index_ndim(index: Any) -> int:
    return int(np.ndim(index))


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
        return sc.reduce_sum(src, idx, out, dim, size, mode, sorted=True)
    if op == "mean":
        return sc.reduce_mean(src, idx, out, dim, size, mode, sorted=True)
    return sc.reduce_arg(op, src, idx, out, dim, size, mode, sorted=True)


def _csr_ids(indptr: jax.Array, n: int) -> jax.Array:
    """Segment id of each of ``n`` entries per leading position: ``#{i: indptr[i] <= e} - 1``.

    -1 before ``indptr[0]``, ``S`` from ``indptr[S]`` on (both outside ``[0, S)``: dropped).
    """
    lead = indptr.shape[:-1]
    ptr = jnp.clip(indptr.reshape(-1, indptr.shape[-1]), 0, n)
    rows = ptr.shape[0]
    marks = jnp.zeros((rows, n + 1), jnp.int32)
    marks = marks.at[jnp.arange(rows)[:, None], ptr].add(1, mode="drop")
    # A log-depth scan: on XLA's CPU backend 2-3x faster than jnp.cumsum's reduce-window.
    ids = lax.associative_scan(jnp.add, marks[:, :n], axis=1) - 1
    return ids.astype(indptr.dtype).reshape(*lead, n)


def _check_indptr(fn: str, indptr: jax.Array, n: int, dim: int) -> None:
    if ck.is_traced(indptr) or indptr.size == 0:
        return
    values = np.asarray(indptr)
    if (np.diff(values, axis=dim) < 0).any():
        raise ValueError(
            f"{fn}: indptr must be non-decreasing along its last axis (segment i is "
            "[indptr[i], indptr[i + 1])), as torch_scatter assumes."
        )
    if values.min() < 0 or values.max() > n:
        raise IndexError(
            f"{fn}: indptr values must lie in [0, {n}] (src has {n} entries along the reduced "
            f"axis), got values in [{values.min()}, {values.max()}]."
        )


def _csr(
    fn: str, op: str, src: ArrayLike, indptr: ArrayLike, out: ArrayLike | None
) -> Any:  # an array, or (values, arg) for 'min' / 'max'
    src = ck.as_src(fn, src)
    ptr = _lead_index(fn, "indptr", indptr, src, whole=False)
    dim = index_ndim(indptr) - 1
    size = max(ptr.shape[dim] - 1, 0)
    if out is not None:
        out = ck.check_out(fn, out, src, dim)
        if out.shape[dim] != size:
            raise ValueError(
                f"{fn}: out.shape[{dim}] = {out.shape[dim]} but indptr defines {size} segments "
                f"(indptr.shape[-1] - 1); pass out of shape {lw.out_shape(src.shape, dim, size)}."
            )
    _check_indptr(fn, ptr, src.shape[dim], dim)
    return _csr_core(src, ptr, op=op, dim=dim, size=size)


@functools.partial(jax.jit, static_argnames=("op", "dim", "size"))
def _csr_core(
    src: jax.Array, ptr: jax.Array, *, op: str, dim: int, size: int
) -> jax.Array | tuple[jax.Array, jax.Array]:
    n = src.shape[dim]
    flat = jnp.moveaxis(ptr, dim, -1)
    ids = jnp.moveaxis(_csr_ids(flat, n), -1, dim)
    if op == "sum":
        return sc.reduce_sum(src, ids, None, dim, size, "drop", sorted=True)
    if op == "mean":
        return sc.reduce_mean(src, ids, None, dim, size, "drop", sorted=True)
    return sc.reduce_arg(op, src, ids, None, dim, size, "drop", sorted=True)


# --------------------------------------------------------------------------------------------
# Public: COO.

_COO_ARGS = """    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``index.ndim - 1``.
      index: integer array ``[..., E]`` sorted (non-decreasing) along its last axis; its
        leading axes equal ``src``'s or are 1.
      out: optional initial array (``src``'s shape with the reduced axis -> ``dim_size``),
        reduced into as torch_scatter does; returned updated, never written (JAX arrays are
        immutable).
      dim_size: number of segments; None: ``out``'s, or ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: out-of-range index values, as :func:`jgather.segment.scatter_sum`. Static."""


def _coo_doc(summary: str, returns: str, example: str) -> str:
    return (
        f"{summary}\n\n    Sorted-index form of :func:`jgather.segment.scatter` along axis "
        "``index.ndim - 1`` (torch_scatter's semantics: empty segments 0, arg sentinel "
        "``src.shape[dim]``); see the module docstring for what an unsorted index gives.\n\n"
        f"{_COO_ARGS}\n\n    Returns:\n      {returns}\n\n    Raises:\n      ValueError: "
        "unsorted concrete index, shapes that do not broadcast, traced index without "
        "``dim_size``.\n      TypeError, IndexError: as :func:`jgather.segment.scatter_sum`.\n"
        f"\n    Example:\n{example}"
    )


def segment_coo(
    src: ArrayLike,
    index: ArrayLike,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    reduce: Literal["sum", "add", "mean", "min", "max"] = "sum",
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    fn = "segment_coo"
    ck.check_reduce(fn, reduce, _REDUCES)
    op = {"add": "sum"}.get(reduce, reduce)
    res = _coo(fn, op, src, index, out, dim_size, mode)
    return res[0] if op in ("min", "max") else res


segment_coo.__doc__ = _coo_doc(
    "Reduces ``src`` over runs of a sorted ``index`` with ``reduce`` (sum/add, mean, min, max).",
    "``src``'s shape with axis ``index.ndim - 1`` -> ``dim_size``.",
    """      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_coo
      >>> segment_coo(jnp.arange(6.0), jnp.array([0, 0, 1, 1, 1, 3]), reduce="sum")
      Array([1., 9., 0., 5.], dtype=float32)
""",
)


_R_co = TypeVar("_R_co", covariant=True)


class _CooFunction(Protocol[_R_co]):
    """The signature of the ``segment_*_coo`` functions."""

    def __call__(
        self,
        src: ArrayLike,
        index: ArrayLike,
        out: ArrayLike | None = None,
        dim_size: int | None = None,
        *,
        mode: ScatterMode = None,
    ) -> _R_co: ...


class _CsrFunction(Protocol[_R_co]):
    """The signature of the ``segment_*_csr`` functions."""

    def __call__(
        self, src: ArrayLike, indptr: ArrayLike, out: ArrayLike | None = None
    ) -> _R_co: ...


@overload
def _coo_variant(
    name: str, op: Literal["sum", "mean"], summary: str, example: str
) -> _CooFunction[jax.Array]: ...
@overload
def _coo_variant(
    name: str, op: Literal["min", "max"], summary: str, example: str
) -> _CooFunction[tuple[jax.Array, jax.Array]]: ...
def _coo_variant(name: str, op: str, summary: str, example: str) -> _CooFunction[Any]:
    def f(
        src: ArrayLike,
        index: ArrayLike,
        out: ArrayLike | None = None,
        dim_size: int | None = None,
        *,
        mode: ScatterMode = None,
    ) -> Any:
        return _coo(name, op, src, index, out, dim_size, mode)

    f.__name__ = f.__qualname__ = name
    returns = (
        "``(values, arg)``, each ``src``'s shape with the reduced axis -> ``dim_size``."
        if op in ("min", "max")
        else "``src``'s shape with the reduced axis -> ``dim_size``."
    )
    f.__doc__ = _coo_doc(summary, returns, example)
    f.__module__ = __name__
    return f


_EX = (
    "      >>> import jax.numpy as jnp\n"
    "      >>> from jgather.segment import {n}\n"
    "      >>> {n}({a})\n"
    "      {r}\n"
)
segment_sum_coo = _coo_variant(
    "segment_sum_coo",
    "sum",
    "Sums ``src`` over runs of a sorted ``index``.",
    _EX.format(
        n="segment_sum_coo",
        a="jnp.array([1, 2, 3]), jnp.array([0, 0, 2])",
        r="Array([3, 0, 3], dtype=int32)",
    ),
)
segment_add_coo = _coo_variant(
    "segment_add_coo",
    "sum",
    "Alias of :func:`segment_sum_coo` (torch_scatter's name).",
    _EX.format(
        n="segment_add_coo",
        a="jnp.array([1, 2, 3]), jnp.array([0, 0, 2])",
        r="Array([3, 0, 3], dtype=int32)",
    ),
)
segment_mean_coo = _coo_variant(
    "segment_mean_coo",
    "mean",
    "Means of ``src`` over runs of a sorted ``index`` (integer means floor).",
    _EX.format(
        n="segment_mean_coo",
        a="jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 0, 2])",
        r="Array([1.5, 0. , 3. ], dtype=float32)",
    ),
)
segment_min_coo = _coo_variant(
    "segment_min_coo",
    "min",
    "Minimum and argmin over runs of a sorted ``index``.",
    _EX.format(
        n="segment_min_coo",
        a="jnp.array([4, 2, 3]), jnp.array([0, 0, 2])",
        r="(Array([2, 0, 3], dtype=int32), Array([1, 3, 2], dtype=int32))",
    ),
)
segment_max_coo = _coo_variant(
    "segment_max_coo",
    "max",
    "Maximum and argmax over runs of a sorted ``index``.",
    _EX.format(
        n="segment_max_coo",
        a="jnp.array([4, 2, 3]), jnp.array([0, 0, 2])",
        r="(Array([4, 0, 3], dtype=int32), Array([0, 3, 2], dtype=int32))",
    ),
)

# --------------------------------------------------------------------------------------------
# Public: CSR.

_CSR_ARGS = """    Args:
      src: values ``[..., E, ...]`` with ``E`` at axis ``indptr.ndim - 1``.
      indptr: integer array ``[..., S + 1]``, non-decreasing, values in ``[0, E]``: segment
        ``i`` is ``src[indptr[i]:indptr[i + 1]]`` along the reduced axis. Leading axes equal
        ``src``'s or are 1.
      out: optional array of the output shape. As torch_scatter's kernel, its values are
        overwritten (they take no part); JAX returns the result instead of writing ``out``."""


def _csr_doc(summary: str, returns: str, example: str) -> str:
    return (
        f"{summary}\n\n    torch_scatter's CSR form: empty segments 0 (arg sentinel "
        "``src.shape[dim]``); lowered to segment ids and the sorted scatter path.\n\n"
        f"{_CSR_ARGS}\n\n    Returns:\n      {returns}\n\n    Raises:\n      ValueError: "
        "decreasing concrete ``indptr``, shapes that do not broadcast, ``out`` shape.\n"
        "      IndexError: concrete ``indptr`` values outside ``[0, E]``.\n"
        f"\n    Example:\n{example}"
    )


def segment_csr(
    src: ArrayLike,
    indptr: ArrayLike,
    out: ArrayLike | None = None,
    reduce: Literal["sum", "add", "mean", "min", "max"] = "sum",
) -> jax.Array:
    fn = "segment_csr"
    ck.check_reduce(fn, reduce, _REDUCES)
    op = {"add": "sum"}.get(reduce, reduce)
    res = _csr(fn, op, src, indptr, out)
    return res[0] if op in ("min", "max") else res


segment_csr.__doc__ = _csr_doc(
    "Reduces ``src`` over the ranges ``[indptr[i], indptr[i + 1])`` with ``reduce``.",
    "``src``'s shape with axis ``indptr.ndim - 1`` -> ``indptr.shape[-1] - 1``.",
    """      >>> import jax.numpy as jnp
      >>> from jgather.segment import segment_csr
      >>> segment_csr(jnp.arange(6.0), jnp.array([0, 2, 5, 5, 6]), reduce="mean")
      Array([0.5, 3. , 0. , 5. ], dtype=float32)
""",
)


@overload
def _csr_variant(
    name: str, op: Literal["sum", "mean"], summary: str, example: str
) -> _CsrFunction[jax.Array]: ...
@overload
def _csr_variant(
    name: str, op: Literal["min", "max"], summary: str, example: str
) -> _CsrFunction[tuple[jax.Array, jax.Array]]: ...
def _csr_variant(name: str, op: str, summary: str, example: str) -> _CsrFunction[Any]:
    def f(src: ArrayLike, indptr: ArrayLike, out: ArrayLike | None = None) -> Any:
        return _csr(name, op, src, indptr, out)

    f.__name__ = f.__qualname__ = name
    returns = (
        "``(values, arg)``, each ``src``'s shape with the reduced axis -> ``S``."
        if op in ("min", "max")
        else "``src``'s shape with the reduced axis -> ``S``."
    )
    f.__doc__ = _csr_doc(summary, returns, example)
    f.__module__ = __name__
    return f


_P = "jnp.array([4, 2, 3]), jnp.array([0, 2, 2, 3])"
segment_sum_csr = _csr_variant(
    "segment_sum_csr",
    "sum",
    "Sums ``src`` over CSR ranges.",
    _EX.format(n="segment_sum_csr", a=_P, r="Array([6, 0, 3], dtype=int32)"),
)
segment_add_csr = _csr_variant(
    "segment_add_csr",
    "sum",
    "Alias of :func:`segment_sum_csr` (torch_scatter's name).",
    _EX.format(n="segment_add_csr", a=_P, r="Array([6, 0, 3], dtype=int32)"),
)
segment_mean_csr = _csr_variant(
    "segment_mean_csr",
    "mean",
    "Means of ``src`` over CSR ranges (integer means floor).",
    _EX.format(n="segment_mean_csr", a=_P, r="Array([3, 0, 3], dtype=int32)"),
)
segment_min_csr = _csr_variant(
    "segment_min_csr",
    "min",
    "Minimum and argmin over CSR ranges.",
    _EX.format(
        n="segment_min_csr",
        a=_P,
        r="(Array([2, 0, 3], dtype=int32), Array([1, 3, 2], dtype=int32))",
    ),
)
segment_max_csr = _csr_variant(
    "segment_max_csr",
    "max",
    "Maximum and argmax over CSR ranges.",
    _EX.format(
        n="segment_max_csr",
        a=_P,
        r="(Array([4, 0, 3], dtype=int32), Array([0, 3, 2], dtype=int32))",
    ),
)

# --------------------------------------------------------------------------------------------
# Public: gathers.


@functools.partial(jax.jit, static_argnames=("dim", "mode"))
def _gather_core(src: jax.Array, idx: jax.Array, *, dim: int, mode: str | None) -> jax.Array:
    shape = (*src.shape[:dim], idx.shape[dim], *src.shape[dim + 1 :])
    size = src.shape[dim]
    if size == 0:  # every entry is out of range (dropped: 0)
        return jnp.zeros(shape, src.dtype)
    idx = lw.prepare_index(idx, size, mode)
    out = lw.gather_back(src, idx, dim)
    valid = lw.in_range(idx, size, mode)
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
    src: ArrayLike, index: ArrayLike, out: ArrayLike | None = None, *, mode: ScatterMode = None
) -> jax.Array:
    """Reads each entry's segment value: ``out[..., e, ...] = src[..., index[..., e], ...]``.

    torch_scatter's ``gather_coo`` (the inverse of :func:`segment_coo`) along axis
    ``index.ndim - 1``; the index's leading axes broadcast against ``src``'s. Any index order
    works. Gradient: a scatter-add back into ``src``. Out-of-range values: ``IndexError`` for a
    concrete index (mode None), else 0 (``'drop'``/traced) or clamped (``'clip'``).

    Args:
      src: per-segment values ``[..., S, ...]``.
      index: integer array ``[..., E]``.
      out: optional destination of the result's shape; overwritten as torch_scatter's (its
        values take no part). JAX returns the result instead of writing it.
      mode: out-of-range index values. Static.

    Returns:
      ``src``'s shape with axis ``index.ndim - 1`` -> ``E``.

    Raises:
      ValueError: shapes that do not broadcast, ``out`` of the wrong shape.
      TypeError, IndexError: as :func:`jgather.segment.scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import gather_coo
      >>> gather_coo(jnp.array([10.0, 20.0, 30.0]), jnp.array([0, 0, 2, 2]))
      Array([10., 10., 30., 30.], dtype=float32)
    """
    fn = "gather_coo"
    src = ck.as_src(fn, src)
    ck.check_mode(fn, mode)
    idx = _lead_index(fn, "index", index, src, whole=False)
    dim = index_ndim(index) - 1
    ck.check_bounds(fn, idx, dim, src.shape[dim], mode)
    res = _gather_core(src, idx, dim=dim, mode=mode)
    if out is not None:
        _check_gather_out(fn, out, res)
    return res


def gather_csr(src: ArrayLike, indptr: ArrayLike, out: ArrayLike | None = None) -> jax.Array:
    """Repeats each segment's value over its CSR range: the inverse of :func:`segment_csr`.

    torch_scatter's ``gather_csr``: ``out[..., e, ...] = src[..., i, ...]`` for ``e`` in
    ``[indptr[i], indptr[i + 1])``. The output length is ``indptr[..., -1]`` (its last value,
    as torch_scatter), so it needs a concrete ``indptr`` -- or ``out=``, whose shape gives
    the length under jit. Positions outside every range keep ``out`` (0 without ``out``).

    Args:
      src: per-segment values ``[..., S, ...]`` with ``S = indptr.shape[-1] - 1``.
      indptr: integer array ``[..., S + 1]``, non-decreasing.
      out: optional destination array; positions in a range are overwritten, the result is
        returned (``out`` itself is never written).

    Returns:
      ``src``'s shape with axis ``indptr.ndim - 1`` -> the output length.

    Raises:
      ValueError: traced ``indptr`` without ``out``; shapes; a decreasing concrete ``indptr``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import gather_csr
      >>> gather_csr(jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 2, 2, 3]))
      Array([1., 1., 3.], dtype=float32)
    """
    fn = "gather_csr"
    src = ck.as_src(fn, src)
    ptr = _lead_index(fn, "indptr", indptr, src, whole=False)
    dim = index_ndim(indptr) - 1
    if ptr.shape[dim] - 1 != src.shape[dim]:
        raise ValueError(
            f"{fn}: indptr defines {ptr.shape[dim] - 1} segments but src has {src.shape[dim]} "
            f"along axis {dim}; indptr.shape[-1] must be src.shape[{dim}] + 1."
        )
    if out is not None:
        out = ck.check_out(fn, out, src, dim)
        n = out.shape[dim]
    elif ck.is_traced(ptr):
        raise ValueError(
            f"{fn}: the output length is indptr[..., -1], unknown when indptr is traced (under "
            "jax.jit/vmap); pass out= (an array of the output shape fixes it)."
        )
    else:
        n = int(np.asarray(ptr).reshape(-1)[-1]) if ptr.size else 0
    _check_indptr(fn, ptr, n, dim)
    return _gather_csr_core(src, ptr, out, dim=dim, n=n)


@functools.partial(jax.jit, static_argnames=("dim", "n"))
def _gather_csr_core(
    src: jax.Array, ptr: jax.Array, out: jax.Array | None, *, dim: int, n: int
) -> jax.Array:
    flat = jnp.moveaxis(ptr, dim, -1)
    ids = jnp.moveaxis(_csr_ids(flat, n), -1, dim)
    shape = (*src.shape[:dim], n, *src.shape[dim + 1 :])
    base = jnp.zeros(shape, src.dtype) if out is None else out
    if src.shape[dim] == 0:
        return base
    hit = (ids >= 0) & (ids < src.shape[dim])
    return jnp.where(hit, lw.gather_back(src, ids, dim), base)
