"""Plain NumPy references for the differential tests: torch's gather/scatter, torch_scatter.

Two references in one module, and the helpers the test modules share:

1. **torch's gather/scatter family** (``gather`` ... ``index_select``), for jgather's ops.
2. **torch_scatter 2.1** (``ts_scatter`` ... ``gather_csr``), for ``jgather.segment``. Its
   ``scatter`` is named ``ts_scatter`` here: it takes torch_scatter's ``(src, index, dim)``,
   not torch's ``(input, dim, index, src)``.
3. Helpers: the dtype tables (``DTYPES``, ``SEGMENT_DTYPES``, ``JAX_DTYPES``, ...), ``REDUCES``,
   ``assert_matches`` (dtype-keyed tolerances), ``np_dtype``, ``count_traces``. The hypothesis
   strategies live in ``strategies.py``.

torch's family
--------------
Every function here is written from the documented formula, one output (or one index) position
at a time, with explicit Python loops and no vectorised indexing tricks, so that it is easy to
read against the torch documentation and hard to get wrong in the same way as an XLA lowering:

* ``gather``:  ``out[i][j][k] = input[i][index[i][j][k]][k]``  (dim=1; the other dims likewise)
* ``scatter``: ``self[i][index[i][j][k]][k] = src[i][j][k]``   (dim=1), optionally ``+=`` / ``*=``
* ``scatter_reduce``: every ``src[i][j][k]`` is reduced into ``self[i][index[i][j][k]][k]`` with
  sum / prod / mean / amax / amin; with ``include_self=False`` the old value of a position that
  receives at least one ``src`` value takes no part; positions that receive none keep ``self``.
* ``take_along_dim``: ``input`` and ``indices`` broadcast against each other on every dim but
  ``dim``, then ``gather``; ``dim=None`` gathers from the flattened input.
* ``index_select``: ``out`` is ``input`` with ``dim`` replaced by the entries of a 1-D index.

Arithmetic happens in the array's own dtype (integers wrap on overflow, bool adds as "or" and
multiplies as "and"), and contributions are combined in row-major order of the index, which is
the order torch's CPU kernel uses. Integer ``mean`` rounds toward minus infinity (floor division),
as torch does. Out-of-range index values raise IndexError with torch's wording.

The tests use this module only on inputs that torch accepts; it checks its own preconditions with
plain ValueError so a malformed test case fails loudly instead of producing a silent reference.

torch_scatter
-------------
Written from torch_scatter's documented formulas and its Python sources
(``torch_scatter/scatter.py``, ``utils.broadcast``, ``composite/{std,logsumexp,softmax}.py``,
the ``segment_*`` docs), one ``src`` entry at a time with explicit loops:

* ``broadcast(index, src, dim)``: a 1-D index is lined up with ``dim``; trailing size-1 axes
  are added; the result is expanded to ``src``'s shape.
* ``ts_scatter``: each ``src[pos]`` goes to ``out[pos with pos[dim] := index[pos]]``; the output
  size on ``dim`` is ``dim_size`` or ``index.max() + 1``. Empty segments: sum 0, mean 0,
  mul 1, min/max 0 with arg ``src.shape[dim]``; ``out=`` is the initial value.
* max/min visit entries in increasing position along ``dim`` and replace the running value
  only when strictly better, so the first of equal values wins and ``out`` wins a tie. Where
  jgather deliberately differs from torch_scatter's kernel (NaN propagates, first NaN wins;
  an all -inf segment is -inf) this reference states jgather's rule and says so.
* ``mean``: ``(out + sum) / max(count, 1)``; integers floor.
* ``std``: ``sqrt((out + sum (x - mean)^2) / (max(count - unbiased, 1) + 1e-6))``.
* ``logsumexp``: ``log(sum exp(x - m) + eps) + m`` over the segment (and ``out``), 0 when
  empty (``out`` when given); non-finite ``m`` is returned as is (jgather's rule).
* ``softmax`` / ``log_softmax``: per segment, shifted by its max.
* ``segment_coo`` = ``ts_scatter`` along ``index.ndim - 1``; ``segment_csr`` reduces the ranges
  ``[indptr[i], indptr[i + 1])`` and overwrites ``out``; ``gather_*`` read segment values.

Float sums accumulate in float64 and are rounded once to the dtype; integers wrap in their
own dtype, as torch does.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator

import jax_compat
import ml_dtypes
import numpy as np

# The reference ops (torch's, then torch_scatter's), then the helpers the test modules share.
__all__ = [  # noqa: RUF022
    "gather",
    "index_select",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "scatter_targets",
    "take_along_dim",
    "broadcast",
    "ts_scatter",
    "scatter_arg",
    "scatter_std",
    "scatter_logsumexp",
    "scatter_softmax",
    "segment_coo",
    "segment_csr",
    "gather_coo",
    "gather_csr",
    "DTYPES",
    "FLOAT8",
    "FLOATS",
    "JAX_DTYPES",
    "REDUCES",
    "SEGMENT_DTYPES",
    "assert_matches",
    "count_traces",
    "np_dtype",
]

#: torch.scatter_reduce's reductions, in torch's documented order.
REDUCES = ("sum", "prod", "mean", "amax", "amin")


def _norm_dim(dim: int, ndim: int) -> int:
    """Wraps a negative dim as torch does; a 0-d tensor behaves as a 1-element 1-D one."""
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(f"dim {dim} out of range for rank {ndim}")
    return dim % rank


def _check_index(value: int, dim: int, size: int) -> int:
    if not 0 <= value < size:
        raise IndexError(f"index {value} is out of bounds for dimension {dim} with size {size}")
    return int(value)


def _as_1d_if_scalar(*arrays: np.ndarray) -> list[np.ndarray]:
    return [a.reshape(1) if a.ndim == 0 else a for a in arrays]


def gather(input, dim: int, index) -> np.ndarray:
    """torch.gather: out[pos] = input[pos with pos[dim] replaced by index[pos]]."""
    input = np.asarray(input)
    index = np.asarray(index)
    if index.ndim != input.ndim and not (input.ndim <= 1 and index.ndim <= 1):
        raise ValueError("gather: index and input must have the same rank")
    dim = _norm_dim(dim, input.ndim)
    out_shape = index.shape
    x, idx = _as_1d_if_scalar(input, index)
    for d in range(x.ndim):
        if d != dim and idx.shape[d] > x.shape[d]:
            raise ValueError("gather: index larger than input off dim")
    out = np.empty(idx.shape, dtype=x.dtype)
    for pos in np.ndindex(*idx.shape):
        src_pos = list(pos)
        src_pos[dim] = _check_index(idx[pos], dim, x.shape[dim])
        out[pos] = x[tuple(src_pos)]
    return out.reshape(out_shape)


def scatter_targets(input_shape, dim: int, index) -> dict[tuple[int, ...], list[tuple[int, ...]]]:
    """Maps every written position of ``self`` to the index positions writing it, in order."""
    index = np.asarray(index)
    ndim = len(input_shape)
    dim = _norm_dim(dim, ndim)
    shape = tuple(input_shape) if ndim else (1,)
    (idx,) = _as_1d_if_scalar(index)
    targets: dict[tuple[int, ...], list[tuple[int, ...]]] = {}
    for pos in np.ndindex(*idx.shape):
        dst = list(pos)
        dst[dim] = _check_index(idx[pos], dim, shape[dim])
        key = tuple(dst) if ndim else ()
        targets.setdefault(key, []).append(pos if index.ndim else ())
    return targets


def _check_scatter_shapes(input, index, src, dim) -> None:
    if index.ndim != input.ndim and not (input.ndim <= 1 and index.ndim <= 1):
        raise ValueError("scatter: index and self must have the same rank")
    if src is not None and src.ndim != index.ndim and not (src.ndim <= 1 and index.ndim <= 1):
        raise ValueError("scatter: index and src must have the same rank")
    x, idx = _as_1d_if_scalar(input, index)
    for d in range(idx.ndim):
        if d != dim and idx.shape[d] > x.shape[d]:
            raise ValueError("scatter: index larger than self off dim")
        if src is not None and idx.shape[d] > _as_1d_if_scalar(src)[0].shape[d]:
            raise ValueError("scatter: index larger than src")


def _combine(a, b, op: str):
    """One step of a reduction, in the dtype of ``a`` (wrapping ints, logical bools)."""
    with np.errstate(all="ignore"):
        if op in ("sum", "add"):
            if a.dtype == np.bool_:
                return np.asarray(np.logical_or(a, b))
            return np.asarray(a + b, dtype=a.dtype)
        if op in ("prod", "multiply"):
            if a.dtype == np.bool_:
                return np.asarray(np.logical_and(a, b))
            return np.asarray(a * b, dtype=a.dtype)
        if op == "amax":
            if _isnan(a) or _isnan(b):
                return np.asarray(np.nan, dtype=a.dtype)
            return np.asarray(b if b > a else a, dtype=a.dtype)
        if op == "amin":
            if _isnan(a) or _isnan(b):
                return np.asarray(np.nan, dtype=a.dtype)
            return np.asarray(b if b < a else a, dtype=a.dtype)
    raise ValueError(f"unknown reduction {op!r}")


def _isnan(v) -> bool:
    v = np.asarray(v)
    return bool(np.issubdtype(v.dtype, np.inexact) or v.dtype.name == "bfloat16") and bool(
        np.isnan(v.astype(np.float32))
    )


def scatter(input, dim: int, index, src, reduce: str | None = None) -> np.ndarray:
    """torch.scatter: self[pos with pos[dim] := index[pos]] = src[pos] (or += / *= with reduce).

    ``src`` may be an array or a Python scalar (cast to ``input``'s dtype, as torch does). With
    duplicate targets and ``reduce=None`` the last write in row-major order of ``index`` wins
    (torch calls the result undefined; tests use ``scatter_targets`` for those positions).
    """
    if reduce not in (None, "add", "multiply"):
        raise ValueError(f"scatter: unknown reduce {reduce!r}")
    input = np.asarray(input)
    index = np.asarray(index)
    dim = _norm_dim(dim, input.ndim)
    scalar = np.ndim(src) == 0 and not isinstance(src, np.ndarray)
    src_arr = None if scalar else np.asarray(src)
    _check_scatter_shapes(input, index, src_arr, dim)
    out = input.copy().reshape(input.shape or (1,))
    flat_src = None if scalar else _as_1d_if_scalar(src_arr)[0]
    for dst, positions in scatter_targets(input.shape, dim, index).items():
        key = dst if input.ndim else (0,)
        for pos in positions:
            if scalar:
                value = np.asarray(src).astype(input.dtype)
            else:
                value = flat_src[pos if index.ndim else (0,)]
            if reduce is None:
                out[key] = value
            else:
                out[key] = _combine(np.asarray(out[key]), value, reduce)
    return out.reshape(input.shape)


def scatter_add(input, dim: int, index, src) -> np.ndarray:
    """torch.scatter_add: self[pos with pos[dim] := index[pos]] += src[pos]."""
    return scatter(input, dim, index, np.asarray(src), reduce="add")


def scatter_reduce(input, dim: int, index, src, reduce: str, include_self: bool = True):
    """torch.scatter_reduce: reduce every src value into its target with ``reduce``.

    ``mean`` divides the sum by the number of values reduced (the old value counts when
    ``include_self``); integer means use floor division, as torch does.
    """
    if reduce not in REDUCES:
        raise ValueError(f"scatter_reduce: unknown reduce {reduce!r}")
    input = np.asarray(input)
    index = np.asarray(index)
    src = np.asarray(src)
    if reduce == "mean" and input.dtype == np.bool_:
        raise ValueError("scatter_reduce: torch has no 'mean' for bool")
    dim = _norm_dim(dim, input.ndim)
    _check_scatter_shapes(input, index, src, dim)
    out = input.copy().reshape(input.shape or (1,))
    flat_src = _as_1d_if_scalar(src)[0]
    op = "sum" if reduce == "mean" else reduce
    for dst, positions in scatter_targets(input.shape, dim, index).items():
        key = dst if input.ndim else (0,)
        values = [np.asarray(flat_src[pos if index.ndim else (0,)]) for pos in positions]
        if include_self:
            values.insert(0, np.asarray(out[key]))
        acc = values[0]
        for v in values[1:]:
            acc = _combine(acc, v, op)
        if reduce == "mean":
            count = len(values)
            if np.issubdtype(input.dtype, np.integer):
                acc = np.asarray(np.floor_divide(acc, count), dtype=input.dtype)
            else:
                acc = np.asarray(acc / np.asarray(count, dtype=input.dtype), dtype=input.dtype)
        out[key] = acc
    return out.reshape(input.shape)


def take_along_dim(input, indices, dim: int | None = None) -> np.ndarray:
    """torch.take_along_dim: broadcast off ``dim``, then gather; ``dim=None`` on the flat input."""
    input = np.asarray(input)
    indices = np.asarray(indices)
    if dim is None:
        return gather(input.reshape(-1), 0, indices.reshape(-1))
    if input.ndim != indices.ndim:
        raise ValueError("take_along_dim: input and indices must have the same rank")
    dim = _norm_dim(dim, input.ndim)
    if input.ndim == 0:
        return gather(input, 0, indices)
    in_shape, idx_shape = [], []
    for d, (a, b) in enumerate(zip(input.shape, indices.shape, strict=True)):
        if d == dim:
            in_shape.append(a)
            idx_shape.append(b)
            continue
        if a != b and 1 not in (a, b):
            raise ValueError("take_along_dim: shapes do not broadcast")
        size = b if a == 1 else a
        in_shape.append(size)
        idx_shape.append(size)
    return gather(np.broadcast_to(input, in_shape), dim, np.broadcast_to(indices, idx_shape))


def index_select(input, dim: int, index) -> np.ndarray:
    """torch.index_select: out = input with positions along ``dim`` taken from 1-D ``index``."""
    input = np.asarray(input)
    index = np.asarray(index)
    if index.ndim > 1:
        raise ValueError("index_select: index must be 0-d or 1-D")
    dim = _norm_dim(dim, input.ndim)
    idx = index.reshape(-1)
    if input.ndim == 0:
        if idx.size != 1:
            raise ValueError("index_select: a 0-d input takes exactly one index")
        _check_index(idx[0], 0, 1)
        return input.copy()
    out_shape = list(input.shape)
    out_shape[dim] = idx.size
    out = np.empty(out_shape, dtype=input.dtype)
    for pos in np.ndindex(*out_shape):
        src_pos = list(pos)
        src_pos[dim] = _check_index(idx[pos[dim]], dim, input.shape[dim])
        out[pos] = input[tuple(src_pos)]
    return out


# --------------------------------------------------------------------------------------------
# torch_scatter 2.1, for jgather.segment (see the module docstring).


def _f64(x):
    return np.asarray(x).astype(np.float64)


def broadcast(index, src_shape, dim):
    index = np.asarray(index)
    n = len(src_shape)
    dim = dim % n
    shape = index.shape
    if index.ndim == 1:
        shape = (1,) * dim + shape
    shape = shape + (1,) * (n - len(shape))
    return np.broadcast_to(index.reshape(shape), src_shape)


def _groups(src, index, dim, size):
    """{output position: [(position along dim, value), ...]} in increasing position."""
    idx = broadcast(index, src.shape, dim)
    dim = dim % src.ndim
    groups = {}
    for pos in np.ndindex(*src.shape):
        i = int(idx[pos])
        if not 0 <= i < size:
            raise IndexError(f"index {i} out of range for dim_size {size}")
        dst = list(pos)
        dst[dim] = i
        groups.setdefault(tuple(dst), []).append((pos[dim], src[pos]))
    return groups


def _size(index, dim_size, out, dim):
    if out is not None:
        return out.shape[dim]
    if dim_size is not None:
        return dim_size
    index = np.asarray(index)
    return 0 if index.size == 0 else int(index.max()) + 1


def _out_shape(src, dim, size):
    shape = list(src.shape)
    shape[dim] = size
    return tuple(shape)


def ts_scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
    """torch_scatter.scatter (values only for min/max)."""
    if reduce in ("min", "max"):
        return scatter_arg(src, index, dim, out, dim_size, reduce)[0]
    src = np.asarray(src)
    dim = dim % src.ndim
    size = _size(index, dim_size, out, dim)
    shape = _out_shape(src, dim, size)
    floating = src.dtype.kind == "f" or src.dtype.name == "bfloat16"
    groups = _groups(src, index, dim, size)
    res = np.empty(shape, src.dtype)
    for pos in np.ndindex(*shape):
        values = [v for _, v in groups.get(pos, [])]
        init = None if out is None else out[pos]
        if reduce in ("sum", "add", "mean"):
            if floating:
                acc = sum((float(v) for v in values), 0.0 if init is None else float(init))
            else:
                acc = np.asarray(0 if init is None else init, src.dtype)
                with np.errstate(over="ignore"):
                    for v in values:
                        acc = np.asarray(acc + v, src.dtype)
            if reduce == "mean":
                count = max(len(values), 1)
                acc = acc / count if floating else np.floor_divide(int(acc), count)
            res[pos] = acc
        elif reduce == "mul":
            if floating:
                acc = 1.0 if init is None else float(init)
                for v in values:
                    acc *= float(v)
            else:
                acc = np.asarray(1 if init is None else init, src.dtype)
                with np.errstate(over="ignore"):
                    for v in values:
                        acc = np.asarray(acc * v, src.dtype)
            res[pos] = acc
        else:
            raise ValueError(reduce)
    return res


def _isnan_scalar(v):
    return (isinstance(v, float | np.floating) and math.isnan(float(v))) or (
        np.asarray(v).dtype.name == "bfloat16" and math.isnan(float(v))
    )


def scatter_arg(src, index, dim=-1, out=None, dim_size=None, reduce="max"):
    """(values, arg) of torch_scatter.scatter_max/min; NaN propagates (jgather's rule)."""
    src = np.asarray(src)
    dim = dim % src.ndim
    size = _size(index, dim_size, out, dim)
    shape = _out_shape(src, dim, size)
    groups = _groups(src, index, dim, size)
    n = src.shape[dim]
    vals = np.zeros(shape, src.dtype) if out is None else np.array(out, copy=True)
    args = np.full(shape, n, np.int64)
    better = (lambda a, b: a > b) if reduce == "max" else (lambda a, b: a < b)
    for pos in np.ndindex(*shape):
        entries = groups.get(pos, [])
        best, arg = (None, n) if out is None else (out[pos], n)
        for p, v in entries:
            if best is not None and _isnan_scalar(best):
                break
            if best is None or _isnan_scalar(v) or better(float(v), float(best)):
                best, arg = v, p
        if best is not None:
            vals[pos], args[pos] = best, arg
    return vals, args


def scatter_std(src, index, dim=-1, out=None, dim_size=None, unbiased=True):
    src = np.asarray(src)
    dim = dim % src.ndim
    size = _size(index, dim_size, out, dim)
    shape = _out_shape(src, dim, size)
    groups = _groups(src, index, dim, size)
    res = np.zeros(shape, np.float64)
    for pos in np.ndindex(*shape):
        values = [float(v) for _, v in groups.get(pos, [])]
        count = len(values)
        mean = sum(values) / max(count, 1)
        sq = sum((v - mean) ** 2 for v in values) + (0.0 if out is None else float(out[pos]))
        res[pos] = math.sqrt(sq / (max(count - 1 if unbiased else count, 1) + 1e-6))
    return res.astype(src.dtype)


def scatter_logsumexp(src, index, dim=-1, out=None, dim_size=None, eps=1e-12):
    src = np.asarray(src)
    dim = dim % src.ndim
    size = _size(index, dim_size, out, dim)
    shape = _out_shape(src, dim, size)
    groups = _groups(src, index, dim, size)
    res = np.zeros(shape, np.float64)
    for pos in np.ndindex(*shape):
        values = [float(v) for _, v in groups.get(pos, [])]
        if not values:
            res[pos] = 0.0 if out is None else float(out[pos])
            continue
        if out is not None:
            values.append(float(out[pos]))
        m = max(values) if not any(math.isnan(v) for v in values) else math.nan
        if not math.isfinite(m):
            res[pos] = m
            continue
        res[pos] = math.log(sum(math.exp(v - m) for v in values) + eps) + m
    return res.astype(src.dtype)


def scatter_softmax(src, index, dim=-1, dim_size=None, *, log=False, eps=1e-12):
    src = np.asarray(src)
    dim = dim % src.ndim
    size = _size(index, dim_size, None, dim)
    idx = broadcast(index, src.shape, dim)
    groups = _groups(src, index, dim, size)
    res = np.zeros(src.shape, np.float64)
    for pos in np.ndindex(*src.shape):
        dst = list(pos)
        dst[dim] = int(idx[pos])
        values = [float(v) for _, v in groups[tuple(dst)]]
        m = max(values)
        total = sum(math.exp(v - m) for v in values)
        x = float(src[pos]) - m
        res[pos] = x - math.log(total + eps) if log else math.exp(x) / total
    return res.astype(src.dtype)


def segment_coo(src, index, out=None, dim_size=None, reduce="sum"):
    index = np.asarray(index)
    dim = index.ndim - 1
    assert (np.diff(index, axis=-1) >= 0).all(), "segment_coo needs a sorted index"
    lead = np.broadcast_to(index, np.asarray(src).shape[: index.ndim])
    return ts_scatter(src, lead, dim, out, dim_size, reduce)


def segment_csr(src, indptr, reduce="sum"):
    """Values (and args for min/max) of torch_scatter.segment_csr, written per range."""
    src = np.asarray(src)
    indptr = np.asarray(indptr)
    dim = indptr.ndim - 1
    segs = indptr.shape[-1] - 1
    shape = _out_shape(src, dim, segs)
    lead = np.broadcast_to(indptr, (*src.shape[:dim], segs + 1))
    res = np.zeros(shape, src.dtype)
    args = np.full(shape, src.shape[dim], np.int64)
    for pos in np.ndindex(*shape):
        ptr = lead[pos[:dim]]
        lo, hi = int(ptr[pos[dim]]), int(ptr[pos[dim] + 1])
        entries = []
        for e in range(lo, hi):
            p = list(pos)
            p[dim] = e
            entries.append((e, src[tuple(p)]))
        if not entries:
            continue
        values = [v for _, v in entries]
        if reduce in ("sum", "mean"):
            if src.dtype.kind == "f" or src.dtype.name == "bfloat16":
                acc = sum(float(v) for v in values)
                res[pos] = acc / len(values) if reduce == "mean" else acc
            else:
                acc = int(sum(int(v) for v in values))
                res[pos] = np.floor_divide(acc, len(values)) if reduce == "mean" else acc
        else:
            better = (lambda a, b: a > b) if reduce == "max" else (lambda a, b: a < b)
            best, arg = entries[0][1], entries[0][0]
            for e, v in entries[1:]:
                if _isnan_scalar(best):
                    break
                if _isnan_scalar(v) or better(float(v), float(best)):
                    best, arg = v, e
            res[pos], args[pos] = best, arg
    return (res, args) if reduce in ("min", "max") else res


def gather_coo(src, index):
    src = np.asarray(src)
    index = np.asarray(index)
    dim = index.ndim - 1
    lead = np.broadcast_to(index, src.shape[:dim] + index.shape[-1:])
    shape = _out_shape(src, dim, index.shape[-1])
    res = np.empty(shape, src.dtype)
    for pos in np.ndindex(*shape):
        p = list(pos)
        p[dim] = int(lead[pos[: dim + 1]])
        res[pos] = src[tuple(p)]
    return res


def gather_csr(src, indptr):
    src = np.asarray(src)
    indptr = np.asarray(indptr)
    ids = np.concatenate(
        [np.full(b - a, i) for i, (a, b) in enumerate(itertools.pairwise(indptr))]
        or [np.zeros(0, int)]
    )
    return gather_coo(src, ids.astype(np.int32))


# --------------------------------------------------------------------------------------------
# Helpers the test modules share. They are not part of either reference; they live here
# because tests/ is not a package and every test module already imports this one.

#: The dtypes the differential tests draw from (torch has all of them on CPU).
DTYPES = ("float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool")

#: The dtypes jgather.segment's differential tests draw from, and its float ones.
SEGMENT_DTYPES = ("float32", "float16", "bfloat16", "int32", "int8")
FLOATS = ("float32", "float16", "bfloat16")

#: Every float8 of ml_dtypes with meaningful sums (scatter_reduce over every dtype).
FLOAT8 = [
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e4m3b11fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e3m4",
    "float8_e4m3",
]  # float8_e8m0fnu (exponent only: no zero, no sign) has no meaningful sums; left out

#: Every dtype JAX has (but float8_e8m0fnu), for scatter_reduce over every dtype.
JAX_DTYPES = [
    "bool",
    *("int8", "int16", "int32", "int64"),
    *("uint8", "uint16", "uint32", "uint64"),
    *FLOAT8,
    *("bfloat16", "float16", "float32", "float64"),
    *("complex64", "complex128"),
]

#: jax's tolerance table (jax._src.public_test_util), keyed by dtype name.
_RTOL = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2, "float64": 1e-12}


def np_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name, bfloat16 and float8 included (ml_dtypes, as jax uses)."""
    if name == "bfloat16" or name.startswith("float8"):
        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def assert_matches(got, expected, *, exact: bool = False, err_msg: str = "") -> None:
    """Same shape and dtype as ``expected``; values exact for ints/bool, else dtype-keyed rtol.

    NaNs must sit in the same places (and so must infinities, with their sign).
    """
    got = np.asarray(got)
    expected = np.asarray(expected)
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}. {err_msg}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}. {err_msg}"
    name = expected.dtype.name
    if name not in _RTOL:  # integers and bool: always exact
        np.testing.assert_array_equal(got, expected, err_msg=err_msg)
        return
    if exact:  # via float64, where NumPy matches NaN with NaN (it does not for bfloat16)
        np.testing.assert_array_equal(
            got.astype(np.float64), expected.astype(np.float64), err_msg=err_msg
        )
        return
    np.testing.assert_allclose(
        got.astype(np.float64),
        expected.astype(np.float64),
        rtol=_RTOL[name],
        atol=_RTOL[name],
        equal_nan=True,
        err_msg=err_msg,
    )


_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@contextlib.contextmanager
def count_traces() -> Iterator[list[str]]:
    """Collects the name of every function jax traces to a jaxpr (any jit, nested or not).

    A second call with the same shapes, dtypes and static arguments must add nothing.
    """
    import jax.monitoring

    names: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        del duration
        if event == _TRACE_EVENT:
            names.append(str(kwargs.get("fun_name", "?")))

    registered, remove = jax_compat.duration_listener(listener)
    jax.monitoring.register_event_duration_secs_listener(registered)
    try:
        yield names
    finally:
        remove()
