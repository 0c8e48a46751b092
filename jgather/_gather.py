"""The gather family with torch semantics: ``gather``, ``take_along_dim``, ``index_select``.

Each public function checks its arguments at trace time (and a concrete index's values, with
torch's ``IndexError``) and calls a jitted core that emits one ``lax.gather`` (batching
dimensions for every axis but ``dim``; no iota index grid).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks, _indexing, _permute

__all__ = ["gather", "index_select", "take_along_dim"]


def _gather_impl(
    input: jax.Array,
    index: jax.Array,
    fill: jax.Array | None,
    dim: int,
    mode: str | None,
    unique: bool = False,
    inverse: jax.Array | None = None,
) -> jax.Array:
    """torch.gather on validated operands (input sliced here to index's extent off dim)."""
    index = _indexing.widen_index(index)
    if index.size == 0:
        return jnp.zeros(index.shape, input.dtype)
    if input.ndim == 0 or index.ndim == 0:  # torch pairs 0-d with 1-D of size 1
        flat_inverse = None if inverse is None else inverse.reshape(-1)
        out = _gather_impl(
            input.reshape(input.shape or (1,)),
            index.reshape(-1),
            fill,
            0,
            mode,
            unique,
            flat_inverse,
        )
        return out.reshape(index.shape)
    size = input.shape[dim]
    if size == 0:  # every index value is out of range
        value = _indexing.default_fill(input.dtype) if fill is None else fill
        return jnp.full(index.shape, value, input.dtype)
    operand = _indexing.slice_to(input, index.shape, dim)
    index = _indexing.prepare(index, size, mode, probe_lossy=True)
    if inverse is not None:
        inverse = _indexing.narrow_index(inverse, index.shape[dim])

    def take(x: jax.Array, i: jax.Array, m: lax.GatherScatterMode, u: bool) -> jax.Array:
        return _indexing.batched_gather(x, i, dim, m, unique_indices=u)

    lax_mode = _indexing.lax_mode(mode)
    out = _permute.take(take, operand, index, lax_mode, unique=unique, inverse=inverse)
    if fill is not None:
        out = jnp.where((index >= 0) & (index < size), out, fill)
    return out


@functools.partial(jax.jit, static_argnames=("impl", "dim", "mode", "unique"))
def _core(
    input: jax.Array,
    index: jax.Array,
    fill: jax.Array | None,
    inverse: jax.Array | None,
    *,
    impl: Any,
    dim: int,
    mode: str | None,
    unique: bool,
) -> jax.Array:
    """The jitted entry of ``gather`` and ``index_select``: ``impl`` on checked operands."""
    return impl(input, index, fill, dim, mode, unique, inverse)


def gather(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    *,
    mode: Literal["clip", "fill", "promise_in_bounds"] | None = None,
    fill_value: ArrayLike | None = None,
    unique_indices: bool = False,
    inverse: ArrayLike | None = None,
) -> jax.Array:
    """Gathers values along an axis: ``out[i][j][k] = input[i][index[i][j][k]][k]`` (dim=1).

    Mirrors ``torch.gather(input, dim, index)`` exactly: ``index.ndim == input.ndim``,
    ``index.shape[d] <= input.shape[d]`` for every ``d != dim`` (only the leading part of
    ``input`` is read there), the output has ``index``'s shape, nothing broadcasts, and the
    dtype of ``input`` is kept. Unlike ``jnp.take_along_axis`` it neither broadcasts nor wraps
    negative indices. Lowers to one ``lax.gather`` with batching dimensions.

    Its gradient with respect to ``input`` is a scatter-add of the cotangent at ``index``, as
    in torch (accumulated in float32 for bf16, fp16 and float8, rounded once).

    Args:
      input: array of any shape and dtype, ``[..., N, ...]`` with ``N`` at ``dim``.
      dim: the axis to gather along; negative values count from the end. Static.
      index: integer array (int32 or int64, or narrower) with ``index.ndim == input.ndim``.
      mode: what an out-of-range index value does: ``None`` (default: ``IndexError`` for a
        concrete index; under jit the position is filled with ``fill_value`` and checkify
        reports it), ``'fill'`` (fill, also eagerly), ``'clip'`` (clamp into
        ``[0, size - 1]``) or ``'promise_in_bounds'`` (the caller promises; unspecified
        otherwise). Static.
      fill_value: value for out-of-range positions with ``mode`` None or ``'fill'``; default
        NaN for inexact dtypes, the smallest signed / largest unsigned integer, True for bool.
        It is traced, so changing it does not recompile.
      unique_indices: promise that ``index`` holds no value twice along ``dim`` (static). The
        gradient is then a scatter-add marked ``unique_indices``, which XLA may lower without
        atomics. A concrete index is checked (``ValueError``); under ``jax.jit`` a broken
        promise leaves the values exact but the gradient undefined at repeated positions.
      inverse: optional integer array, ``index``'s inverse along ``dim``, of shape
        ``index.shape`` with ``input.shape[dim]`` at ``dim``:
        it holds ``k`` at each position ``i`` that slot ``k`` reads, and any value outside
        ``[0, K)`` (``K`` slots) at the positions no slot reads. The gradient is then a
        gather of the cotangent by ``inverse``, with no scatter; it implies
        ``unique_indices``. Checked when both arrays are concrete (``ValueError``); under
        ``jax.jit`` a wrong inverse gives a wrong gradient (the values stay exact).

    Returns:
      Array with ``index``'s shape and ``input``'s dtype.

    Raises:
      TypeError: ``index`` is not of integer dtype.
      IndexError: ``dim`` is out of range, or (mode None) a concrete index value is out of
        range, e.g. ``index 23 is out of bounds for dimension 1 with size 2``.
      ValueError: ``index.ndim != input.ndim``, ``index`` larger than ``input`` off ``dim``,
        an unknown ``mode``, ``fill_value`` with a mode that never fills, or a concrete
        index that breaks ``unique_indices`` / ``inverse``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import gather
      >>> t = jnp.array([[1, 2], [3, 4]])
      >>> gather(t, 1, jnp.array([[0, 0], [1, 0]]))
      Array([[1, 1],
             [4, 3]], dtype=int32)
    """
    fn = "gather"
    input, index, wide, dim = _indexing.operands(
        fn, input, index, mode, _indexing.GATHER_MODES, dim=dim
    )
    _indexing.check_gather_shapes(fn, input.shape, index.shape, dim)
    fill = _indexing.fill_scalar(fn, mode, fill_value, input.dtype)
    size = input.shape[dim] if input.ndim else 1
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, dim, size)
    shape = (*index.shape[:dim], size, *index.shape[dim + 1 :]) if index.ndim else (size,)
    unique, inv = _permute.check_promise(
        fn, unique_indices, inverse, wide, shape, dim if index.ndim else 0, size
    )
    return _core(input, index, fill, inv, impl=_gather_impl, dim=dim, mode=mode, unique=unique)


def _index_select_impl(
    input: jax.Array,
    index: jax.Array,
    fill: jax.Array | None,
    dim: int,
    mode: str | None,
    unique: bool = False,
    inverse: jax.Array | None = None,
) -> jax.Array:
    index = _indexing.widen_index(index)
    if input.ndim == 0:
        return _index_select_impl(input[None], index, fill, 0, mode, unique, inverse).reshape(())
    index = index.reshape(-1)
    out_shape = input.shape[:dim] + index.shape + input.shape[dim + 1 :]
    size = input.shape[dim]
    if index.size == 0 or 0 in out_shape:
        return jnp.zeros(out_shape, input.dtype)
    if size == 0:  # every index value is out of range
        value = _indexing.default_fill(input.dtype) if fill is None else fill
        return jnp.full(out_shape, value, input.dtype)
    index = _indexing.prepare(index, size, mode, probe_lossy=True)
    if inverse is not None:
        inverse = _indexing.narrow_index(inverse.reshape(-1), index.shape[0])
    # The axes before dim are batching dimensions (the index broadcast over them, which
    # costs nothing), so the output comes out of the gather in its final order: with them as
    # offset dimensions XLA would gather [K, ...] and transpose it.
    lead = tuple(range(dim))
    dnums = lax.GatherDimensionNumbers(
        offset_dims=tuple(range(dim + 1, input.ndim)),
        collapsed_slice_dims=(dim,),
        start_index_map=(dim,),
        operand_batching_dims=lead,
        start_indices_batching_dims=lead,
    )
    slice_sizes = (*(1,) * (dim + 1), *input.shape[dim + 1 :])
    lax_mode = _indexing.lax_mode(mode)

    def select(x: jax.Array, i: jax.Array, m: lax.GatherScatterMode, u: bool) -> jax.Array:
        i = lax.broadcast_in_dim(i, (*x.shape[:dim], i.shape[0], 1), (dim,))
        return lax.gather(x, i, dnums, slice_sizes, mode=m, unique_indices=u)

    out = _permute.take(select, input, index, lax_mode, unique=unique, inverse=inverse)
    if fill is not None:
        ok = lax.broadcast_in_dim((index >= 0) & (index < size), out.shape, (dim,))
        out = jnp.where(ok, out, fill)
    return out


def index_select(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    *,
    mode: Literal["clip", "fill", "promise_in_bounds"] | None = None,
    fill_value: ArrayLike | None = None,
    unique_indices: bool = False,
    inverse: ArrayLike | None = None,
) -> jax.Array:
    """Selects whole slices of ``input`` along ``dim``: ``out = input[..., index, ...]``.

    Mirrors ``torch.index_select(input, dim, index)``: ``index`` is 1-D (or 0-d, which acts as
    a single-element vector), and the output is ``input`` with axis ``dim`` replaced by
    ``len(index)``. Lowers to one ``lax.gather`` of whole slices (rows for ``dim=0``), which
    ``jax.vmap`` turns into a single batched gather: e.g. ``jax.vmap(index_select, (0, None,
    0))(x, 0, ids)`` with ``x`` ``[N, L, D]`` and ``ids`` ``[N, K]`` gives ``[N, K, D]``.

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; a 0-d input acts as shape ``[1]``
        and gives a 0-d result (index must then hold exactly one value).
      dim: the axis to select along; negative values count from the end. Static.
      index: integer array of shape ``[K]`` or ``[]``.
      mode: out-of-range behaviour, as in :func:`gather`. Static.
      fill_value: value for out-of-range slices with ``mode`` None or ``'fill'``.
      unique_indices: promise that ``index`` holds no value twice along ``dim`` (static). The
        gradient is then a scatter-add marked ``unique_indices``, which XLA may lower without
        atomics. A concrete index is checked (``ValueError``); under ``jax.jit`` a broken
        promise leaves the values exact but the gradient undefined at repeated positions.
      inverse: optional integer array, ``index``'s inverse along ``dim``, of shape
        ``[input.shape[dim]]`` (one slot per slice of ``input``):
        it holds ``k`` at each position ``i`` that slot ``k`` reads, and any value outside
        ``[0, K)`` (``K`` slots) at the positions no slot reads. The gradient is then a
        gather of the cotangent by ``inverse``, with no scatter; it implies
        ``unique_indices``. Checked when both arrays are concrete (``ValueError``); under
        ``jax.jit`` a wrong inverse gives a wrong gradient (the values stay exact).

    Returns:
      Array ``input.shape[:dim] + [K] + input.shape[dim + 1:]`` of ``input``'s dtype.

    Raises:
      TypeError: ``index`` is not of integer dtype.
      IndexError: ``dim`` is out of range, or (mode None) a concrete index value is out of
        range.
      ValueError: ``index`` has more than one dimension, an unknown ``mode``, or (0-d input)
        an index with more than one value.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_select
      >>> x = jnp.arange(6).reshape(2, 3)
      >>> index_select(x, 1, jnp.array([2, 0]))
      Array([[2, 0],
             [5, 3]], dtype=int32)
    """
    fn = "index_select"
    input, index, wide, dim = _indexing.operands(
        fn, input, index, mode, _indexing.GATHER_MODES, dim=dim
    )
    if index.ndim > 1:
        raise ValueError(
            f"{fn}: index must be 1-D (or 0-d), got shape {index.shape}; flatten it with "
            "index.reshape(-1) and reshape the result, or use gather for per-element indices."
        )
    if input.ndim == 0 and index.size != 1:
        raise ValueError(
            f"{fn}: a 0-d input needs an index with exactly one value, got shape {index.shape}."
        )
    fill = _indexing.fill_scalar(fn, mode, fill_value, input.dtype)
    size = input.shape[dim] if input.ndim else 1
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, dim, size)
    flat = wide if _checks.is_traced(wide) else np.asarray(wide).reshape(-1)
    unique, inv = _permute.check_promise(fn, unique_indices, inverse, flat, (size,), 0, size)
    return _core(
        input, index, fill, inv, impl=_index_select_impl, dim=dim, mode=mode, unique=unique
    )


def _broadcast_off_dim(
    fn: str, a_shape: tuple[int, ...], b_shape: tuple[int, ...], dim: int
) -> tuple[int, ...]:
    """Broadcast of two equal-rank shapes on every axis but ``dim`` (where ``a`` wins)."""
    out = []
    for d, (a, b) in enumerate(zip(a_shape, b_shape, strict=True)):
        if d == dim:
            out.append(a)
        elif a == b or b == 1:
            out.append(a)
        elif a == 1:
            out.append(b)
        else:
            raise ValueError(
                f"{fn}: input shape {a_shape} and indices shape {b_shape} do not broadcast at "
                f"dimension {d} ({a} vs {b}); off dim {dim} sizes must be equal or 1."
            )
    return tuple(out)


@functools.partial(jax.jit, static_argnames=("dim", "mode", "unique"))
def _take_along_dim_core(
    input: jax.Array,
    indices: jax.Array,
    fill: jax.Array | None,
    inverse: jax.Array | None,
    *,
    dim: int | None,
    mode: str | None,
    unique: bool,
) -> jax.Array:
    if dim is None:
        flat_inverse = None if inverse is None else inverse.reshape(-1)
        return _gather_impl(
            input.reshape(-1), indices.reshape(-1), fill, 0, mode, unique, flat_inverse
        )
    size = input.shape[dim] if input.ndim else 1
    indices = _indexing.widen_index(indices)  # int8 -1 + 300 must not overflow

    indices = _indexing.prepare(_indexing.wrap(indices, size), size, mode, probe_lossy=True)
    if input.ndim:
        in_shape = _broadcast_off_dim("take_along_dim", input.shape, indices.shape, dim)
        idx_shape = in_shape[:dim] + indices.shape[dim : dim + 1] + in_shape[dim + 1 :]
        input = jnp.broadcast_to(input, in_shape)
        indices = jnp.broadcast_to(indices, idx_shape)
        if inverse is not None:
            inverse = jnp.broadcast_to(inverse, in_shape)
    return _gather_impl(input, indices, fill, dim, mode, unique, inverse)


def take_along_dim(
    input: ArrayLike,
    indices: ArrayLike,
    dim: int | None = None,
    *,
    mode: Literal["clip", "fill", "promise_in_bounds"] | None = None,
    fill_value: ArrayLike | None = None,
    unique_indices: bool = False,
    inverse: ArrayLike | None = None,
) -> jax.Array:
    """Gathers along ``dim`` with broadcasting, like ``torch.take_along_dim``.

    With ``dim=None`` both ``input`` and ``indices`` are flattened and the result is 1-D
    (``input.reshape(-1)[indices.reshape(-1)]``); negative indices are then out of range, as
    in torch. Otherwise ``input`` and ``indices`` must have the same number of dimensions, are
    broadcast against each other on every axis but ``dim``, and the result is :func:`gather`
    of the broadcast operands; negative indices in ``[-size, 0)`` count from the end (torch
    >= 2.8 wraps them too). Values outside ``[-size, size)`` are out of range (torch wraps
    them modulo ``size``; jgather raises or applies ``mode``).

    Args:
      input: array of any shape and dtype.
      indices: integer array; same ndim as ``input`` when ``dim`` is given.
      dim: the axis, or None for the flattened input. Static.
      mode: out-of-range behaviour, as in :func:`gather`. Static.
      fill_value: value for out-of-range positions with ``mode`` None or ``'fill'``.
      unique_indices: promise that ``indices`` holds no value twice along ``dim`` (static). The
        gradient is then a scatter-add marked ``unique_indices``, which XLA may lower without
        atomics. A concrete index is checked (``ValueError``); under ``jax.jit`` a broken
        promise leaves the values exact but the gradient undefined at repeated positions.
      inverse: optional integer array, ``indices``'s inverse along ``dim``, of shape
        the broadcast input's (``[input.size]`` for ``dim=None``):
        it holds ``k`` at each position ``i`` that slot ``k`` reads, and any value outside
        ``[0, K)`` (``K`` slots) at the positions no slot reads. The gradient is then a
        gather of the cotangent by ``inverse``, with no scatter; it implies
        ``unique_indices``. Checked when both arrays are concrete (``ValueError``); under
        ``jax.jit`` a wrong inverse gives a wrong gradient (the values stay exact).

    Returns:
      ``dim=None``: ``[indices.size]``. Otherwise the broadcast shape, with ``indices``'s
      size at ``dim``.

    Raises:
      TypeError: ``indices`` is not of integer dtype.
      IndexError: ``dim`` is out of range (or given for a 0-d input), or (mode None) a
        concrete index value is out of range.
      ValueError: different ndims, shapes that do not broadcast off ``dim``, unknown mode.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import take_along_dim
      >>> t = jnp.array([[10, 30, 20], [60, 40, 50]])
      >>> take_along_dim(t, jnp.argmax(t, axis=1, keepdims=True), dim=1)
      Array([[30],
             [60]], dtype=int32)
      >>> take_along_dim(t, jnp.array([0, 5]))
      Array([10, 50], dtype=int32)
    """
    fn = "take_along_dim"
    input, indices, wide, _ = _indexing.operands(
        fn, input, indices, mode, _indexing.GATHER_MODES, name="indices"
    )
    if dim is None:
        size, check_dim = input.size, 0
    else:
        if input.ndim == 0:
            raise IndexError(
                f"{fn}: dim {dim} was given but input is 0-d (no dimensions, as torch); pass "
                "dim=None, or reshape input to 1-D."
            )
        dim = _indexing.canonical_dim(fn, dim, input.ndim)
        if indices.ndim != input.ndim:
            raise ValueError(
                f"{fn}: input and indices should have the same number of dimensions, but got "
                f"{input.ndim} for input (shape {input.shape}) and {indices.ndim} for indices "
                f"(shape {indices.shape}); add size-1 axes to indices, or pass dim=None."
            )
        if input.ndim:
            _broadcast_off_dim(fn, input.shape, indices.shape, dim)
        size, check_dim = (input.shape[dim] if input.ndim else 1), dim
    fill = _indexing.fill_scalar(fn, mode, fill_value, input.dtype)
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, check_dim, size, wrap=dim is not None)
    shape: tuple[int, ...] = (size,)
    lines = wide
    if dim is not None:
        shape = _broadcast_off_dim(fn, input.shape, indices.shape, dim)
    promised = unique_indices is not False or inverse is not None
    if promised and not _checks.is_traced(wide):  # the values as the gather reads them
        lines = np.asarray(wide).astype(np.int64)
        if dim is None:
            lines = lines.reshape(-1)
        else:
            lines = np.where(lines < 0, lines + size, lines)
            lines = np.broadcast_to(lines, (*shape[:dim], lines.shape[dim], *shape[dim + 1 :]))
    unique, inv = _permute.check_promise(fn, unique_indices, inverse, lines, shape, check_dim, size)
    return _take_along_dim_core(input, indices, fill, inv, dim=dim, mode=mode, unique=unique)
