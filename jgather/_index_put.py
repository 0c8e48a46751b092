"""torch's ``index_put``, ``put`` and ``take``: positions named by index arrays or flat.

``index_put`` and ``put`` write (or add) into the input at positions named by several index
arrays or by flat positions: each checks its arguments at trace time (and concrete index
values, with torch's ``IndexError``), turns the positions into row keys and hands one request
to the scatter engine (``jgather._engine.scatter``); ``take`` is one ``lax.gather`` of the
flattened input. Out-of-range values under jit and the ``mode`` argument are described in the
"Out-of-range indices under jit" guide.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _engine, _indexing, _permute

__all__ = ["index_put", "put", "take"]


def _flat_keys(
    indices: Sequence[jax.Array], sizes: Sequence[int], mode: str | None, key_dtype: Any
) -> jax.Array:
    """Row-major keys of the positions ``indices`` (broadcast, equal shapes) name in an
    array of ``sizes``; -1 where a value is out of range (dropped by the engine)."""
    key = jnp.zeros(indices[0].shape, key_dtype)
    valid = jnp.ones(indices[0].shape, jnp.bool_)
    for d, (idx, n) in enumerate(zip(indices, sizes, strict=True)):
        w = _indexing.wrap(idx, n)
        if mode == "clip":
            w = _indexing.clamp(w, n)
        elif mode != "promise_in_bounds":
            _indexing.probe(w, n)  # checkify reports the caller's value against its axis
        ok = (w >= 0) & (w < n)
        stride = math.prod(sizes[d + 1 :])
        key = key + jnp.where(ok, w, 0).astype(key_dtype) * stride
        valid = valid & ok
    return jnp.where(valid, key, -1)


def _put_rows(
    input: jax.Array,
    keys: jax.Array,
    values: jax.Array,
    k: int,
    accumulate: bool,
    mode: str | None,
) -> jax.Array:
    """``values`` [M, *rest] written (or added) at rows ``keys`` [M] of ``input`` viewed as
    [prod(shape[:k]), *rest]."""
    rest = input.shape[k:]
    region = input.reshape((math.prod(input.shape[:k]), *rest))
    out = _engine.scatter(
        region,
        keys,
        values,
        dim=0,
        op="sum" if accumulate else "set",
        mode=mode,  # keys of out-of-range positions are already -1 (dropped); clip clamped
        trailing=tuple(rest),
    )
    return out.reshape(input.shape)


@functools.partial(jax.jit, static_argnames=("k", "accumulate", "mode"))
def _index_put_core(
    input: jax.Array,
    indices: tuple[jax.Array, ...],
    values: jax.Array,
    *,
    k: int,
    accumulate: bool,
    mode: str | None,
) -> jax.Array:
    shape = jnp.broadcast_shapes(*(i.shape for i in indices))
    indices = tuple(jnp.broadcast_to(i, shape).reshape(-1) for i in indices)
    m = math.prod(shape)
    rest = input.shape[k:]
    values = jnp.broadcast_to(values, (*shape, *rest)).reshape((m, *rest))
    key_dtype = _dtypes.key_dtype_for("index_put", math.prod(input.shape[:k]))
    keys = _flat_keys(indices, input.shape[:k], mode, key_dtype)
    return _put_rows(input, keys, values, k, accumulate, mode)


def _mask_error(fn: str, d: int) -> TypeError:
    return TypeError(
        f"{fn}: indices[{d}] is a traced bool mask, whose number of True values (and so the "
        "number of positions written) is not known at trace time. Turn it into integer "
        "indices of a static size: jnp.nonzero(mask, size=n, fill_value=mask.shape) with "
        "mode='drop' (the padding entries then write nothing), and pass values for n "
        "positions; or, for one value everywhere, use jnp.where(mask, value, input)."
    )


def _put_indices(fn: str, input: jax.Array, indices: Any) -> tuple[list[jax.Array], list[Any]]:
    """The index arrays, bool masks turned into their nonzero positions (concrete only)."""
    if not isinstance(indices, tuple | list):
        raise TypeError(
            f"{fn}: indices must be a tuple of index arrays (torch's index_put takes a tuple), "
            f"got {type(indices).__name__}; wrap a single array as (index,)."
        )
    if not indices:
        raise ValueError(f"{fn}: indices is empty; pass at least one index array.")
    if input.ndim == 0:  # torch: before it reads the index, even a 0-d bool mask
        raise _too_many(fn, 0, len(indices))
    arrays: list[jax.Array] = []
    wides: list[Any] = []
    for d, raw in enumerate(indices):
        if raw is None or isinstance(raw, slice):
            raise TypeError(
                f"{fn}: indices[{d}] is {raw!r}; torch's index_put takes only arrays. Index a "
                "later axis by moving it first (jnp.moveaxis), or pass jnp.arange(n) here."
            )
        name = f"indices[{d}]"
        is_bool = (isinstance(raw, jax.Array) and raw.dtype == jnp.bool_) or (
            not isinstance(raw, jax.Array) and np.asarray(raw).dtype == np.bool_
        )
        if is_bool:
            if _checks.is_traced(raw):
                raise _mask_error(fn, d)
            mask = np.asarray(raw)
            at = len(arrays)  # the axes named so far, one per array
            if mask.ndim == 0:
                raise ValueError(
                    f"{fn}: {name} is a 0-d bool mask; pass a mask with the shape of the "
                    "axes it selects."
                )
            want = input.shape[at : at + mask.ndim]
            if mask.shape != want:
                raise ValueError(
                    f"{fn}: the bool mask {name} has shape {mask.shape}, but the input's "
                    f"axes {at}..{at + mask.ndim - 1} it indexes have shape {want}."
                )
            for nz in np.nonzero(mask):
                nz = nz.astype(np.int32 if mask.size < 2**31 else np.int64)
                arrays.append(jnp.asarray(nz))
                wides.append(nz)
            continue
        index, wide = _indexing.as_index(fn, name, raw)
        _indexing.check_index_dtype(fn, index, name)
        if index.dtype == jnp.uint8:
            raise TypeError(
                f"{fn}: {name} is uint8, which torch reads as a (deprecated) bool mask; pass "
                f"{name}.astype(bool) for a mask or {name}.astype(jnp.int32) for indices."
            )
        arrays.append(index)
        wides.append(wide)
    if len(arrays) > input.ndim:
        raise _too_many(fn, input.ndim, len(arrays))
    return arrays, wides


def _too_many(fn: str, ndim: int, count: int) -> IndexError:
    return IndexError(
        f"{fn}: too many indices for an input of {ndim} dimensions (got {count}, counting "
        "each dimension of a bool mask); index at most one axis per input dimension."
    )


def index_put(
    input: ArrayLike,
    indices: Sequence[ArrayLike],
    values: ArrayLike,
    accumulate: bool = False,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Writes (or adds) ``values`` into a copy of ``input`` at ``input[indices]``.

    Args:
      input: array with ``ndim >= k``; any dtype.
      indices: a tuple (or list) of ``k`` integer arrays or bool masks.
      values: array of ``input``'s dtype (or a number) that broadcasts to
        ``B + input.shape[k:]``.
      accumulate: add instead of write. Static.
      mode: out-of-range behaviour, as in :func:`index_add` (``'clip'`` clamps each index
        array into its axis). Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: an index array that is not integer or bool (or is uint8, which torch reads
        as a mask), ``None`` or a slice in ``indices``, a traced bool mask, ``values`` of
        another dtype.
      ValueError: empty ``indices``, index arrays that do not broadcast together, a mask of
        the wrong shape, ``values`` that do not broadcast, an unknown ``mode``.
      IndexError: more index arrays than ``input`` has axes, or (mode None) a concrete
        index value outside ``[-n, n)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import index_put
      >>> x = jnp.zeros((2, 3))
      >>> index_put(x, (jnp.array([0, 1, 1]), jnp.array([2, 0, 0])), jnp.ones(3), True)
      Array([[0., 0., 1.],
             [2., 0., 0.]], dtype=float32)
      >>> index_put(x, (jnp.array([True, False]),), jnp.array([1.0, 2.0, 3.0]))
      Array([[1., 2., 3.],
             [0., 0., 0.]], dtype=float32)

    Mirrors ``torch.index_put(input, indices, values, accumulate=False)``: the ``k`` arrays of
    ``indices`` index ``input``'s first ``k`` axes and broadcast together (NumPy's rules) to
    a shape ``B``; ``values`` broadcasts to ``B + input.shape[k:]``. Negative values in
    ``[-n, 0)`` count from the end. A bool mask indexes as many axes as it has (its shape must
    equal theirs) and stands for its ``nonzero()`` arrays, as in torch; it must be concrete
    (eager): under jit its number of True values is unknown, and a ``TypeError`` says how to
    pass ``jnp.nonzero(mask, size=n, fill_value=mask.shape)`` with ``mode='drop'`` instead.

    With ``accumulate=True`` duplicates add (bf16, fp16 and float8 in float32, rounded once;
    torch's CPU kernel adds in the input's dtype). Without it, duplicates: the **last** one
    in row-major order of ``B`` wins, on every backend (torch's CPU result; torch leaves it
    unspecified), and only the winner gets a gradient (torch gives each the cotangent).
    Gradients are otherwise torch's.
    """
    fn = "index_put"
    input = _checks.as_array(fn, "input", input)
    _checks.one_of(fn, "mode", mode, _indexing.SCATTER_MODES)
    accumulate = _checks.static_bool(fn, "accumulate", accumulate)
    arrays, wides = _put_indices(fn, input, indices)
    k = len(arrays)
    try:
        shape = jnp.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError:
        shapes = ", ".join(str(tuple(a.shape)) for a in arrays)
        raise ValueError(
            f"{fn}: the index arrays do not broadcast together (shapes {shapes}); give them "
            "shapes that broadcast (equal, or 1, on each axis from the right)."
        ) from None
    target = (*shape, *input.shape[k:])
    if _checks.is_scalar(values):
        _indexing.check_scalar_fits(fn, "values", values, input.dtype)
        values = _indexing.scalar_as(values, input.dtype)
    else:
        values = _checks.as_array(fn, "values", values)
        _checks.same_dtype(fn, "values", values, input.dtype)
    try:
        if jnp.broadcast_shapes(values.shape, target) != target:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"{fn}: values of shape {values.shape} cannot be broadcast to the indexed shape "
            f"{target} (the index arrays' broadcast shape, then input's remaining axes)."
        ) from None
    if math.prod(shape) == 0:
        return input
    _dtypes.key_dtype_for(fn, math.prod(input.shape))
    if mode is None:
        for d, wide in enumerate(wides):
            _indexing.check_bounds_eagerly(fn, wide, d, input.shape[d], scatter=True, wrap=True)
    return _index_put_core(input, tuple(arrays), values, k=k, accumulate=accumulate, mode=mode)


def put(
    input: ArrayLike,
    index: ArrayLike,
    source: ArrayLike,
    accumulate: bool = False,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Writes (or adds) ``source`` into a copy of ``input`` at flat positions ``index``.

    Mirrors ``torch.put(input, index, source, accumulate=False)`` (``Tensor.put_``): ``input``
    is read as if flattened (row-major); ``index`` and ``source`` may have any shapes with
    the same number of elements, and negative values in ``[-input.size, 0)`` count from the
    end. Duplicates and low precision as :func:`index_put`: with ``accumulate=True`` they add
    (bf16/fp16/float8 in float32), else the **last** in row-major order of ``index`` wins
    (torch's CPU result) and alone gets a gradient.

    Args:
      input: array of any shape and dtype.
      index: integer array of any shape.
      source: array of ``input``'s dtype with ``index.size`` elements.
      accumulate: add instead of write. Static.
      mode: out-of-range behaviour, as in :func:`index_add`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: non-integer ``index``, ``source`` of another dtype.
      ValueError: ``source.size != index.size``, an unknown ``mode``.
      IndexError: (mode None) a concrete index value outside ``[-input.size, input.size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import put
      >>> put(jnp.zeros((2, 2)), jnp.array([0, -1, 0]), jnp.array([1.0, 2.0, 3.0]), True)
      Array([[4., 0.],
             [0., 2.]], dtype=float32)
    """
    fn = "put"
    input, index, wide, _ = _indexing.operands(fn, input, index, mode, _indexing.SCATTER_MODES)
    accumulate = _checks.static_bool(fn, "accumulate", accumulate)
    source = _checks.as_array(fn, "source", source)
    _checks.same_dtype(fn, "source", source, input.dtype)
    if source.size != index.size:
        raise ValueError(
            f"{fn}: source has {source.size} elements but index has {index.size}; they must "
            "have the same number of elements (their shapes may differ)."
        )
    if index.size == 0:
        return input
    _dtypes.key_dtype_for(fn, input.size)
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, 0, input.size, scatter=True, wrap=True)
    return _put_core(input, index, source, accumulate=accumulate, mode=mode)


@functools.partial(jax.jit, static_argnames=("accumulate", "mode"))
def _put_core(
    input: jax.Array, index: jax.Array, source: jax.Array, *, accumulate: bool, mode: str | None
) -> jax.Array:
    flat = input.reshape(-1)
    index = _indexing.wrap(index.reshape(-1), flat.shape[0])
    if mode == "clip":
        index = _indexing.clamp(index, flat.shape[0])
    out = _engine.scatter(
        flat,
        index,
        source.reshape(-1),
        dim=0,
        op="sum" if accumulate else "set",
        mode=mode,
    )
    return out.reshape(input.shape)


def take(
    input: ArrayLike,
    index: ArrayLike,
    *,
    mode: Literal["clip", "fill", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reads ``input`` as if flattened at ``index``: ``out = input.reshape(-1)[index]``.

    Mirrors ``torch.take(input, index)``: the result has ``index``'s shape; negative values in
    ``[-input.size, 0)`` count from the end. One ``lax.gather``; the gradient is a scatter-add
    (accumulated in float32 for bf16/fp16/float8).

    Args:
      input: array of any shape and dtype.
      index: integer array of any shape.
      mode: what an out-of-range value does: None (default: ``IndexError`` for a concrete
        index; under jit lax's fill value and a checkify report), ``'fill'`` (lax's fill:
        NaN, the integer minimum or ``True``), ``'clip'`` or ``'promise_in_bounds'``. Static.

    Returns:
      Array of ``index``'s shape and ``input``'s dtype.

    Raises:
      TypeError: non-integer ``index``.
      ValueError: an unknown ``mode``.
      IndexError: (mode None) a concrete index value outside ``[-input.size, input.size)``
        (so any value when ``input`` is empty).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import take
      >>> take(jnp.array([[4, 3, 5], [6, 7, 8]]), jnp.array([[0, 2], [5, -1]]))
      Array([[4, 5],
             [8, 8]], dtype=int32)
    """
    fn = "take"
    input, index, wide, _ = _indexing.operands(fn, input, index, mode, _indexing.GATHER_MODES)
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, 0, input.size, wrap=True)
    return _take_core(input, index, mode=mode)


@functools.partial(jax.jit, static_argnames=("mode",))
def _take_core(input: jax.Array, index: jax.Array, *, mode: str | None) -> jax.Array:
    if index.size == 0:
        return jnp.zeros(index.shape, input.dtype)
    flat = input.reshape(-1)
    size = flat.shape[0]
    idx = _indexing.wrap(index.reshape(-1), size)
    if size == 0:  # nothing is in range: every position gets lax's fill value
        flat, idx = jnp.zeros((1,), input.dtype), jnp.full(idx.shape, -1, jnp.int32)
    else:
        idx = _indexing.prepare(idx, size, mode, probe_lossy=True)

    def gather(x: jax.Array, i: jax.Array, m: lax.GatherScatterMode, u: bool) -> jax.Array:
        return _indexing.batched_gather(x, i, 0, m, unique_indices=u)

    out = _permute.take(gather, flat, idx, _indexing.lax_mode(mode))
    return out.reshape(index.shape)
