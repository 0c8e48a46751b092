"""The scatter family with torch semantics: ``scatter``, ``scatter_add``, ``scatter_reduce``.

torch's ``scatter_`` variants write in place; JAX arrays are immutable, so every function here
returns a new array (under jit XLA reuses the input buffer when it can). Each public function
checks shapes and dtypes at trace time, checks index values when the index is concrete, and
calls one jitted core defined below.

Lowering. The core emits ``lax.scatter*`` on flattened keys into the input itself: one int32
key per index element (its flat position in ``input``; no iota grid with one column per axis,
no slice of the input), with no batching dimensions. When ``index`` is constant along every
axis after ``dim`` -- torch's ``index.expand(...)`` idiom, e.g. graph messages ``[E, F]``
scattered into nodes ``[V, F]`` along ``dim=0`` -- whole trailing slices move instead (one
key per slice; several times faster). That is decided at trace time when it can be: an index
made by ``jnp.broadcast_to`` (or ``x[:, None]``) inside the same ``jax.jit``, or a NumPy view
with zero strides, takes the whole-slices path with no conditional and without ever
materializing the expanded index. An index that arrives as an opaque array of at least
``2**16`` elements spanning the input's trailing axes gets a run-time test instead: one
``lax.cond`` that reads a single trailing slice, and only when that slice is constant a
second one that reads the whole index (so a per-element index pays for one slice, not a
pass over the index); that second test's per-row maximum is then the rows' keys. A large
multi-dimensional per-element index (sums, products and extrema) scatters in a loop over
chunks of about ``2**14`` index elements, so that each chunk's keys and updates are still in
cache when they are scattered (in one piece, XLA's CPU backend writes every key to memory and
copies the updates into its scatter layout before reading both back).

Cost. Beyond the output buffer (the input's, reused when it is donated) every temporary is
index-sized: ``include_self=False`` first writes the reduction's identity at the touched
positions; plain ``scatter`` (last write wins), ``'mean'`` and reduced-precision sums first
combine the updates per distinct key in index-sized buffers (grouping keys with a scratch
array when the input is at most 4x the index, else with a sort), then write each touched
position once. Sums and means of bf16, fp16 and float8 accumulate in float32 and round once,
as torch does on CPU. (XLA's CPU backend itself computes bf16/fp16 scatters in float32 on a
converted copy of the operand; GPU and TPU do not.)

Transformations. ``jax.vmap`` batches the scatters by folding the batch axis into the arrays
(scatter along ``dim + 1``, a ``custom_vmap`` rule), because checkify's rule for scatters with
batching dimensions fails in jax 0.10; derivatives come from a ``custom_jvp`` whose rule is
the JVP of the same lowering. On a mesh with explicit axes (``jax.make_mesh``'s default) the
scatter runs per shard with ``jax.shard_map`` -- no collectives when sharded along axes other
than ``dim`` -- and so it does eagerly on a ``Mesh(...)`` with auto axes. Under the caller's
``jax.jit`` an auto-axis sharding is not visible at trace time and XLA's partitioner
all-gathers around the flattened-key scatter.

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
from collections.abc import Callable, Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jgather import _checks
from jgather import _indexing as ix

__all__ = ["scatter", "scatter_add", "scatter_reduce"]

Reduction = Literal["sum", "prod", "mean", "amax", "amin"]
_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_SCATTER_REDUCE = {None: "set", "add": "sum", "multiply": "prod"}


def _identity(dtype: Any, op: str) -> Any:
    """The identity of ``op`` for ``dtype``, representable in ``dtype``.

    For 'amax'/'amin' that is -inf/+inf where the dtype has infinities; float8 types without
    them (e4m3fn, the fnuz family) use their finite lowest/highest value instead (an inf
    would become NaN there).
    """
    dtype = np.dtype(dtype)
    if op in ("sum", "prod"):
        return 0 if op == "sum" else 1
    if dtype == np.bool_:
        return op == "amin"
    if jnp.issubdtype(dtype, jnp.inexact):
        inf = np.inf if op == "amin" else -np.inf
        if np.isinf(np.asarray(inf).astype(dtype)):
            return inf
        finfo = jnp.finfo(dtype)
        return finfo.max if op == "amin" else finfo.min
    info = jnp.iinfo(dtype)
    return info.min if op == "amax" else info.max


_DROP = lax.GatherScatterMode.FILL_OR_DROP
_KIND = {"set": "set", "sum": "add", "prod": "mul", "amax": "max", "amin": "min"}

# Grouping equal keys (below) uses a scratch array of one int32 per row of the region when
# that is at most this many times the number of keys, and a sort of the keys otherwise, so
# the extra work is O(index) either way.
_DENSE_GROUPING_RATIO = 4


# An index of fewer elements than this never gets the run-time whole-rows test: its
# per-element scatter is cheap, and the two conditionals would cost more than they save.
_RUNTIME_ROWS_MIN = 1 << 16


def _rows_scatter(kind: str, operand: jax.Array, keys: jax.Array, updates: jax.Array) -> jax.Array:
    """``operand[keys[m], ...] <kind>= updates[m, ...]`` for ``operand`` [R] or [R, T].

    No batching dimensions (flattened keys; on CPU as fast or faster). Out-of-range keys are
    dropped.
    """
    window = () if operand.ndim == 1 else (1,)
    dnums = lax.ScatterDimensionNumbers(window, (0,), (0,))
    return ix.SCATTERS[kind](operand, keys[:, None], updates, dnums, mode=_DROP)


def _take_rows(x: jax.Array, rows: jax.Array) -> jax.Array:
    """``x[rows]`` along axis 0 for in-range ``rows`` (one gather)."""
    dnums = lax.GatherDimensionNumbers(
        offset_dims=tuple(range(1, x.ndim)), collapsed_slice_dims=(0,), start_index_map=(0,)
    )
    return lax.gather(
        x,
        rows[:, None],
        dnums,
        (1, *x.shape[1:]),
        mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )


def _group_ids(keys: jax.Array, rows: int) -> jax.Array:
    """An id in ``[0, M)`` per key [M]: equal in-range keys share one, different keys do not.

    Out-of-range keys get ids too (their updates are dropped later, whatever the id).
    Cost O(M): a scratch of ``rows`` int32 when ``rows <= 4 M``, else a sort of the keys.
    """
    m = keys.shape[0]
    ordinal = lax.iota(jnp.int32, m)
    if rows <= _DENSE_GROUPING_RATIO * m:
        # The id of a key is the ordinal of its first occurrence. An out-of-range key keeps
        # its own ordinal, which no in-range key has as a first occurrence.
        first = _rows_scatter("min", jnp.full((rows,), m, jnp.int32), keys, ordinal)
        inside = (keys >= 0) & (keys < rows)
        return jnp.where(inside, _take_rows(first, jnp.clip(keys, 0, rows - 1)), ordinal)
    # The id is the position of the first key of its run in the stably sorted keys.
    sorted_keys, order = lax.sort((keys, ordinal), num_keys=1, is_stable=True)
    head = jnp.concatenate([jnp.ones((1,), jnp.bool_), sorted_keys[1:] != sorted_keys[:-1]])
    run = lax.cummax(jnp.where(head, ordinal, 0), axis=0)
    return _rows_scatter("set", jnp.zeros((m,), jnp.int32), order, run)


def _needs_base(dtype: Any, op: str, include_self: bool) -> bool:
    """Whether ``_reduce_rows`` reads the operand's values at the keys (``base``)."""
    if not include_self or dtype == jnp.bool_:
        return False
    return op == "mean" or (op == "sum" and ix.accumulation_dtype(dtype) != dtype)


def _reduce_rows(
    region: jax.Array,
    keys: jax.Array,
    updates: jax.Array,
    op: str,
    include_self: bool,
    base: jax.Array | None = None,
) -> jax.Array:
    """``region`` [R] or [R, T] with ``updates`` [M] or [M, T] reduced into rows ``keys`` [M].

    Out-of-range keys are dropped. ``base`` [M] or [M, T] holds ``region``'s values at the
    keys where :func:`_needs_base` says so. Beyond the output buffer (``region`` itself,
    reused when donated) every temporary has O(M) elements: reductions with
    ``include_self=False`` first set the identity at the touched rows; 'set', 'mean' and
    reduced-precision sums first combine the updates per distinct key (:func:`_group_ids`)
    into M-row buffers, then write each touched row once, with the same value from every key
    that touches it.
    """
    dtype = region.dtype
    m = keys.shape[0]
    rows = region.shape[0]
    if dtype == jnp.bool_:  # 'sum'/'amax' are "or", 'prod'/'amin' are "and"
        op = {"sum": "amax", "prod": "amin"}.get(op, op)

    def per_row(v: jax.Array) -> jax.Array:  # a per-key vector, shaped to broadcast against updates
        return v if updates.ndim == 1 else v[:, None]

    def write(values: jax.Array) -> jax.Array:
        return _rows_scatter("set", region, keys, values)

    if op == "set":
        # Deterministic "last write wins": each group learns its largest key ordinal
        # (colliding keys differ only in their position along dim, so the largest ordinal is
        # the last along dim); every key of the group then writes that update.
        gid = _group_ids(keys, rows)
        ordinal = lax.iota(jnp.int32, m)
        winner = _rows_scatter("max", jnp.full((m,), -1, jnp.int32), gid, ordinal)
        return write(_take_rows(updates, _take_rows(winner, gid)))
    acc = ix.accumulation_dtype(dtype)
    if op == "mean" or (op == "sum" and acc != dtype):
        # Per-group totals in the accumulation dtype (float32 for reduced-precision floats;
        # integers in their own dtype, wrapping as torch does), rounded once.
        gid = _group_ids(keys, rows)
        total = _rows_scatter(
            "add", jnp.zeros((m, *updates.shape[1:]), acc), gid, updates.astype(acc)
        )
        total = _take_rows(total, gid)
        if include_self:
            assert base is not None  # _needs_base(dtype, op, True) holds here
            total = total + base.astype(acc)
        if op == "sum":
            return write(total.astype(dtype))
        count = _rows_scatter("add", jnp.zeros((m,), jnp.int32), gid, jnp.ones((m,), jnp.int32))
        count = per_row(_take_rows(count, gid) + (1 if include_self else 0))
        if jnp.issubdtype(dtype, jnp.inexact):
            mean = total / count.astype(acc)
        else:  # torch floors integer means (towards -inf), in the dtype's own signedness
            signed = jnp.issubdtype(dtype, jnp.signedinteger)
            bits = 64 if dtype.itemsize == 8 else 32
            wide = jnp.dtype(f"{'int' if signed else 'uint'}{bits}")
            mean = jnp.floor_divide(total.astype(wide), count.astype(wide))
        return write(mean.astype(dtype))
    if not include_self:
        region = write(jnp.full(updates.shape, _identity(dtype, op), dtype))
    return _rows_scatter(_KIND[op], region, keys, updates)


# The per-element scatter of a large multi-dimensional index runs in chunks of about this many
# index elements (whole rows of its leading axis): each chunk's keys and updates stay in cache
# between being computed and being scattered. In one piece, XLA's CPU backend writes all the
# keys to memory, copies all the updates into the scatter's layout, and then reads both back:
# three passes over index-sized arrays where the chunked loop makes one (about 3x faster on a
# [200000, 64] index, benchmarks/ops.py).
_CHUNK_ELEMENTS = 1 << 14


def _chunk_rows(index_shape: tuple[int, ...], dtype: Any, op: str) -> int:
    """Rows of the index's leading axis per chunk, or 0 for the scatter in one piece.

    Chunked: the plain reductions (one scatter per chunk, or two with ``include_self=False``)
    of a non-bool dtype that accumulates in itself, for an index of at least two dimensions
    and at least four chunks. Everything else ('set', 'mean' and reduced-precision sums, which
    group equal keys over the whole index first; 1-D indices, whose keys are the index itself
    and whose updates need no copy) scatters in one piece.
    """
    if len(index_shape) < 2 or op not in ("sum", "prod", "amax", "amin"):
        return 0
    if np.dtype(dtype) == np.bool_ or (op == "sum" and ix.accumulation_dtype(dtype) != dtype):
        return 0
    row = int(np.prod(index_shape[1:], dtype=np.int64))
    rows = max(1, _CHUNK_ELEMENTS // max(row, 1))
    return rows if index_shape[0] >= 4 * rows else 0


def _chunked_reduce(
    region: jax.Array,
    index: jax.Array,
    updates: jax.Array,
    op: str,
    include_self: bool,
    rows: int,
    chunk_keys: Callable[[jax.Array, Any], jax.Array],
) -> jax.Array:
    """``_reduce_rows`` for a plain reduction, ``rows`` rows of ``index``'s leading axis at a
    time in a ``fori_loop`` (the region is the loop's carry, updated in place), and the
    remainder rows after it. ``include_self=False`` first writes the identity at every
    touched position, in a loop of its own, so that no chunk's reduction is overwritten."""
    n = index.shape[0] // rows

    def over_chunks(kind: str, acc: jax.Array, values: Callable[[jax.Array], jax.Array]) -> Any:
        def body(k: Any, acc: jax.Array) -> jax.Array:
            start = k * rows
            idx = lax.dynamic_slice_in_dim(index, start, rows, 0)
            upd = lax.dynamic_slice_in_dim(updates, start, rows, 0)
            return _rows_scatter(kind, acc, chunk_keys(idx, start), values(upd).reshape(-1))

        acc = lax.fori_loop(0, n, body, acc)
        if n * rows < index.shape[0]:
            idx, upd = index[n * rows :], updates[n * rows :]
            acc = _rows_scatter(kind, acc, chunk_keys(idx, n * rows), values(upd).reshape(-1))
        return acc

    if not include_self:
        identity = _identity(region.dtype, op)
        region = over_chunks("set", region, lambda u: jnp.full(u.shape, identity, u.dtype))
    return over_chunks(_KIND[op], region, lambda u: u)


def key_dtype_for(fn: str, n: int) -> Any:
    """int32 keys for regions of up to 2**31 - 1 elements, else int64 (which needs x64)."""
    if n < np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{fn}: the scattered region has {n} elements, more than int32 can address; "
            "enable 64-bit indices with jax.config.update('jax_enable_x64', True)."
        )
    return jnp.int64


def _scatter_impl(
    input: jax.Array,
    index: jax.Array,
    src: jax.Array,
    dim: int,
    mode: str | None,
    op: str,
    include_self: bool,
    primal: bool = True,
    trailing: tuple[int, ...] | None = None,
) -> jax.Array:
    """The scatter on validated operands.

    ``trailing`` not None: ``index`` holds only the axes up to ``dim`` of an index that is
    constant along the axes after it (which have sizes ``trailing``, equal to ``input``'s),
    known at trace time (:func:`_rows_source`); whole trailing slices move, with no
    ``lax.cond``. Otherwise, when ``index`` spans ``input``'s trailing axes, a ``lax.cond``
    decides at run time; ``primal=False`` (inside the JVP rule) skips it (see
    ``_batchable``).
    """
    if index.size == 0:
        return input
    if input.ndim == 0:
        out = _scatter_impl(input[None], index, src, 0, mode, op, include_self, primal)
        return out.reshape(())
    index = index.reshape(index.shape or (1,))
    src = src.reshape(src.shape or (1,))
    size = input.shape[dim]
    if size == 0:  # nothing is in range; every update is dropped
        return input
    full_shape = index.shape if trailing is None else index.shape + trailing
    if src.size == 1:
        updates = jnp.broadcast_to(src.reshape((1,) * len(full_shape)), full_shape)
    else:
        updates = ix.slice_to(src, full_shape, None)
    index = ix.widen_index(index)
    if mode == "clip":
        index = ix.clamp(index, size)
    # Compared at full width, then narrowed: out-of-range values become -1 (a 64-bit
    # 2**32 + 1 must not wrap into 1).
    index = ix.narrow_index(index, size)
    # Keys address the input itself (its own strides; no slice of it is copied).
    strides = [int(np.prod(input.shape[d + 1 :], dtype=np.int64)) for d in range(input.ndim)]
    lead_in = int(np.prod(input.shape[:dim], dtype=np.int64))
    trail_in = strides[dim]
    key_dtype = key_dtype_for("scatter", input.size)
    needs_base = _needs_base(input.dtype, op, include_self)

    def drop_out_of_range(keys: jax.Array, idx: jax.Array, scaled: bool) -> jax.Array:
        # XLA drops out-of-range keys natively. An out-of-range index value can only alias
        # another in-range key when leading positions are folded in (dim > 0) or the index
        # is scaled (int32 overflow); only then does it need an explicit drop key.
        if mode == "clip" or (lead_in == 1 and not scaled):
            return keys
        return jnp.where((idx >= 0) & (idx < size), keys, input.size)

    def element_keys(idx: jax.Array = index, row0: Any = 0) -> jax.Array:
        # One key per index element: its flat position in ``input``. ``idx`` holds the rows
        # [row0, row0 + len(idx)) of the index's leading axis (all of it by default).
        keys = idx.astype(key_dtype) * trail_in
        for d in range(idx.ndim):
            if d != dim:
                pos = lax.broadcasted_iota(key_dtype, idx.shape, d)
                if d == 0 and not (isinstance(row0, int) and row0 == 0):
                    pos = pos + row0
                keys = keys + pos * strides[d]
        return drop_out_of_range(keys, idx, trail_in > 1).reshape(-1)

    def whole_rows(first: jax.Array, base: jax.Array | None) -> jax.Array:
        # ``first`` [..., K] (axes up to dim): the index, constant along every axis after dim
        # (torch's ``index.expand`` idiom) and spanning the input's trailing axes. Whole
        # trailing slices move, one key per (leading position, index value).
        keys = first.astype(key_dtype)
        for d in range(dim):  # plus the row offset of the leading position
            row_stride = strides[d] // trail_in
            keys = keys + lax.broadcasted_iota(key_dtype, first.shape, d) * row_stride
        keys = drop_out_of_range(keys, first, False).reshape(-1)
        rows = (lead_in * size, trail_in)
        k = keys.shape[0]
        region = input.reshape(rows)
        if base is not None:
            base = base.reshape(k, trail_in)
        elif needs_base:
            base = _take_rows(region, jnp.clip(keys, 0, rows[0] - 1))
        out = _reduce_rows(region, keys, updates.reshape(k, trail_in), op, include_self, base)
        return out.reshape(input.shape)

    if trailing is not None:  # known at trace time: whole rows, no conditional
        return whole_rows(index, None)

    base = None
    if needs_base:  # read once, outside the conds below
        base = _take_rows(input.reshape(-1), jnp.clip(element_keys(), 0, input.size - 1))

    chunk_rows = _chunk_rows(index.shape, input.dtype, op) if primal else 0

    def elementwise() -> jax.Array:
        if chunk_rows:
            out = _chunked_reduce(
                input.reshape(-1), index, updates, op, include_self, chunk_rows, element_keys
            )
            return out.reshape(input.shape)
        out = _reduce_rows(
            input.reshape(-1), element_keys(), updates.reshape(-1), op, include_self, base
        )
        return out.reshape(input.shape)

    if (
        trail_in > 1
        and primal
        and index.size >= _RUNTIME_ROWS_MIN
        and index.shape[dim + 1 :] == input.shape[dim + 1 :]
    ):
        # Not known at trace time: decide at run time. A first test reads one trailing
        # slice (at the first leading position); only when that slice is constant does a
        # second one read the whole index, so a per-element index -- whose first slice is
        # almost never constant -- costs no extra pass. (The tests are chained, not nested:
        # XLA then still writes the scatter into the input's buffer.)
        # The full test's per-row maximum is then the index's leading part (no separate
        # strided read of it).
        lead_shape = index.shape[: dim + 1]
        head = index[(*(0,) * (dim + 1), ...)]

        def full_test() -> tuple[jax.Array, jax.Array]:
            high, low = _row_extremes(index, dim)
            return jnp.all(high == low), high.reshape(lead_shape)

        def skip() -> tuple[jax.Array, jax.Array]:
            return jnp.bool_(False), jnp.zeros(lead_shape, index.dtype)

        expanded, first = lax.cond(jnp.all(head == head.reshape(-1)[0]), full_test, skip)
        return lax.cond(expanded, lambda: whole_rows(first, base), elementwise)
    return elementwise()


def _row_extremes(index: jax.Array, dim: int) -> tuple[jax.Array, jax.Array]:
    """Each row's maximum and minimum over the axes after ``dim`` (two [prod(lead)] arrays).

    One variadic reduction computes both together: on CPU about twice as fast as
    ``jnp.all(index == index[..., :1])``, which materializes the comparison. A row is
    constant exactly when its two extremes are equal.
    """
    rows = index.reshape(int(np.prod(index.shape[: dim + 1])), -1)
    info = jnp.iinfo(rows.dtype)
    high, low = lax.reduce(
        (rows, rows),
        (np.array(info.min, rows.dtype), np.array(info.max, rows.dtype)),
        lambda a, b: (lax.max(a[0], b[0]), lax.min(a[1], b[1])),
        (1,),
    )
    return high, low


def _rows_source(index: Any, wide: Any, dim: int, input_shape: tuple[int, ...]) -> Any:
    """The index's axes up to ``dim`` when it is constant along the rest, known now; else None.

    torch code scatters graph messages with ``index.expand(E, F)`` (or ``jnp.broadcast_to``):
    an index that is constant along every axis after ``dim``. Such an index moves whole
    trailing slices, one key per slice. This finds out at trace time, without reading the
    values, in two cases: a NumPy index whose strides are 0 along those axes (a view made by
    ``np.broadcast_to``), and a traced index produced by ``broadcast_in_dim`` (what
    ``jnp.broadcast_to`` and ``x[:, None]`` trace to inside ``jax.jit``), possibly followed
    by dtype conversions. The traced case reads the tracer's producing equation, which is
    not public JAX API: if JAX changes it, nothing is found and the scatter decides at run
    time instead (``tests/test_hlo_structure.py`` notices the change). Anything else (a
    concrete ``jax.Array``, a jit argument, a vmapped index) returns None.
    """
    trailing = tuple(input_shape[dim + 1 :])
    if not trailing or int(np.prod(trailing)) == 1 or index.shape[dim + 1 :] != trailing:
        return None
    lead = index.shape[: dim + 1]
    if isinstance(wide, np.ndarray):
        if wide.shape == index.shape and all(st == 0 for st in wide.strides[dim + 1 :]):
            return index[(..., *(0,) * len(trailing))]
        return None
    if not isinstance(index, jax.core.Tracer):
        return None
    dtype = index.dtype
    node: Any = index
    try:
        for _ in range(4):  # through a few dtype conversions
            eqn = getattr(node, "parent", None)
            if eqn is None:
                return None
            name = eqn.primitive.name
            if name == "convert_element_type":
                node = eqn.in_tracers[0]
                continue
            if name != "broadcast_in_dim":
                return None
            (operand,) = eqn.in_tracers[:1]
            dims = tuple(eqn.params["broadcast_dimensions"])
            if tuple(eqn.params["shape"]) != tuple(index.shape) or len(dims) != operand.ndim:
                return None
            keep = [k for k, d in enumerate(dims) if d <= dim]
            if any(operand.shape[k] != 1 for k, d in enumerate(dims) if d > dim):
                return None
            squeezed = operand.reshape(tuple(operand.shape[k] for k in keep))
            first = lax.broadcast_in_dim(squeezed, lead, tuple(dims[k] for k in keep))
            return first.astype(dtype)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        return None
    return None


def _spec(a: jax.Array) -> tuple[Any, ...]:
    spec = tuple(jax.typeof(a).sharding.spec)
    return spec + (None,) * (a.ndim - len(spec))


def _sharded_scatter(
    mesh: Any,
    body: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    input: jax.Array,
    index: jax.Array,
    src: jax.Array,
    dim: int,
    spec_x: tuple[Any, ...] | None = None,
) -> jax.Array:
    """``body`` per shard with ``jax.shard_map``, for inputs on an explicit-axis mesh.

    Scatters along ``dim`` are independent across every other axis, so sharding there
    needs no communication: each device scatters its own block. Index and src are resharded
    to the input's layout off ``dim`` (free when they already match it); an axis that cannot
    be split that way -- ``dim`` itself, or one where index or src is smaller than input --
    is replicated (a collective, but the right answer).
    """
    explicit = spec_x is None
    if spec_x is None:
        spec_x = _spec(input)
    spec = []
    for d in range(input.ndim):
        ok = d != dim and index.shape[d] == input.shape[d]
        ok = ok and (src.ndim == 0 or src.shape[d] == input.shape[d])
        spec.append(spec_x[d] if ok else None)
    layout = P(*spec)
    src_layout = P() if src.ndim == 0 else layout

    def place(a: jax.Array, p: P) -> jax.Array:
        if explicit:
            return jax.sharding.reshard(a, NamedSharding(mesh, p))
        return lax.with_sharding_constraint(a, NamedSharding(mesh, p))

    input, index, src = place(input, layout), place(index, layout), place(src, src_layout)
    out = jax.shard_map(
        body, mesh=mesh, in_specs=(layout, layout, src_layout), out_specs=layout, check_vma=False
    )(input, index, src)
    return place(out, P(*spec_x))


def _auto_layout(input: jax.Array, index: jax.Array) -> tuple[Any, tuple[Any, ...]] | None:
    """(mesh, spec) of a concrete input sharded over a mesh with auto axes, else None.

    Inside ``jax.jit`` such a sharding is not visible at trace time (the SPMD partitioner
    decides), so only eager calls can use it.
    """
    if isinstance(input, jax.core.Tracer) or index.ndim != input.ndim or not input.ndim:
        return None
    sharding = getattr(input, "sharding", None)
    if not isinstance(sharding, NamedSharding) or AxisType.Explicit in sharding.mesh.axis_types:
        return None
    spec = tuple(sharding.spec) + (None,) * (input.ndim - len(sharding.spec))
    if all(p is None for p in spec) or sharding.mesh.size == 1:
        return None
    return sharding.mesh, spec


@functools.partial(
    jax.jit, static_argnames=("dim", "mode", "op", "include_self", "layout", "trailing")
)
def _scatter_core(
    input: jax.Array,
    index: jax.Array,
    src: jax.Array,
    *,
    dim: int,
    mode: str | None,
    op: str,
    include_self: bool,
    layout: tuple[Any, tuple[Any, ...]] | None = None,
    trailing: tuple[int, ...] | None = None,
) -> jax.Array:
    def body(input: jax.Array, index: jax.Array, src: jax.Array) -> jax.Array:
        size = input.shape[dim] if input.ndim else 1
        if index.size and size and mode != "clip":
            # checkify.index_checks reports the caller's index value and axis size here (the
            # scatters below see flattened, narrowed keys).
            ix.probe(ix.widen_index(index), size)
        return _batchable(dim, mode, op, include_self, trailing)(input, index, src)

    if trailing is not None:  # _dispatch passes it only off the sharded paths
        return body(input, index, src)
    if layout is not None and index.size:
        return _sharded_scatter(layout[0], body, input, index, src, dim, layout[1])
    mesh = ix.explicit_mesh(input, index, src) if input.ndim and index.size else None
    if mesh is not None and index.ndim == input.ndim:
        return _sharded_scatter(mesh, body, input, index, src, dim)
    return body(input, index, src)


@functools.cache
def _batchable(
    dim: int, mode: str | None, op: str, include_self: bool, trailing: tuple[int, ...] | None
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """``_scatter_impl`` for fixed static arguments, batched by folding, not by lax's rule.

    ``jax.vmap``'s rule for a scatter with a batched index adds batching dimensions, which
    ``checkify``'s scatter rule (jax 0.10) cannot read (``IndexError: tuple index out of
    range``). Here a ``custom_vmap`` rule instead folds the batch axis into the arrays as a
    new leading axis and scatters along ``dim + 1`` -- the same flattened-key scatter as
    unbatched, nested ``vmap`` folding once per level. ``checkify`` does not look inside
    ``custom_vmap``; the caller's index is checked by the probe in ``_scatter_core``.
    Derivatives come from a ``custom_jvp`` whose rule is the JVP of ``_scatter_impl`` itself
    (``custom_vmap`` alone has no transpose rule, so ``jax.grad`` needs this).
    """

    def impl(x: jax.Array, i: jax.Array, s: jax.Array, primal: bool = True) -> jax.Array:
        return _scatter_impl(x, i, s, dim, mode, op, include_self, primal, trailing)

    @jax.custom_batching.custom_vmap
    def folded(x: jax.Array, i: jax.Array, s: jax.Array) -> jax.Array:
        return impl(x, i, s)

    @folded.def_vmap
    def fold_batch(
        axis_size: int,
        in_batched: Sequence[bool],
        x: jax.Array,
        i: jax.Array,
        s: jax.Array,
    ) -> tuple[jax.Array, bool]:
        x, i, s = (
            a if b else jnp.broadcast_to(a, (axis_size, *a.shape))
            for a, b in zip((x, i, s), in_batched, strict=True)
        )
        example_shape = x.shape[1:]
        if x.ndim == 1:  # 0-d examples act as 1-D of size 1, as in the unbatched op
            x = x[:, None]
        if i.ndim == 1:
            i = i[:, None]
        if s.size == axis_size:  # one src value per example, broadcast over its index
            full = i.shape if trailing is None else i.shape + trailing
            s = jnp.broadcast_to(s.reshape((axis_size,) + (1,) * (len(full) - 1)), full)
        out = _batchable(dim + 1, mode, op, include_self, trailing)(x, i, s)
        return out.reshape((axis_size, *example_shape)), True

    @jax.custom_jvp
    def scatter_fn(x: jax.Array, i: jax.Array, s: jax.Array) -> jax.Array:
        return folded(x, i, s)

    def scatter_jvp(
        primals: tuple[jax.Array, jax.Array, jax.Array], tangents: tuple[Any, Any, Any]
    ) -> tuple[jax.Array, jax.Array]:
        x, i, s = primals
        tx, _, ts = tangents
        # Only the arguments with a non-zero tangent are differentiated (JAX has no 'prod'
        # derivative w.r.t. src with duplicates, which must not be asked for by a zero).
        # Elementwise keys only: the whole-rows lax.cond, batched and then differentiated,
        # leaves a stop_gradient that jax 0.10 cannot transpose.
        live = [
            (k, a, t)
            for k, a, t in ((0, x, tx), (2, s, ts))
            if not isinstance(t, jax.custom_derivatives.SymbolicZero)
        ]

        def f(*args: jax.Array) -> jax.Array:
            full = [x, i, s]
            for (k, _, _), a in zip(live, args, strict=True):
                full[k] = a
            return impl(full[0], full[1], full[2], primal=False)

        if not live:
            out = impl(x, i, s)
            return out, jnp.zeros_like(out)
        return jax.jvp(f, tuple(a for _, a, _ in live), tuple(t for _, _, t in live))

    scatter_fn.defjvp(scatter_jvp, symbolic_zeros=True)

    return scatter_fn


def _is_scalar(x: Any) -> bool:
    return isinstance(x, bool | int | float | complex | np.generic)


def _prepare(
    fn: str, input: Any, dim: Any, index: Any, src: Any, mode: Any
) -> tuple[jax.Array, int, jax.Array, jax.Array, Any]:
    """Shared trace-time checks; returns canonical (input, dim, index, src) and the index as
    the caller gave it (a NumPy array, or the same JAX array or tracer)."""
    input = _checks.as_array(fn, "input", input)
    index, wide = ix.as_index(fn, "index", index)
    ix.check_index_dtype(fn, index)
    dim = ix.canonical_dim(fn, dim, input.ndim)
    ix.check_mode(fn, mode, ix.SCATTER_MODES)
    if _is_scalar(src):
        src_shape = None
        ix.check_scalar_fits(fn, "src", src, input.dtype)
        src = ix.scalar_as(src, input.dtype)
    else:
        src = _checks.as_array(fn, "src", src)
        if src.dtype != input.dtype:
            raise TypeError(
                f"{fn}: src dtype {src.dtype} differs from input dtype {input.dtype} (torch "
                f"raises 'Expected self.dtype to be equal to src.dtype'); cast src with "
                f"src.astype({input.dtype})."
            )
        src_shape = src.shape
    ix.check_scatter_shapes(fn, input.shape, index.shape, src_shape, dim)
    if index.size:  # the scatter addresses the input with flat keys
        key_dtype_for(fn, int(np.prod(input.shape, dtype=np.int64)))
    if mode is None:
        size = input.shape[dim] if input.ndim else 1
        ix.check_bounds_eagerly(fn, wide, dim, size, scatter=True)
    return input, dim, index, src, wide


def _dispatch(
    input: jax.Array,
    dim: int,
    index: jax.Array,
    wide: Any,
    src: jax.Array,
    *,
    mode: str | None,
    op: str,
    include_self: bool,
) -> jax.Array:
    """Calls the jitted core, choosing at trace time between sharded, whole-rows and generic."""
    layout = _auto_layout(input, index)
    sharded = layout is not None or (
        input.ndim and index.size and ix.explicit_mesh(input, index, src) is not None
    )
    first = None if sharded or not index.size else _rows_source(index, wide, dim, input.shape)
    if first is not None:
        return _scatter_core(
            input,
            first,
            src,
            dim=dim,
            mode=mode,
            op=op,
            include_self=include_self,
            trailing=tuple(input.shape[dim + 1 :]),
        )
    return _scatter_core(
        input, index, src, dim=dim, mode=mode, op=op, include_self=include_self, layout=layout
    )


def scatter(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    src: ArrayLike,
    *,
    reduce: Literal["add", "multiply"] | None = None,
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
    input, dim, index, src, wide = _prepare(fn, input, dim, index, src, mode)
    op = _SCATTER_REDUCE[reduce]
    return _dispatch(input, dim, index, wide, src, mode=mode, op=op, include_self=True)


def scatter_add(
    input: ArrayLike, dim: int, index: ArrayLike, src: ArrayLike, *, mode: ix.ScatterMode = None
) -> jax.Array:
    """Adds ``src`` into a copy of ``input`` at ``index``: ``out[index[i][j]][j] += src[i][j]``.

    Mirrors ``torch.Tensor.scatter_add(dim, index, src)`` (dim=0 formula shown); duplicates
    accumulate (bf16/fp16/float8 in float32, rounded once). Same shape rules as
    :func:`scatter`; lowers to one ``lax.scatter_add`` on flattened keys. Gradients are
    torch's: the cotangent itself w.r.t. ``input`` and the cotangent gathered at ``index``
    w.r.t. ``src`` (zero for dropped out-of-range entries).

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
    input, dim, index, src, wide = _prepare("scatter_add", input, dim, index, src, mode)
    return _dispatch(input, dim, index, wide, src, mode=mode, op="sum", include_self=True)


def scatter_reduce(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    src: ArrayLike,
    reduce: Reduction,
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
    (counting ``input`` when included); integer means are floored (towards -inf) as in torch,
    from the sum in the input's dtype (which wraps, as torch's does). Sums and means of bf16,
    fp16 and float8 accumulate in float32 and round once.
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
    input, dim, index, src, wide = _prepare(fn, input, dim, index, src, mode)
    if reduce == "mean" and input.dtype == jnp.bool_:
        raise TypeError(
            f"{fn}: reduce='mean' is not defined for bool arrays (torch does not implement it "
            "either); cast input and src to an integer or float dtype first."
        )
    return _dispatch(input, dim, index, wide, src, mode=mode, op=reduce, include_self=include_self)
