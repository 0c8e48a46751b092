"""The scatter family with torch semantics: ``scatter``, ``scatter_add``, ``scatter_reduce``.

torch's ``scatter_`` variants write in place; JAX arrays are immutable, so every function here
returns a new array (under jit XLA reuses the input buffer when it can). Each public function
checks shapes and dtypes at trace time, checks index values when the index is concrete, and
calls one jitted core defined below.

Lowering. The core slices ``input`` (and ``src``) to ``index``'s extent off ``dim`` and emits
``lax.scatter*`` on flattened keys: one int32 key per index element (its flat position in the
sliced input; no iota grid with one column per axis), with no batching dimensions. Two
reasons: ``checkify``'s scatter rule in jax 0.10 fails on scatters with batching dimensions,
and on CPU the flattened form measured as fast or faster. When ``index`` is constant along
every axis after ``dim`` -- torch's ``index.expand(...)`` idiom, e.g. graph messages
``[E, F]`` scattered into nodes ``[V, F]`` along ``dim=0`` -- a ``lax.cond`` on that fact moves
whole trailing slices instead (one key per slice; several times faster). The check reads the
index once; under ``jax.vmap`` the cond becomes a select that evaluates both branches.

Out-of-range index values (torch never wraps negative ones):

* ``mode=None`` (default): a concrete index raises ``IndexError`` with torch's wording. A traced
  index (under ``jax.jit``, ``jax.vmap``, ...) cannot raise; out-of-range updates are then
  dropped, and ``jax.experimental.checkify.checkify(f, errors=checkify.index_checks)`` reports
  them.
* ``mode='drop'``: as the traced default, also for concrete indices (no IndexError).
* ``mode='clip'``: indices are clamped into ``[0, size - 1]`` (nothing for checkify to report).
* ``mode='promise_in_bounds'``: the caller promises every index is in range; an out-of-range
  value gives an unspecified (but memory-safe) result.

Duplicate indices are deterministic everywhere: reductions are order-independent up to
floating-point rounding, and plain ``scatter`` keeps the *last* colliding ``src`` value along
``dim`` (the largest position ``i`` along ``dim`` of ``index``) -- what torch's CPU kernel
happens to do, fixed here by construction rather than by the backend's loop order.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _indexing as ix

__all__ = ["scatter", "scatter_add", "scatter_reduce"]

_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_SCATTER_REDUCE = {None: "set", "add": "sum", "multiply": "prod"}


def _extreme(dtype: Any, op: str) -> Any:
    """The identity of ``op`` ('amax' or 'amin') for ``dtype``."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return -np.inf if op == "amax" else np.inf
    info = jnp.iinfo(dtype)
    return info.min if op == "amax" else info.max


_DROP = lax.GatherScatterMode.FILL_OR_DROP


def _rows_scatter(kind, operand, keys, updates):
    """``operand[keys[m], :] <kind>= updates[m, :]`` for a 2-D ``operand`` [R, T].

    No batching dimensions: checkify's scatter rule in jax 0.10 does not understand them, and
    measured on CPU this flattened form is as fast or faster. Keys equal to ``R`` are dropped.
    """
    if operand.ndim == 1:
        dnums = lax.ScatterDimensionNumbers((), (0,), (0,))
        return ix.SCATTERS[kind](operand, keys[:, None], updates, dnums, mode=_DROP)
    dnums = lax.ScatterDimensionNumbers((1,), (0,), (0,))
    return ix.SCATTERS[kind](operand, keys[:, None], updates, dnums, mode=_DROP)


def _reduce_rows(region, keys, updates, op, include_self):
    """``region`` [R, T] (or [R]) with ``updates`` [M, T] (or [M]) reduced into rows ``keys``
    [M]; a key equal to R is dropped."""
    dtype = region.dtype
    if dtype == jnp.bool_ and op != "set":  # sum/amax are "or", prod/amin are "and"
        as_max = {"sum": "amax", "amax": "amax", "prod": "amin", "amin": "amin"}[op]
        out = _reduce_rows(
            region.astype(jnp.uint8), keys, updates.astype(jnp.uint8), as_max, include_self
        )
        return out.astype(jnp.bool_)
    rows = region.shape[0]

    def per_row(v):  # a per-row vector, shaped to broadcast against region
        return v if region.ndim == 1 else v[:, None]

    if op == "set":
        # Deterministic "last write wins": each row learns the largest key ordinal writing to
        # it (colliding keys differ only in their position along dim, so the largest ordinal
        # is the last along dim), then reads that update row with one gather.
        ordinal = lax.iota(jnp.int32, keys.shape[0])
        winner = _rows_scatter("max", jnp.full((rows,), -1, jnp.int32), keys, ordinal)
        picked = jnp.take(updates, jnp.maximum(winner, 0), axis=0, mode="clip")
        return jnp.where(per_row(winner >= 0), picked, region)
    if op == "mean" or not include_self:
        count = per_row(
            _rows_scatter(
                "add", jnp.zeros((rows,), jnp.int32), keys, jnp.ones(keys.shape, jnp.int32)
            )
        )
    if op == "mean":
        base = region if include_self else jnp.zeros_like(region)
        total = _rows_scatter("add", base, keys, updates)
        count = count + (1 if include_self else 0)
        safe = jnp.maximum(count, 1)
        if jnp.issubdtype(dtype, jnp.inexact):
            mean = total / safe.astype(dtype)
        else:  # torch floors integer means (rounds towards -inf)
            wide = jnp.int64 if dtype.itemsize == 8 else jnp.int32
            mean = jnp.floor_divide(total.astype(wide), safe.astype(wide)).astype(dtype)
        return mean if include_self else jnp.where(count > 0, mean, region)
    kind, identity = {
        "sum": ("add", 0),
        "prod": ("mul", 1),
        "amax": ("max", _extreme(dtype, "amax")),
        "amin": ("min", _extreme(dtype, "amin")),
    }[op]
    if include_self:
        return _rows_scatter(kind, region, keys, updates)
    out = _rows_scatter(kind, jnp.full(region.shape, identity, dtype), keys, updates)
    return jnp.where(count > 0, out, region)


def _key_dtype(n: int):
    if n < np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.jax_enable_x64:
        raise ValueError(
            f"scatter: the scattered region has {n} elements, more than int32 can address; "
            "enable 64-bit indices with jax.config.update('jax_enable_x64', True)."
        )
    return jnp.int64


def _probe(index, size):
    """A gather of ``index`` from a dummy [size] array whose result is unused (XLA removes it).

    It exists so that ``checkify.index_checks`` sees the raw index against ``size`` and
    reports an out-of-range value with its own value and axis size.
    """
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,)
    )
    lax.gather(jnp.zeros((size,), jnp.bool_), index[..., None], dnums, (1,), mode=_DROP)


def _scatter_impl(input, index, src, dim, mode, op, include_self):
    index = ix.canonical_index(index)
    if index.size == 0:
        return input
    if input.ndim == 0:
        return _scatter_impl(input[None], index, src, 0, mode, op, include_self).reshape(())
    index = index.reshape(index.shape or (1,))
    src = src.reshape(src.shape or (1,))
    size = input.shape[dim]
    if size == 0:  # nothing is in range; every update is dropped
        return input
    if src.size == 1:
        updates = jnp.broadcast_to(src.reshape((1,) * index.ndim), index.shape)
    else:
        updates = ix.slice_to(src, index.shape, None)
    region = ix.slice_to(input, index.shape, dim)
    if mode == "clip":
        index = ix.clamp(index, size)
    else:
        _probe(index, size)
    lead = int(np.prod(index.shape[:dim], dtype=np.int64))
    trail = int(np.prod(index.shape[dim + 1 :], dtype=np.int64))
    key_dtype = _key_dtype(region.size)

    def drop_out_of_range(keys, idx, rows, scaled):
        # XLA drops out-of-range keys natively. A key can only alias another in-range row
        # when leading positions are folded in (dim > 0) or the index is scaled (int32
        # overflow); only then do out-of-range index values need an explicit drop key.
        if mode == "clip" or (lead == 1 and not scaled):
            return keys
        return jnp.where((idx >= 0) & (idx < size), keys, rows)

    def elementwise():
        # One key per index element: its flat position in ``region``.
        keys = index.astype(key_dtype) * int(np.prod(region.shape[dim + 1 :], dtype=np.int64))
        stride = 1
        for d in reversed(range(index.ndim)):
            if d != dim:
                keys = keys + lax.broadcasted_iota(key_dtype, index.shape, d) * stride
            stride *= region.shape[d]
        keys = drop_out_of_range(keys, index, region.size, trail > 1)
        out = _reduce_rows(
            region.reshape(-1), keys.reshape(-1), updates.reshape(-1), op, include_self
        )
        return out.reshape(region.shape)

    def whole_rows():
        # The index is constant along every axis after dim (torch's ``index.expand`` idiom):
        # move whole trailing slices, one key per (leading position, index value).
        first = index[(..., *(0,) * (index.ndim - dim - 1))]
        keys = first.astype(key_dtype)
        if dim:  # plus the row offset of the leading position, flattened row-major
            flat = lax.broadcasted_iota(key_dtype, first.shape, 0)
            for d in range(1, dim):
                flat = flat * first.shape[d] + lax.broadcasted_iota(key_dtype, first.shape, d)
            keys = keys + flat * size
        keys = drop_out_of_range(keys, first, lead * size, False)
        out = _reduce_rows(
            region.reshape(lead * size, trail),
            keys.reshape(-1),
            updates.reshape(lead * index.shape[dim], trail),
            op,
            include_self,
        )
        return out.reshape(region.shape)

    if trail > 1:
        first = index[(..., *(slice(0, 1),) * (index.ndim - dim - 1))]
        out = lax.cond(jnp.all(index == first), whole_rows, elementwise)
    else:
        out = elementwise()
    if out.shape != input.shape:
        out = lax.dynamic_update_slice(input, out, (0,) * input.ndim)
    return out


@functools.partial(jax.jit, static_argnames=("dim", "mode", "op", "include_self"))
def _scatter_core(input, index, src, *, dim, mode, op, include_self):
    return _scatter_impl(input, index, src, dim, mode, op, include_self)


def _is_scalar(x: Any) -> bool:
    return isinstance(x, bool | int | float | complex | np.generic)


def _prepare(fn: str, input: Any, dim: Any, index: Any, src: Any, mode: Any):
    """Shared trace-time checks; returns canonical (input, dim, index, src)."""
    input = ix.as_array(fn, "input", input)
    index = ix.as_array(fn, "index", index)
    ix.check_index_dtype(fn, index)
    dim = ix.canonical_dim(fn, dim, input.ndim)
    ix.check_mode(fn, mode, ix.SCATTER_MODES)
    if _is_scalar(src):
        src_shape = None
        src = jnp.asarray(src).astype(input.dtype)
    else:
        src = ix.as_array(fn, "src", src)
        if src.dtype != input.dtype:
            raise TypeError(
                f"{fn}: src dtype {src.dtype} differs from input dtype {input.dtype} (torch "
                f"raises 'Expected self.dtype to be equal to src.dtype'); cast src with "
                f"src.astype({input.dtype})."
            )
        src_shape = src.shape
    ix.check_scatter_shapes(fn, input.shape, index.shape, src_shape, dim)
    if mode is None:
        size = input.shape[dim] if input.ndim else 1
        ix.check_bounds_eagerly(fn, index, dim, size, scatter=True)
    return input, dim, index, src


def scatter(
    input: Any,
    dim: int,
    index: Any,
    src: Any,
    *,
    reduce: str | None = None,
    mode: ix.ScatterMode = None,
) -> jax.Array:
    """Writes ``src`` into a copy of ``input`` at ``index``: ``out[index[i][j]][j] = src[i][j]``.

    Mirrors ``torch.Tensor.scatter(dim, index, src, reduce=None)`` (dim=0 formula shown) and
    returns a new array instead of writing in place. ``index.ndim == input.ndim ==
    src.ndim``; ``index.shape[d] <= input.shape[d]`` for ``d != dim`` and ``index.shape[d] <=
    src.shape[d]`` for every ``d`` (only the leading part of ``src`` is read). ``src`` may be a
    Python scalar (cast to ``input``'s dtype, as torch's ``value=`` form).

    Duplicate indices: torch leaves the winner unspecified; here the *last* one along ``dim``
    wins (largest position in ``index`` along ``dim``), on every backend. ``reduce='add'`` /
    ``'multiply'`` equal ``scatter_reduce(..., 'sum' / 'prod')`` with ``include_self=True``.

    Gradient: w.r.t. ``input``, the cotangent with overwritten positions zeroed (as torch);
    w.r.t. ``src``, the cotangent gathered at ``index`` for the winning entries and zero for
    the overwritten duplicates (torch gives every duplicate the gradient; jgather gives the
    true derivative of what it computed).

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; any dtype.
      dim: axis to scatter along; negative values count from the end. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype and ``index``'s ndim, or a Python scalar.
      reduce: None (overwrite), ``'add'`` or ``'multiply'``. Static.
      mode: out-of-range behaviour (module docstring): None (default: ``IndexError`` for a
        concrete index, drop under jit, reported by checkify), ``'drop'``, ``'clip'``,
        ``'promise_in_bounds'``. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: non-integer ``index``, or ``src`` dtype differs from ``input`` dtype.
      IndexError: ``dim`` out of range, or (mode None) a concrete index value out of range.
      ValueError: rank mismatch, ``index`` larger than ``input`` off ``dim`` or than ``src``,
        unknown ``reduce`` or ``mode``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter
      >>> src = jnp.arange(1, 11).reshape(2, 5)
      >>> scatter(jnp.zeros((3, 5), src.dtype), 0, jnp.array([[0, 1, 2, 0]]), src)
      Array([[1, 0, 0, 4, 0],
             [0, 2, 0, 0, 0],
             [0, 0, 3, 0, 0]], dtype=int32)
    """
    fn = "scatter"
    if reduce not in _SCATTER_REDUCE:
        raise ValueError(
            f"{fn}: reduce must be None, 'add' or 'multiply', got {reduce!r}; for 'mean', "
            "'amax', 'amin' use scatter_reduce."
        )
    input, dim, index, src = _prepare(fn, input, dim, index, src, mode)
    op = _SCATTER_REDUCE[reduce]
    return _scatter_core(input, index, src, dim=dim, mode=mode, op=op, include_self=True)


def scatter_add(
    input: Any, dim: int, index: Any, src: Any, *, mode: ix.ScatterMode = None
) -> jax.Array:
    """Adds ``src`` into a copy of ``input`` at ``index``: ``out[index[i][j]][j] += src[i][j]``.

    Mirrors ``torch.Tensor.scatter_add(dim, index, src)`` (dim=0 formula shown); duplicates
    accumulate. Same shape rules as :func:`scatter`; lowers to one ``lax.scatter_add`` with
    batching dimensions. Gradients are torch's: the cotangent itself w.r.t. ``input`` and the
    cotangent gathered at ``index`` w.r.t. ``src`` (zero for dropped out-of-range entries).

    Args:
      input: array ``[..., N, ...]``; any dtype (bool adds as logical or).
      dim: axis to scatter along. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype with ``index``'s ndim (or a Python scalar).
      mode: out-of-range behaviour, as in :func:`scatter`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError, IndexError, ValueError: as :func:`scatter`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter_add
      >>> scatter_add(jnp.zeros(3), 0, jnp.array([0, 2, 0, 2, 2]), jnp.ones(5))
      Array([2., 0., 3.], dtype=float32)
    """
    input, dim, index, src = _prepare("scatter_add", input, dim, index, src, mode)
    return _scatter_core(input, index, src, dim=dim, mode=mode, op="sum", include_self=True)


def scatter_reduce(
    input: Any,
    dim: int,
    index: Any,
    src: Any,
    reduce: str,
    *,
    include_self: bool = True,
    mode: ix.ScatterMode = None,
) -> jax.Array:
    """Reduces ``src`` into a copy of ``input`` at ``index`` with 'sum', 'prod', 'mean', 'amax'
    or 'amin'.

    Mirrors ``torch.Tensor.scatter_reduce(dim, index, src, reduce, include_self=True)``: each
    output position is the reduction of every ``src`` value scattered to it, together with
    the ``input`` value when ``include_self`` is True. With ``include_self=False`` positions
    that receive nothing keep ``input``. ``'mean'`` divides by the number of contributions
    (counting ``input`` when included); integer means are floored (towards -inf) as in torch.
    ``'amax'``/``'amin'`` propagate NaN. For bool, 'sum'/'amax' are "or" and 'prod'/'amin'
    are "and"; bool 'mean' raises ``TypeError`` (torch does not implement it).

    Gradients (floating dtypes): 'sum' and 'mean' as torch (the cotangent, divided by the
    count for 'mean', gathered at ``index`` for ``src``; zero for ``input`` where excluded).
    'amax'/'amin' split the cotangent evenly among all tied maxima/minima, ``input``
    included when ``include_self`` (torch's rule). With ``include_self=False`` jgather does
    not count the excluded ``input`` among the ties (torch does, so its ``src`` gradients
    then sum to less than one). 'prod' has a gradient w.r.t. ``input`` only; JAX implements
    no ``src`` gradient of a multiplicative scatter with possible duplicates.

    Args:
      input: array ``[..., N, ...]``; any dtype.
      dim: axis to scatter along. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype with ``index``'s ndim (or a Python scalar).
      reduce: one of ``'sum'``, ``'prod'``, ``'mean'``, ``'amax'``, ``'amin'``. Static.
      include_self: whether ``input``'s values take part in the reduction. Static.
      mode: out-of-range behaviour, as in :func:`scatter`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError, IndexError, ValueError: as :func:`scatter`; also ``ValueError`` for an
        unknown ``reduce`` and ``TypeError`` for bool 'mean'.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter_reduce
      >>> src = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
      >>> index = jnp.array([0, 1, 0, 1, 2, 1])
      >>> scatter_reduce(jnp.array([1.0, 2.0, 3.0, 4.0]), 0, index, src, "sum")
      Array([ 5., 14.,  8.,  4.], dtype=float32)
      >>> scatter_reduce(jnp.array([1.0, 2.0, 3.0, 4.0]), 0, index, src, "amax",
      ...                include_self=False)
      Array([3., 6., 5., 4.], dtype=float32)
    """
    fn = "scatter_reduce"
    if reduce not in _REDUCTIONS:
        raise ValueError(
            f"{fn}: reduce must be one of 'sum', 'prod', 'mean', 'amax' or 'amin', got {reduce!r}."
        )
    if not isinstance(include_self, bool):
        raise TypeError(f"{fn}: include_self must be a bool, got {include_self!r}.")
    input, dim, index, src = _prepare(fn, input, dim, index, src, mode)
    if reduce == "mean" and input.dtype == jnp.bool_:
        raise TypeError(
            f"{fn}: reduce='mean' is not defined for bool arrays (torch does not implement it "
            "either); cast input and src to an integer or float dtype first."
        )
    return _scatter_core(
        input, index, src, dim=dim, mode=mode, op=reduce, include_self=include_self
    )
