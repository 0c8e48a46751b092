"""The scatter engine: one request (operand, index, updates, reduction), one lowering.

:func:`scatter` is the entry every torch-style scatter hands its validated request to
(``jgather.scatter``, ``scatter_add``, ``scatter_reduce``, the torch index family,
``embedding_bag``): at trace time it finds an index expanded along the trailing axes and
the sharded path, and the jitted ``scatter_core`` makes torch's layout canonical.
:func:`batchable` (the canonical request, batched, with the derivative rules) over
:func:`lower` (key building and the per-platform strategies) is the one lowering under it
and under ``jgather.segment``'s reductions. The design and its measurements are under
"Internals" in ``docs/development.md``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _batching, _dtypes, _indexing, _jax_private, _platform, _rows, _sharding

# An index of fewer elements than this never gets the run-time whole-rows test (XLA:CPU
# only): its per-element scatter is cheap, and the two conditionals would cost more.
_RUNTIME_ROWS_MIN = 1 << 16


def rows_source(index: Any, wide: Any, dim: int, input_shape: tuple[int, ...]) -> Any:
    """The index's axes up to ``dim`` when it is constant along the rest, known now; else None.

    torch code scatters graph messages with ``index.expand(E, F)``: an index constant along
    every axis after ``dim``, which moves whole trailing slices (one key per slice). Found at
    trace time, without reading values, for a NumPy view with zero strides there
    (``np.broadcast_to``) and for a traced index made by ``jnp.broadcast_to`` / ``x[:, None]``
    inside the same ``jax.jit`` (:func:`jgather._jax_private.broadcast_operand`). Anything
    else returns None.
    """
    trailing = tuple(input_shape[dim + 1 :])
    if not trailing or math.prod(trailing) == 1 or index.shape[dim + 1 :] != trailing:
        return None
    if isinstance(wide, np.ndarray):
        if wide.shape == index.shape and all(st == 0 for st in wide.strides[dim + 1 :]):
            return index[(..., *(0,) * len(trailing))]
        return None
    return _jax_private.broadcast_operand(index, dim)


def lower(
    operand: jax.Array,
    index: jax.Array,
    updates: jax.Array,
    dim: int,
    mode: str | None,
    op: str,
    include_self: bool,
    primal: bool = True,
    sorted: bool = False,
) -> jax.Array:
    """The scatter of one canonical request, the lowering under every scatter-shaped op.

    ``operand`` has at least one axis; ``updates`` its rank, with sizes at most
    ``operand``'s off ``dim``; ``index`` is prepared (:func:`jgather._indexing.prepare`) and
    aligned with ``updates``: its size on ``dim``, and on every other axis ``updates``' size
    or 1. An axis of size 1 where ``updates`` spans ``operand`` is a window, known at trace
    time: the index is constant along it and whole slices move with one key (torch's
    ``index.expand`` idiom, the index family's rows, ``jgather.segment``'s broadcast index),
    with no ``lax.cond``. An index with no window is per element; on XLA:CPU it may scatter
    in chunks, and when it spans ``operand``'s trailing axes a ``lax.cond`` looks for whole
    rows at run time; ``primal=False`` (inside the derivative rules) skips both (see
    ``batchable``). ``mode`` 'clip' promises the index in range (clamped); otherwise an
    out-of-range value is dropped. ``sorted``: the index is sorted along ``dim`` (passed to
    XLA where the keys are the index values in their order).
    """
    if index.size == 0 or updates.size == 0:
        return operand
    size = operand.shape[dim]
    if size == 0:  # nothing is in range; every update is dropped
        return operand
    # An axis of size 1 where updates cover only a part of operand's is keyed, not a window.
    keyed_ones = [
        d
        for d in range(updates.ndim)
        if d != dim and index.shape[d] == 1 != updates.shape[d] != operand.shape[d]
    ]
    if keyed_ones:
        index = jnp.broadcast_to(
            index,
            tuple(updates.shape[d] if d in keyed_ones else n for d, n in enumerate(index.shape)),
        )
    whole = any(index.shape[d] == 1 != updates.shape[d] for d in range(updates.ndim) if d != dim)
    # Keys address the operand itself (its own strides; no slice of it is copied).
    # Python ints, or symbolic dimensions under a shape-polymorphic jax.export.
    strides = [math.prod(operand.shape[d + 1 :]) for d in range(operand.ndim)]
    lead_in = math.prod(operand.shape[:dim])
    trail_in = strides[dim]
    key_dtype = _dtypes.key_dtype_for("scatter", operand.size)
    needs_base = _rows.needs_base(operand.dtype, op, include_self, operand.size, updates.size)
    plain_sorted = sorted and index.ndim == 1

    def drop_out_of_range(keys: jax.Array, idx: jax.Array, scaled: bool) -> jax.Array:
        # XLA drops out-of-range keys natively. An out-of-range index value can only alias
        # another in-range key when leading positions are folded in (dim > 0) or the index
        # is scaled (int32 overflow); only then does it need an explicit drop key.
        if mode == "clip" or (lead_in == 1 and not scaled):
            return keys
        return jnp.where((idx >= 0) & (idx < size), keys, operand.size)

    def element_keys(idx: jax.Array = index, row0: Any = 0) -> jax.Array:
        # One key per index element: its flat position in ``operand``. ``idx`` holds the rows
        # [row0, row0 + len(idx)) of the index's leading axis (all of it by default).
        keys = idx.astype(key_dtype) * trail_in
        for d in range(idx.ndim):
            if d != dim:
                pos = lax.broadcasted_iota(key_dtype, idx.shape, d)
                if d == 0 and not (isinstance(row0, int) and row0 == 0):
                    pos = pos + row0
                keys = keys + pos * strides[d]
        return drop_out_of_range(keys, idx, trail_in > 1).reshape(-1)

    def whole_rows(idx: jax.Array, base: jax.Array | None) -> jax.Array:
        # ``idx`` has size 1 on its windows: whole slices move, one key per position of
        # the keyed axes (:func:`jgather._rows.into_rows`).
        def reduce(
            region: jax.Array, keys: jax.Array, values: jax.Array, *, axis: int, plain: bool
        ) -> jax.Array:
            # Along ``axis`` of the arrays as they are (plain), or of [rows, width] views
            # (axis 0). A window before ``axis`` (a folded batch) is moved behind it for the
            # reductions that group keys, which work on [rows, width] views.
            grouped = _rows.groups_keys(region.dtype, op, region.size, values.size)
            if axis and not grouped:
                return _rows.reduce_rows(
                    region, keys, values, op, include_self, sorted=sorted, axis=axis
                )
            if axis:
                out = reduce(
                    jnp.moveaxis(region, axis, 0),
                    keys,
                    jnp.moveaxis(values, axis, 0),
                    axis=0,
                    plain=plain,
                )
                return jnp.moveaxis(out, 0, axis)
            rows, shape = region.shape[0], region.shape
            region = region.reshape(rows, -1)
            values = values.reshape(keys.shape[0], -1)
            b = base
            if b is not None:
                b = b.reshape(values.shape)
            elif needs_base:
                b = _rows.take_rows(region, jnp.clip(keys, 0, rows - 1))
            out = _rows.reduce_rows(
                region, keys, values, op, include_self, b, sorted=sorted and plain
            )
            return out.reshape(shape)

        drop = mode != "clip"
        return _rows.into_rows(reduce, operand, updates, idx, dim, drop=drop, fn="scatter")

    if whole:  # known at trace time: whole rows, no conditional
        return whole_rows(index, None)

    base = None
    if needs_base:  # read once, outside the conds below
        base = _rows.take_rows(operand.reshape(-1), jnp.clip(element_keys(), 0, operand.size - 1))

    def one_piece() -> jax.Array:
        out = _rows.reduce_rows(
            operand.reshape(-1),
            element_keys(),
            updates.reshape(-1),
            op,
            include_self,
            base,
            sorted=plain_sorted,
        )
        return out.reshape(operand.shape)

    # XLA:CPU only: a large multi-dimensional index scatters in cache-sized chunks, and an
    # opaque index that may be expanded gets a run-time whole-rows test. On GPU and TPU a loop
    # of small scatters would serialise kernel launches and a conditional on index contents
    # would synchronise with the host, so they scatter in one piece.
    chunk_rows = _rows.chunk_rows(index.shape, operand.dtype, op) if primal else 0
    runtime_test = (
        not _dtypes.is_symbolic(index.size, trail_in)
        and trail_in > 1
        and primal
        and index.size >= _RUNTIME_ROWS_MIN
        and index.shape[dim + 1 :] == operand.shape[dim + 1 :]
    )
    if not chunk_rows and not runtime_test:
        return one_piece()

    def elementwise() -> jax.Array:
        if not chunk_rows:
            return one_piece()
        out = _rows.chunked_reduce(
            operand.reshape(-1), index, updates, op, include_self, chunk_rows, element_keys
        )
        return out.reshape(operand.shape)

    def on_cpu() -> jax.Array:
        if not runtime_test:
            return elementwise()
        # A first test reads one trailing slice (at the first leading position); only when
        # that slice is constant does a second one read the whole index, so a per-element
        # index -- whose first slice is almost never constant -- costs no extra pass. (The
        # tests are chained, not nested: XLA then still writes the scatter into the operand's
        # buffer.) The full test's per-row maximum is then the index's leading part.
        lead_shape = index.shape[: dim + 1]
        head = index[(*(0,) * (dim + 1), ...)]
        rows_shape = lead_shape + (1,) * (index.ndim - dim - 1)

        def full_test() -> tuple[jax.Array, jax.Array]:
            high, low = _rows.row_extremes(index, dim)
            return jnp.all(high == low), high.reshape(rows_shape)

        def skip() -> tuple[jax.Array, jax.Array]:
            return jnp.bool_(False), jnp.zeros(rows_shape, index.dtype)

        expanded, first = lax.cond(jnp.all(head == head.reshape(-1)[0]), full_test, skip)
        return lax.cond(expanded, lambda: whole_rows(first, base), elementwise)

    return _platform.cpu_or_accelerator(on_cpu, one_piece)


def scatter(
    input: jax.Array,
    index: jax.Array,
    src: jax.Array,
    *,
    dim: int,
    op: str,
    mode: str | None,
    include_self: bool = True,
    wide: Any = None,
    trailing: tuple[int, ...] | None = None,
) -> jax.Array:
    """``input`` with ``src`` reduced in at ``index`` along ``dim``: the one scatter request.

    Args:
      input: the operand, any shape (0-d acts as 1-D of size 1).
      index: an integer array with ``input``'s rank, torch's scatter layout
        (``index.shape[d] <= input.shape[d]`` off ``dim``); or, with ``trailing``, only its
        axes up to ``dim`` of an index constant along the axes after ``dim``.
      src: the updates: ``index``'s shape or larger (its leading part is read), or a 0-d
        value broadcast over the index.
      dim: the canonical (non-negative) axis.
      op: 'set', 'sum', 'prod', 'mean', 'amax' or 'amin'.
      mode: None (in range, checked by the caller and by ``checkify``), 'drop' or 'clip'.
      include_self: whether ``input``'s values take part in the reduction.
      wide: the index as the caller gave it (a NumPy array with zero strides is found to be
        constant along the trailing axes without reading it); defaults to ``index``.
      trailing: ``input.shape[dim + 1:]`` when ``index`` holds only its axes up to ``dim``.

    Returns:
      An array of ``input``'s shape and dtype.

    The arguments are trusted: every public function checks them first.
    """
    layout = _sharding.auto_layout(input)
    sharded = layout is not None or (
        input.ndim and index.size and _sharding.explicit_mesh(input, index, src) is not None
    )
    if trailing is None and not sharded and index.size:
        first = rows_source(index, index if wide is None else wide, dim, input.shape)
        if first is not None:  # found at trace time: whole rows
            index, trailing = first, tuple(input.shape[dim + 1 :])
    if trailing is not None and sharded:  # the per-shard paths take the whole index
        full = index.shape + trailing
        index = jnp.broadcast_to(index.reshape(index.shape + (1,) * len(trailing)), full)
        trailing = None
    return scatter_core(
        input,
        index,
        src,
        dim=dim,
        mode=mode,
        op=op,
        include_self=include_self,
        layout=layout if trailing is None else None,
        trailing=trailing,
    )


@functools.partial(
    jax.jit, static_argnames=("dim", "mode", "op", "include_self", "layout", "trailing")
)
def scatter_core(
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
    if input.ndim == 0:  # torch pairs a 0-d input with a 1-D index of size 1
        out = scatter_core(
            input[None],
            index.reshape(index.shape or (1,)),
            src.reshape(src.shape or (1,)),
            dim=0,
            mode=mode,
            op=op,
            include_self=include_self,
        )
        return out.reshape(())

    def body(input: jax.Array, index: jax.Array, src: jax.Array) -> jax.Array:
        # torch's layout made canonical: the updates cut to the index's extent (a 0-d src
        # broadcast over it), the index prepared and, for whole rows, aligned with them.
        size = input.shape[dim]
        if not index.size or not size:
            return input
        if mode != "clip":
            # checkify.index_checks reports the caller's index value and axis size here (the
            # scatters below see flattened, narrowed keys).
            _indexing.probe(index, size)
        index = index.reshape(index.shape or (1,))  # torch reads a 0-d index as [1]
        full = index.shape if trailing is None else index.shape + trailing
        if src.size == 1:
            updates = jnp.broadcast_to(src.reshape((1,) * len(full)), full)
        else:
            updates = _indexing.slice_to(src, full, None)
        index = _indexing.prepare(index, size, mode)
        if trailing is not None:
            index = index.reshape(index.shape + (1,) * len(trailing))
        return batchable(dim, mode, op, include_self)(input, index, updates)

    if trailing is not None or not index.size:  # the caller passes it only off the sharded paths
        return body(input, index, src)
    return _sharding.per_shard_off_axis(
        body, (input, index, src), dim, broadcastable=(False,) * 3, layout=layout, restore=True
    )


@functools.cache
def batchable(
    dim: int, mode: str | None, op: str, include_self: bool, sorted: bool = False
) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """:func:`lower` for fixed static arguments, on ``(operand, index, updates)``, batched
    by folding (:func:`jgather._batching.fold_batch`), with the scatter's derivative rules.

    Every scatter-shaped op ends here: the torch-style faces through :func:`scatter` and
    ``jgather.segment``'s reductions directly. ``jax.vmap``'s rule for a scatter with a
    batched index adds batching dimensions, which ``checkify``'s scatter rule (jax 0.10)
    cannot read; folding the batch into one more leading axis keeps the flattened-key
    scatter. An unbatched index gets a batch axis of size 1, a window (the same index for
    every batch element). ``checkify`` does not look inside the fold; callers probe the index
    they were given first.
    """

    def make(d: int) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
        return lambda x, i, u: lower(x, i, u, d, mode, op, include_self, True, sorted)

    def jvp(d: int) -> Callable[..., tuple[jax.Array, jax.Array]]:
        return functools.partial(_scatter_jvp, d, mode, op, include_self, sorted)

    return _batching.fold_batch(make, dim, (False, True, False), jvp=jvp)


def _scatter_jvp(
    dim: int,
    mode: str | None,
    op: str,
    include_self: bool,
    sorted: bool,
    primals: tuple[jax.Array, jax.Array, jax.Array],
    tangents: tuple[Any, Any, Any],
) -> tuple[jax.Array, jax.Array]:
    """The scatter's JVP: that of :func:`lower` itself (only for the arguments with a
    non-zero tangent: JAX has no 'prod' derivative w.r.t. the updates with duplicates, which
    must not be asked for by a zero), torch's rules for a floating 'prod'
    (:func:`product_tangent`) and for NaN extrema."""
    x, i, u = primals
    tx, _, tu = tangents
    live = [(k, a, t) for k, a, t in ((0, x, tx), (2, u, tu)) if not _symbolic_zero(t)]

    def f(*args: jax.Array) -> jax.Array:
        full = [x, i, u]
        for (k, _, _), a in zip(live, args, strict=True):
            full[k] = a
        # No run-time strategies (primal=False): the whole-rows lax.cond, batched and then
        # differentiated, leaves a stop_gradient that jax 0.10 cannot transpose.
        return lower(full[0], full[1], full[2], dim, mode, op, include_self, False, sorted)

    inexact = jnp.issubdtype(x.dtype, jnp.inexact)
    if op == "prod" and inexact and not _symbolic_zero(tu):
        zero = lambda t, a: jnp.zeros_like(a) if _symbolic_zero(t) else t
        # Differentiable again by this rule (a second order).
        out = batchable(dim, mode, op, include_self, sorted)(x, i, u)
        tangent = product_tangent(x, i, u, zero(tx, x), zero(tu, u), dim, mode, include_self)
        return out, tangent
    out, tangent = jax.jvp(f, tuple(a for _, a, _ in live), tuple(t for _, _, t in live))
    if op in ("amax", "amin") and inexact:
        # torch divides the cotangent among the entries equal to the result; a NaN result
        # has none, and its 0/0 share is NaN for every entry reduced into it.
        tangent = tangent * jnp.where(jnp.isnan(out), jnp.nan, 1).astype(out.dtype)
    return out, tangent


def _symbolic_zero(t: Any) -> bool:
    return isinstance(t, jax.custom_derivatives.SymbolicZero)


def product_tangent(
    x: jax.Array,
    i: jax.Array,
    u: jax.Array,
    tx: jax.Array,
    tu: jax.Array,
    dim: int,
    mode: str | None,
    include_self: bool,
) -> jax.Array:
    """The tangent of a floating 'prod' scatter (:func:`jgather._rows.product_tangent` on
    the canonical layout): XLA has no derivative of a scatter-multiply w.r.t. its updates
    when indices repeat."""
    if i.size == 0 or u.size == 0 or x.shape[dim] == 0:
        return tx

    def at_index(v: jax.Array) -> jax.Array:  # v [operand's shape] read at the index: [u]
        idx = _indexing.prepare(jnp.broadcast_to(i, u.shape), v.shape[dim], "clip")
        operand = _indexing.slice_to(v, u.shape, dim)
        return _indexing.batched_gather(operand, idx, dim, lax.GatherScatterMode.PROMISE_IN_BOUNDS)

    tangent, _, _ = _rows.product_tangent(
        lambda base, v: lower(base, i, v, dim, mode, "sum", True, False),
        lambda base, v: batchable(dim, mode, "prod", include_self)(base, i, v),
        at_index,
        x,
        u,
        tx,
        tu,
        include_self=include_self,
    )
    return tangent
