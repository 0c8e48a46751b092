"""The lax building blocks of ``jgather.segment``: one scatter into segments, one gather back.

Every reduction here is a composition of two primitives on an *aligned* index (torch_scatter's
``broadcast`` before its expand: ``src.ndim`` axes, each of ``src``'s size or 1):

* :func:`scatter_into` -- ``lax.scatter_add/mul/max/min`` of ``updates`` into ``operand``
  along ``dim``. When the index varies only along ``dim`` (a 1-D edge index scattering
  ``[E, F]`` features, the common case) it is one scatter whose windows are the other axes of
  ``src`` itself: no transpose, no expanded index, no iota grid, ``indices_are_sorted`` passed
  through. Otherwise the index's own axes become a flat row key and the broadcast axes stay a
  window (a transpose in and out).
* :func:`gather_back` -- each ``src`` element reads its segment's value (``jnp.take`` /
  ``take_along_axis``, clamped; callers mask dropped entries so their gradients are zero).

Determinism: nothing here depends on the order in which colliding updates are applied, except
the floating-point rounding of sums inside XLA's scatter. On CPU XLA applies a scatter's updates
in index order (a serial loop); on GPU/TPU floating-point ``scatter_add`` ordering is XLA's
choice (with ``--xla_gpu_deterministic_ops`` it is fixed). max/min/arg-min and integer sums
are exact in any order.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _indexing as ix

_DROP = lax.GatherScatterMode.FILL_OR_DROP
_PROMISE = lax.GatherScatterMode.PROMISE_IN_BOUNDS


def acc_dtype(dtype: Any) -> np.dtype:
    """The accumulation dtype: float32 for float16/bfloat16 (rounded once at the end)."""
    dtype = jnp.dtype(dtype)
    if dtype in (jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16)):
        return jnp.dtype(jnp.float32)
    return dtype


def along_dim(idx: jax.Array, n: int, dim: int) -> jax.Array:
    """``idx`` broadcast to length ``n`` on ``dim`` (torch_scatter expands it there too)."""
    if idx.shape[dim] == n:
        return idx
    return jnp.broadcast_to(idx, (*idx.shape[:dim], n, *idx.shape[dim + 1 :]))


def windowed(idx: jax.Array, dim: int) -> bool:
    """True when the index varies only along ``dim`` (one scatter with whole windows)."""
    return all(s == 1 for d, s in enumerate(idx.shape) if d != dim)


def in_range(idx: jax.Array, size: int, mode: str | None) -> jax.Array | None:
    """Where ``idx`` hits a segment; None when every entry does (clip / promise)."""
    if mode in ("clip", "promise_in_bounds"):
        return None
    return (idx >= 0) & (idx < size)


def prepare_index(idx: jax.Array, size: int, mode: str | None) -> jax.Array:
    if mode == "clip":
        return ix.clamp(idx, size)
    if mode is None and size > 0:
        _probe(idx, size)
    return idx


def with_trash(idx: jax.Array, size: int, mode: str | None) -> tuple[jax.Array, int, bool]:
    """Routes out-of-range entries to one extra segment ``size`` (for modes that drop them).

    Returns ``(idx, size, trash)``: with ``trash`` the index is in ``[0, size + 1)`` and the
    callers work on ``size + 1`` segments, neutralise the last one on per-segment buffers
    (cheap: ``[size + 1, ...]``) and slice it off. That replaces fill-mode gathers and masks
    over the ``[E, ...]`` values, which XLA's CPU backend runs several times slower.
    """
    if mode in ("clip", "promise_in_bounds"):
        return idx, size, False
    return jnp.where((idx >= 0) & (idx < size), idx, size).astype(idx.dtype), size + 1, True


def set_segment(values: jax.Array, dim: int, position: int, value: Any) -> jax.Array:
    """``values`` with segment ``position`` (along ``dim``) set to ``value``."""
    at = lax.broadcasted_iota(
        jnp.int32, (1,) * dim + (values.shape[dim],) + (1,) * (values.ndim - dim - 1), dim
    )
    return jnp.where(at == position, jnp.asarray(value, values.dtype), values)


def drop_segment(values: jax.Array, dim: int) -> jax.Array:
    """``values`` without its last segment along ``dim``."""
    return lax.slice_in_dim(values, 0, values.shape[dim] - 1, axis=dim)


def _probe(idx: jax.Array, size: int) -> None:
    """An unused gather of ``idx`` from a dummy ``[size]`` array (XLA removes it); it lets
    ``checkify.index_checks`` report an out-of-range value under jit with mode=None."""
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(), collapsed_slice_dims=(0,), start_index_map=(0,)
    )
    lax.gather(jnp.zeros((size,), jnp.bool_), idx[..., None], dnums, (1,), mode=_DROP)


def _key_dtype(n: int) -> Any:
    if n < np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"jgather.segment: the output has {n} rows, more than int32 can address; enable "
            "64-bit indices with jax.config.update('jax_enable_x64', True)."
        )
    return jnp.int64


def scatter_into(
    kind: str,
    operand: jax.Array,
    updates: jax.Array,
    idx: jax.Array,
    dim: int,
    mode: str | None,
    *,
    sorted: bool = False,
) -> jax.Array:
    """``operand[..., idx[..., e, ...], ...] <kind>= updates[..., e, ...]`` along ``dim``.

    ``idx`` is aligned (``updates.ndim`` axes, each ``updates``' size or 1) and already
    clamped for mode 'clip'. ``operand`` has ``updates``' shape except on ``dim``.
    """
    n = updates.ndim
    size = operand.shape[dim]
    if updates.size == 0 or operand.size == 0:
        return operand
    idx = along_dim(idx, updates.shape[dim], dim)
    lmode = _PROMISE if mode in ("clip", "promise_in_bounds") else _DROP
    scatter = ix.SCATTERS[kind]
    if windowed(idx, dim):
        dnums = lax.ScatterDimensionNumbers(
            update_window_dims=tuple(d for d in range(n) if d != dim),
            inserted_window_dims=(dim,),
            scatter_dims_to_operand_dims=(dim,),
        )
        keys = idx.reshape(-1, 1)
        return scatter(operand, keys, updates, dnums, indices_are_sorted=sorted, mode=lmode)
    # General: the index's own axes (dim and every axis where it is not broadcast) become one
    # flat row key; the broadcast axes stay a window.
    keyed = [d for d in range(n) if d == dim or idx.shape[d] != 1]
    window = [d for d in range(n) if d not in keyed]
    perm = keyed + window
    rows = int(np.prod([operand.shape[d] for d in keyed], dtype=np.int64))
    key_dtype = _key_dtype(rows)
    key = jnp.zeros(idx.shape, key_dtype)
    stride = 1
    for d in reversed(keyed):
        coord = idx.astype(key_dtype) if d == dim else lax.broadcasted_iota(key_dtype, idx.shape, d)
        key = key + coord * stride
        stride *= operand.shape[d]
    if lmode == _DROP:  # a flat key can alias another row: drop out-of-range values by hand
        key = jnp.where((idx >= 0) & (idx < size), key, rows)
    key = jnp.transpose(key, perm).reshape(-1, 1)
    up = jnp.transpose(updates, perm)
    width = int(np.prod([updates.shape[d] for d in window], dtype=np.int64))
    up = up.reshape(key.shape[0], width)
    op_t = jnp.transpose(operand, perm)
    op = op_t.reshape(rows, width)
    dnums = lax.ScatterDimensionNumbers((1,), (0,), (0,))
    res = scatter(op, key, up, dnums, mode=lmode).reshape(op_t.shape)
    return jnp.transpose(res, tuple(int(d) for d in np.argsort(perm)))


def gather_back(
    values: jax.Array, idx: jax.Array, dim: int, mode: str | None = None, fill: Any = None
) -> jax.Array:
    """``values[..., idx[..., e, ...], ...]`` along ``dim`` for every aligned index entry.

    An out-of-range entry reads ``fill`` when one is given and the mode can leave such entries
    (None / 'drop'); otherwise a clamped position (the cheapest gather). Callers choose a
    fill that neutralises dropped entries without a mask (``+inf`` for a max shift, ``1``
    for a normaliser), or rely on the scatters dropping them.
    """
    kw: dict[str, Any]
    if fill is None or mode in ("clip", "promise_in_bounds"):
        kw = dict(mode="clip")
    else:
        kw = dict(mode="fill", fill_value=fill)
    if windowed(idx, dim):
        return jnp.take(values, idx.reshape(-1), axis=dim, **kw)
    return jnp.take_along_axis(values, idx, axis=dim, **kw)


def count(
    idx: jax.Array,
    dim: int,
    size: int,
    n: int,
    dtype: Any,
    mode: str | None,
    *,
    sorted: bool = False,
) -> jax.Array:
    """How many entries each segment receives: the index's shape with ``dim`` -> ``size``
    (broadcast axes stay 1), in ``dtype``."""
    idx = along_dim(idx, n, dim)
    shape = (*idx.shape[:dim], size, *idx.shape[dim + 1 :])
    ones = jnp.ones(idx.shape, dtype)
    return scatter_into("add", jnp.zeros(shape, dtype), ones, idx, dim, mode, sorted=sorted)


def out_shape(src_shape: tuple[int, ...], dim: int, size: int) -> tuple[int, ...]:
    return (*src_shape[:dim], size, *src_shape[dim + 1 :])


def lowest(dtype: Any, kind: str) -> Any:
    """The identity of max ('max') or min ('min') in ``dtype``: -inf/inf or the int limits."""
    if jnp.issubdtype(dtype, jnp.inexact):
        return -np.inf if kind == "max" else np.inf
    info = jnp.iinfo(dtype)
    return info.min if kind == "max" else info.max


def same(a: jax.Array, b: jax.Array) -> jax.Array:
    """Elementwise equality in which NaN equals NaN."""
    eq = a == b
    if jnp.issubdtype(a.dtype, jnp.inexact):
        eq = eq | (jnp.isnan(a) & jnp.isnan(b))
    return eq
