"""A plain NumPy re-statement of torch_scatter 2.1, for differential tests of jgather.segment.

Written from torch_scatter's documented formulas and its Python sources
(``torch_scatter/scatter.py``, ``utils.broadcast``, ``composite/{std,logsumexp,softmax}.py``,
the ``segment_*`` docs), one ``src`` entry at a time with explicit loops:

* ``broadcast(index, src, dim)``: a 1-D index is lined up with ``dim``; trailing size-1 axes
  are added; the result is expanded to ``src``'s shape.
* ``scatter``: each ``src[pos]`` goes to ``out[pos with pos[dim] := index[pos]]``; the output
  size on ``dim`` is ``dim_size`` or ``index.max() + 1``. Empty segments: sum 0, mean 0,
  mul 1, min/max 0 with arg ``src.shape[dim]``; ``out=`` is the initial value.
* max/min visit entries in increasing position along ``dim`` and replace the running value
  only when strictly better, so the first of equal values wins and ``out`` wins a tie. Where
  jgather deliberately differs from torch_scatter's kernel (NaN propagates, first NaN wins;
  an all -inf segment is -inf) this reference states jgather's rule and says so.
* ``mean``: ``(out + sum) / max(count, 1)``; integers floor.
* ``std``: ``sqrt((out + sum (x - mean)^2) / max(count - unbiased, 1))``.
* ``logsumexp``: ``log(sum exp(x - m) + eps) + m`` over the segment (and ``out``), 0 when
  empty (``out`` when given); non-finite ``m`` is returned as is (jgather's rule).
* ``softmax`` / ``log_softmax``: per segment, shifted by its max.
* ``segment_coo`` = ``scatter`` along ``index.ndim - 1``; ``segment_csr`` reduces the ranges
  ``[indptr[i], indptr[i + 1])`` and overwrites ``out``; ``gather_*`` read segment values.

Float sums accumulate in float64 and are rounded once to the dtype; integers wrap in their
own dtype, as torch does.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


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


def scatter(src, index, dim=-1, out=None, dim_size=None, reduce="sum"):
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


def _isnan(v):
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
            if best is not None and _isnan(best):
                break
            if best is None or _isnan(v) or better(float(v), float(best)):
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
        res[pos] = math.sqrt(sq / max(count - 1 if unbiased else count, 1))
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
    return scatter(src, lead, dim, out, dim_size, reduce)


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
                if _isnan(best):
                    break
                if _isnan(v) or better(float(v), float(best)):
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
