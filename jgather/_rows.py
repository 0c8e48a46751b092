"""The reduce-into-rows kernel: ``lax.scatter*`` of updates into rows of an operand.

Every scatter of the torch ops and of ``jgather.segment`` ends here, on keys without batching
dimensions (see "Internals" in ``docs/development.md`` for the choices and their costs).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _dtypes

SCATTERS = {
    "set": lax.scatter,
    "add": lax.scatter_add,
    "mul": lax.scatter_mul,
    "max": lax.scatter_max,
    "min": lax.scatter_min,
}

_DROP = lax.GatherScatterMode.FILL_OR_DROP
KIND = {"set": "set", "sum": "add", "prod": "mul", "amax": "max", "amin": "min"}

# Grouping equal keys (below) uses a scratch array of one int32 per row of the region when
# that is at most this many times the number of keys, and a sort of the keys otherwise, so
# the extra work is O(index) either way.
_DENSE_GROUPING_RATIO = 4


def rows_scatter(
    kind: str,
    operand: jax.Array,
    keys: jax.Array,
    updates: jax.Array,
    axis: int = 0,
    *,
    sorted: bool = False,
    mode: lax.GatherScatterMode = _DROP,
) -> jax.Array:
    """``operand[..., keys[m], ...] <kind>= updates[..., m, ...]`` along ``axis``.

    ``updates`` has ``operand``'s shape with ``axis`` replaced by ``len(keys)``: every other
    axis is a window, so whole slices move with one key each and there are no batching
    dimensions (on CPU as fast or faster than batching). Out-of-range keys are dropped
    (``mode`` FILL_OR_DROP, the default). ``sorted`` is passed on as ``indices_are_sorted``.
    """
    window = tuple(d for d in range(updates.ndim) if d != axis)
    dnums = lax.ScatterDimensionNumbers(window, (axis,), (axis,))
    return SCATTERS[kind](
        operand, keys[:, None], updates, dnums, indices_are_sorted=sorted, mode=mode
    )


def into_rows(
    reduce: Callable[..., jax.Array],
    operand: jax.Array,
    updates: jax.Array,
    idx: jax.Array,
    dim: int,
    *,
    drop: bool,
    fn: str,
) -> jax.Array:
    """``reduce(region, keys, values, axis=..., plain=...)`` on the rows view of a request.

    The one key layout of every scatter: ``idx`` has ``updates``' rank and, on each axis other
    than ``dim``, ``updates``' size, or size 1 where ``updates`` spans ``operand`` (a window:
    whole slices move with one key). ``dim`` and the index's other axes become one flat row
    key, in the index's row-major order; the windows stay whole. ``plain``: only ``dim`` is
    keyed, the keys are the index values in their order and ``reduce`` runs along ``dim`` of
    the arrays as they are; otherwise along axis 0 of ``[rows, width]`` views (a transpose
    only when a window precedes a keyed axis). ``drop``: out-of-range index values must be
    dropped; a key that folds in other axes then gets the out-of-range row ``rows``, as it
    could alias another row. Returns ``reduce``'s result in ``operand``'s layout.
    """
    n = updates.ndim
    size = operand.shape[dim]
    window = [
        d
        for d in range(n)
        if d != dim and idx.shape[d] == 1 and updates.shape[d] == operand.shape[d]
    ]
    keyed = [d for d in range(n) if d not in window]
    if keyed == [dim]:
        return reduce(operand, idx.reshape(-1), updates, axis=dim, plain=True)
    perm = keyed + window
    rows = math.prod(operand.shape[d] for d in keyed)
    key_dtype = _dtypes.key_dtype_for(fn, rows)
    key = jnp.zeros(idx.shape, key_dtype)
    stride = 1
    for d in reversed(keyed):
        coord = idx.astype(key_dtype) if d == dim else lax.broadcasted_iota(key_dtype, idx.shape, d)
        key = key + coord * stride
        stride *= operand.shape[d]
    if drop:
        key = jnp.where((idx >= 0) & (idx < size), key, rows)
    key = jnp.transpose(key, perm).reshape(-1)
    width = math.prod(updates.shape[d] for d in window)
    values = jnp.transpose(updates, perm).reshape(key.shape[0], width)
    region = jnp.transpose(operand, perm)
    out = reduce(region.reshape(rows, width), key, values, axis=0, plain=False)
    out = out.reshape(region.shape)
    return jnp.transpose(out, tuple(int(d) for d in np.argsort(perm)))


def take_rows(x: jax.Array, rows: jax.Array) -> jax.Array:
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


def group_ids(keys: jax.Array, rows: int) -> jax.Array:
    """An id in ``[0, M)`` per key [M]: equal in-range keys share one, different keys do not.

    Out-of-range keys get ids too (their updates are dropped later, whatever the id).
    Cost O(M): a scratch of ``rows`` int32 when ``rows <= 4 M``, else a sort of the keys.
    """
    m = keys.shape[0]
    ordinal = lax.iota(jnp.int32, m)
    # A symbolic count (jax.export) compared with a fixed one is undecidable: sort then.
    comparable = _dtypes.is_symbolic(rows) == _dtypes.is_symbolic(m)
    if comparable and rows <= _DENSE_GROUPING_RATIO * m:
        # The id of a key is the ordinal of its first occurrence. An out-of-range key keeps
        # its own ordinal, which no in-range key has as a first occurrence.
        first = rows_scatter("min", jnp.full((rows,), m, jnp.int32), keys, ordinal)
        inside = (keys >= 0) & (keys < rows)
        return jnp.where(inside, take_rows(first, jnp.clip(keys, 0, rows - 1)), ordinal)
    # The id is the position of the first key of its run in the stably sorted keys.
    sorted_keys, order = lax.sort((keys, ordinal), num_keys=1, is_stable=True)
    head = jnp.concatenate([jnp.ones((1,), jnp.bool_), sorted_keys[1:] != sorted_keys[:-1]])
    run = lax.cummax(jnp.where(head, ordinal, 0), axis=0)
    return rows_scatter("set", jnp.zeros((m,), jnp.int32), order, run)


def upcasts_region(dtype: Any, op: str, region_size: Any, updates_size: Any) -> bool:
    """Whether a reduced-precision sum accumulates in a float32 copy of the whole region.

    It does when the region has no more elements than the updates (a segment sum of many
    entries into few rows): one scatter into the copy, rounded once. A larger region (a few
    updates into a big operand) sums per group of equal keys instead, so every temporary has
    O(updates) elements. Both add in index order from the operand's value and round once:
    the results are the same.
    """
    if op != "sum" or np.dtype(dtype) == np.bool_ or _dtypes.accumulation_dtype(dtype) == dtype:
        return False
    if _dtypes.is_symbolic(region_size, updates_size):
        return False
    return bool(region_size <= updates_size)


def needs_base(
    dtype: Any, op: str, include_self: bool, region_size: Any = None, updates_size: Any = None
) -> bool:
    """Whether ``reduce_rows`` reads the operand's values at the keys (``base``)."""
    if not include_self or dtype == jnp.bool_ or op not in ("sum", "mean"):
        return False
    if region_size is not None and upcasts_region(dtype, op, region_size, updates_size):
        return False
    return _dtypes.accumulation_dtype(dtype) != dtype


def groups_keys(dtype: Any, op: str, region_size: Any, updates_size: Any) -> bool:
    """Whether ``reduce_rows`` combines the updates per group of equal keys first ('set',
    'mean', a reduced-precision sum into a larger region); the other reductions are one
    scatter (two with ``include_self=False``), along any axis."""
    if op in ("set", "mean"):
        return True
    if op != "sum" or np.dtype(dtype) == np.bool_:
        return False
    low = _dtypes.accumulation_dtype(dtype) != dtype
    return low and not upcasts_region(dtype, op, region_size, updates_size)


def reduce_rows(
    region: jax.Array,
    keys: jax.Array,
    updates: jax.Array,
    op: str,
    include_self: bool,
    base: jax.Array | None = None,
    *,
    sorted: bool = False,
    axis: int = 0,
) -> jax.Array:
    """``region`` [R] or [R, T] with ``updates`` [M] or [M, T] reduced into rows ``keys`` [M].

    Or along ``axis`` of arrays of any rank, for the reductions that do not group keys
    (:func:`groups_keys`).

    Out-of-range keys are dropped. ``base`` [M] or [M, T] holds ``region``'s values at the
    keys where :func:`needs_base` says so. ``sorted``: the keys are sorted (passed to XLA as
    ``indices_are_sorted`` for the plain reductions). Beyond the output buffer (``region`` itself,
    reused when donated) every temporary has O(M) elements: reductions with
    ``include_self=False`` first set the identity at the touched rows; 'set', 'mean' and
    reduced-precision sums first combine the updates per distinct key (:func:`group_ids`)
    into M-row buffers, then write each touched row once, with the same value from every key
    that touches it.
    """
    dtype = region.dtype
    m = keys.shape[0]
    rows = region.shape[axis]
    assert not (axis and groups_keys(dtype, op, region.size, updates.size)), (op, axis)
    if dtype == jnp.bool_:  # 'sum'/'amax' are "or", 'prod'/'amin' are "and"
        op = {"sum": "amax", "prod": "amin"}.get(op, op)

    def per_row(v: jax.Array) -> jax.Array:  # a per-key vector, shaped to broadcast against updates
        return v if updates.ndim == 1 else v[:, None]

    def write(values: jax.Array) -> jax.Array:
        return rows_scatter("set", region, keys, values, axis)

    if op == "set":
        # Deterministic "last write wins": each group learns its largest key ordinal
        # (colliding keys differ only in their position along dim, so the largest ordinal is
        # the last along dim); every key of the group then writes that update.
        gid = group_ids(keys, rows)
        ordinal = lax.iota(jnp.int32, m)
        winner = rows_scatter("max", jnp.full((m,), -1, jnp.int32), gid, ordinal)
        return write(take_rows(updates, take_rows(winner, gid)))
    acc = _dtypes.accumulation_dtype(dtype)
    if upcasts_region(dtype, op, region.size, updates.size):
        # A reduced-precision sum into a region no larger than the updates: in a float32
        # copy of the region, from the operand's values (or zeros where include_self=False
        # excludes them), in index order, rounded once.
        copy = region.astype(acc)
        if not include_self:
            copy = rows_scatter("set", copy, keys, jnp.zeros(updates.shape, acc), axis)
        total = rows_scatter("add", copy, keys, updates.astype(acc), axis, sorted=sorted)
        return total.astype(dtype)
    if op == "mean" and include_self and acc == dtype:
        # The updates add into the operand's own values at their rows (the output buffer; no
        # other region-sized temporary), in index order, as torch accumulates:
        # (self + u0) + u1, not self + (u0 + u1), which differ in the last bit. Each touched
        # row is then overwritten by its total over its count.
        gid = group_ids(keys, rows)
        count = rows_scatter("add", jnp.zeros((m,), jnp.int32), gid, jnp.ones((m,), jnp.int32))
        count = per_row(take_rows(count, gid) + 1)
        sums = rows_scatter("add", region, keys, updates)
        total = take_rows(sums, jnp.clip(keys, 0, rows - 1))
        return rows_scatter("set", sums, keys, _dtypes.mean(total, count, dtype))
    if op == "mean" or (op == "sum" and acc != dtype):
        # Per-group totals in the accumulation dtype (float32 for reduced-precision floats;
        # integers in their own dtype, wrapping as torch does), rounded once. With
        # include_self a group's total starts from the operand's value (every key of a group
        # writes the same one) and the updates add to it in index order, as torch
        # accumulates: (self + u0) + u1, not self + (u0 + u1), which differ in the last bit.
        gid = group_ids(keys, rows)
        start = jnp.zeros((m, *updates.shape[1:]), acc)
        if include_self:
            assert base is not None  # needs_base(dtype, op, True) holds here
            start = rows_scatter("set", start, gid, base.astype(acc))
        total = take_rows(rows_scatter("add", start, gid, updates.astype(acc)), gid)
        if op == "sum":
            return write(total.astype(dtype))
        count = rows_scatter("add", jnp.zeros((m,), jnp.int32), gid, jnp.ones((m,), jnp.int32))
        count = per_row(take_rows(count, gid) + (1 if include_self else 0))
        return write(_dtypes.mean(total, count, dtype))
    if not include_self:
        region = write(jnp.full(updates.shape, _dtypes.identity(dtype, op), dtype))
    return rows_scatter(KIND[op], region, keys, updates, axis, sorted=sorted)


def product_of_others(
    f: jax.Array, zeros: jax.Array, product: jax.Array, zero_sum: jax.Array
) -> jax.Array:
    """The product of the factors other than ``f`` at ``f``'s position, without dividing by 0.

    ``zeros``: the number of zero factors at that position; ``product``: the product of its
    non-zero factors; ``zero_sum``: the sum of its zero factors (0, but its tangent is the sum
    of theirs). The value is ``product / f`` when there is no zero, ``product`` for the one
    zero factor, else 0 (torch's masking rule for the gradient of a product).

    Differentiable twice when ``product``'s own derivative is the product rule of its (non-zero)
    factors: where the value is 0 because of one zero factor ``z``, it is written as
    ``z * (product / f)`` (``f`` non-zero, the only zero elsewhere) or ``z' * product`` (``f``
    zero, one other zero ``z'``), whose derivative w.r.t. that factor is the product of the
    rest, as it should be. Positions with more zeros have derivative 0, as the true one.
    """
    safe = jnp.where(f == 0, jnp.ones((), f.dtype), f)
    rest = product / safe

    def vanishing(zero: jax.Array, coefficient: jax.Array) -> jax.Array:
        # ``zero * coefficient``: 0 in value even where the coefficient overflows.
        return zero * jnp.where(jnp.isfinite(coefficient), coefficient, 0)

    f_is_zero = jnp.where(
        zeros == 1, product, jnp.where(zeros == 2, vanishing(zero_sum - f, product), 0)
    )
    f_is_not = jnp.where(zeros == 0, rest, jnp.where(zeros == 1, vanishing(zero_sum, rest), 0))
    return jnp.where(f == 0, f_is_zero, f_is_not)


def product_tangent(
    scatter_sum: Callable[[jax.Array, jax.Array], jax.Array],
    product: Callable[[jax.Array, jax.Array], jax.Array],
    at_index: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    s: jax.Array,
    tx: jax.Array,
    ts: jax.Array,
    *,
    include_self: bool = True,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The tangent of a floating product reduction, torch's rule, for any index layout.

    The reduction multiplies the factors ``s`` (one per index entry) into the positions of
    ``x`` (whose own values are factors too when ``include_self``). Each factor's tangent
    is multiplied by the product of the other factors of its position
    (:func:`product_of_others`: no division by a zero factor). The caller's layout comes in
    three functions: ``scatter_sum(base, v)`` adds ``v`` (one per entry) into ``base`` at the
    index, dropping out-of-range entries; ``product(base, v)`` multiplies them in, with
    ``include_self``'s meaning, and is differentiable by this same rule (so the tangent has a
    derivative too); ``at_index(p)`` reads a per-position array at every entry.

    Returns:
      ``(tangent, zeros, product)``: the tangent at ``x``'s positions, and per position the
      number of zero factors and the product of the non-zero ones (the value is 0 where
      ``zeros > 0``, else that product).
    """
    one = jnp.ones((), x.dtype)
    zero_src = (s == 0).astype(jnp.int32)
    safe_s = jnp.where(s == 0, one, s)
    if include_self:
        zeros = scatter_sum((x == 0).astype(jnp.int32), zero_src)
        nonzero = product(jnp.where(x == 0, one, x), safe_s)
        zero_sum = scatter_sum(jnp.where(x == 0, x, 0), jnp.where(s == 0, s, 0))
        tangent = product_of_others(x, zeros, nonzero, zero_sum) * tx
    else:  # the input's tangent survives only where nothing was reduced in
        zeros = scatter_sum(jnp.zeros(x.shape, jnp.int32), zero_src)
        nonzero = product(jnp.ones_like(x), safe_s)
        zero_sum = scatter_sum(jnp.zeros_like(x), jnp.where(s == 0, s, 0))
        hits = scatter_sum(jnp.zeros(x.shape, jnp.int32), jnp.ones(s.shape, jnp.int32))
        tangent = tx * (hits == 0).astype(tx.dtype)
    at_src = [at_index(v) for v in (zeros, nonzero, zero_sum)]
    d_src = product_of_others(s, *at_src) * ts
    return scatter_sum(tangent, d_src), zeros, nonzero


# The per-element scatter of a large multi-dimensional index runs in chunks of about this many
# index elements (whole rows of its leading axis): each chunk's keys and updates stay in cache
# between being computed and being scattered. In one piece, XLA's CPU backend writes all the
# keys to memory, copies all the updates into the scatter's layout, and then reads both back:
# three passes over index-sized arrays where the chunked loop makes one (about 3x faster on a
# [200000, 64] index, benchmarks/ops.py).
_CHUNK_ELEMENTS = 1 << 14


def chunk_rows(index_shape: tuple[int, ...], dtype: Any, op: str) -> int:
    """Rows of the index's leading axis per chunk, or 0 for the scatter in one piece.

    Chunked: the plain reductions (one scatter per chunk, or two with ``include_self=False``)
    of a non-bool dtype that accumulates in itself, for an index of at least two dimensions
    and at least four chunks. Everything else ('set', 'mean' and reduced-precision sums, which
    group equal keys over the whole index first; 1-D indices, whose keys are the index itself
    and whose updates need no copy) scatters in one piece.
    """
    if len(index_shape) < 2 or op not in ("sum", "prod", "amax", "amin"):
        return 0
    if _dtypes.is_symbolic(*index_shape):  # a shape-polymorphic export: one piece
        return 0
    if np.dtype(dtype) == np.bool_ or (op == "sum" and _dtypes.accumulation_dtype(dtype) != dtype):
        return 0
    row = int(np.prod(index_shape[1:], dtype=np.int64))
    rows = max(1, _CHUNK_ELEMENTS // max(row, 1))
    return rows if index_shape[0] >= 4 * rows else 0


def chunked_reduce(
    region: jax.Array,
    index: jax.Array,
    updates: jax.Array,
    op: str,
    include_self: bool,
    rows: int,
    chunk_keys: Callable[[jax.Array, Any], jax.Array],
) -> jax.Array:
    """``reduce_rows`` for a plain reduction, ``rows`` rows of ``index``'s leading axis at a
    time in a ``fori_loop`` (the region is the loop's carry, updated in place), and the
    remainder rows after it. ``include_self=False`` first writes the identity at every
    touched position, in a loop of its own, so that no chunk's reduction is overwritten."""
    n = index.shape[0] // rows

    def over_chunks(kind: str, acc: jax.Array, values: Callable[[jax.Array], jax.Array]) -> Any:
        def body(k: Any, acc: jax.Array) -> jax.Array:
            start = k * rows
            idx = lax.dynamic_slice_in_dim(index, start, rows, 0)
            upd = lax.dynamic_slice_in_dim(updates, start, rows, 0)
            return rows_scatter(kind, acc, chunk_keys(idx, start), values(upd).reshape(-1))

        acc = lax.fori_loop(0, n, body, acc)
        if n * rows < index.shape[0]:
            idx, upd = index[n * rows :], updates[n * rows :]
            acc = rows_scatter(kind, acc, chunk_keys(idx, n * rows), values(upd).reshape(-1))
        return acc

    if not include_self:
        identity = _dtypes.identity(region.dtype, op)
        region = over_chunks("set", region, lambda u: jnp.full(u.shape, identity, u.dtype))
    return over_chunks(KIND[op], region, lambda u: u)


def row_extremes(index: jax.Array, dim: int) -> tuple[jax.Array, jax.Array]:
    """Each row's maximum and minimum over the axes after ``dim`` (two [prod(lead)] arrays).

    One variadic reduction computes both together: on CPU about twice as fast as
    ``jnp.all(index == index[..., :1])``, which materializes the comparison. A row is
    constant exactly when its two extremes are equal.
    """
    rows = index.reshape(math.prod(index.shape[: dim + 1]), -1)
    info = jnp.iinfo(rows.dtype)
    high, low = lax.reduce(
        (rows, rows),
        (np.array(info.min, rows.dtype), np.array(info.max, rows.dtype)),
        lambda a, b: (lax.max(a[0], b[0]), lax.min(a[1], b[1])),
        (1,),
    )
    return high, low
