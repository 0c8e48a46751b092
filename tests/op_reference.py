"""A plain NumPy reference of the torch gather/scatter family, for differential tests.

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import ml_dtypes
import numpy as np
from hypothesis import strategies as st

# The reference ops, then the helpers the test modules share (not part of the reference).
__all__ = [  # noqa: RUF022
    "gather",
    "index_select",
    "scatter",
    "scatter_add",
    "scatter_reduce",
    "scatter_targets",
    "take_along_dim",
    "DTYPES",
    "assert_matches",
    "count_traces",
    "draw_indices",
    "draw_values",
    "np_dtype",
]

_REDUCES = ("sum", "prod", "mean", "amax", "amin")


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
    if reduce not in _REDUCES:
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
# Helpers the test modules share. They are not part of the reference; they live here because
# tests/ is not a package and every test module already imports this one.

#: The dtypes the differential tests draw from (torch has all of them on CPU).
DTYPES = ("float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool")

#: jax's tolerance table (jax._src.public_test_util), keyed by dtype name.
_RTOL = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2, "float64": 1e-12}


def np_dtype(name: str) -> np.dtype:
    """The NumPy dtype for a dtype name, bfloat16 included (ml_dtypes, as jax uses)."""
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


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

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def draw_values(draw, shape, dtype_name: str, *, lo: int = -8, hi: int = 8) -> np.ndarray:
    """Hypothesis: small integer-valued entries in [lo, hi] (exact in every dtype), or bools.

    ``draw`` is the one a ``st.composite`` strategy receives. uint8 draws from [max(lo, 0), hi].
    """
    from hypothesis import strategies as st

    n = int(np.prod(shape, dtype=np.int64))
    if dtype_name == "bool":
        flat = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    else:
        lo = max(lo, 0) if dtype_name == "uint8" else lo
        flat = draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
    return np.array(flat, dtype=np_dtype(dtype_name)).reshape(shape)


def draw_indices(draw, shape, size: int) -> np.ndarray:
    """Hypothesis: int32 index values in [0, size); small sizes make duplicates common."""
    from hypothesis import strategies as st

    n = int(np.prod(shape, dtype=np.int64))
    if n and size == 0:
        raise ValueError("a non-empty index into an empty dim has no valid values")
    flat = draw(st.lists(st.integers(0, max(size - 1, 0)), min_size=n, max_size=n))
    return np.array(flat, dtype=np.int32).reshape(shape)


def draw_gather_shapes(draw, max_rank=4, max_size=6):
    """Draws ``(shape, dim, index_shape, size)`` for a gather/scatter case (hypothesis ``draw``).

    ``index_shape`` has the input's rank and is no larger than ``shape`` off ``dim`` (any size on
    ``dim``); ``size`` is the extent of ``dim`` that index values must respect. 0-d and 1-D
    shapes are paired freely, as torch does.
    """
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.lists(st.integers(0, max_size), min_size=rank, max_size=rank)))
    n = max(rank, 1)
    dim = draw(st.integers(-n, n - 1))
    d = dim % n
    size = shape[d] if rank else 1
    ishape = [
        draw(st.integers(0, max_size)) if i == d else draw(st.integers(0, s))
        for i, s in enumerate(shape)
    ]
    if size == 0 and rank:
        ishape[d] = 0
    if rank <= 1 and size and draw(st.booleans()):
        # torch pairs 0-d with 1-D freely (a 0-d tensor acts as shape [1]).
        ishape = [draw(st.integers(0, max_size))] if rank == 0 else []
    return shape, dim, tuple(ishape), size
