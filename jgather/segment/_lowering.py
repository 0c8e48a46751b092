"""torch_scatter's index alignment on top of the scatter engine (``jgather._engine``).

An *aligned* index has ``src.ndim`` axes, each of ``src``'s size or 1 (torch_scatter's
``broadcast`` before its expand). :func:`scatter_into` reduces along ``dim`` with it,
:func:`gather_back` reads each entry's segment value (see "Internals" in
``docs/development.md``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jgather import _batching, _checks, _engine, _indexing, _sharding


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


def call(
    core: Callable[..., Any],
    arrays: Sequence[jax.Array | None],
    dim: int,
    *,
    index: int = 1,
    checked: int = 0,
    **statics: Any,
) -> Any:
    """``core(*arrays, dim=dim, **statics)`` as every ``jgather.segment`` function runs it.

    ``arrays[index]`` is the aligned index (its size-1 axes broadcast); ``None`` entries
    (an absent ``out``) are passed through. Around the jitted core: the checkify probe of the
    caller's index against ``checked`` segments (when ``statics["mode"]`` is None and the
    index is traced), the folding batching rule
    (:func:`jgather._batching.fold_batch`) and per-shard placement on meshes
    (:func:`jgather._sharding.per_shard_off_axis`).
    """
    idx = arrays[index]
    probed = statics.get("mode", "drop") is None and checked > 0
    if probed and idx is not None and idx.size and _checks.is_traced(idx):
        _indexing.probe(idx, checked)
    slots = tuple(k for k, a in enumerate(arrays) if a is not None)
    present = [a for a in arrays if a is not None]
    if not any(_checks.is_traced(a) for a in present):
        # Concrete arrays: no vmap, grad or checkify is watching, so the jitted core runs
        # as it is (the batching wrappers would cost more than the op on small inputs).
        def plain(*xs: jax.Array) -> Any:
            return core(*_refill(len(arrays), slots, xs), dim=dim, **statics)

        return _sharding.per_shard_off_axis(plain, present, dim)
    folded = _folded(core, dim, len(arrays), slots, index, tuple(sorted(statics.items())))
    return _sharding.per_shard_off_axis(folded, present, dim)


def _refill(n: int, slots: tuple[int, ...], xs: Sequence[jax.Array]) -> list[jax.Array | None]:
    """``n`` arguments with ``xs`` at ``slots`` and None elsewhere."""
    full: list[jax.Array | None] = [None] * n
    for k, x in zip(slots, xs, strict=True):
        full[k] = x
    return full


@functools.cache
def _folded(
    core: Callable[..., Any],
    dim: int,
    n: int,
    slots: tuple[int, ...],
    index: int,
    statics: tuple[tuple[str, Any], ...],
) -> Callable[..., Any]:
    """The core for fixed static arguments, batched by folding (one wrapper per signature)."""
    kwargs = dict(statics)

    def make(d: int) -> Callable[..., Any]:
        return lambda *xs: core(*_refill(n, slots, xs), dim=d, **kwargs)

    return _batching.fold_batch(make, dim, [k == index for k in slots])


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


# torch_scatter's reductions as the engine names them.
_OPS = {"add": "sum", "mul": "prod", "max": "amax", "min": "amin"}


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

    ``idx`` is aligned (``updates.ndim`` axes, each ``updates``' size or 1) and prepared
    (:func:`jgather._indexing.prepare`). ``operand`` has ``updates``' shape except on
    ``dim``. ``kind`` is 'add', 'mul', 'max' or 'min'. The request goes to the scatter
    engine (:func:`jgather._engine.batchable`): its strategies, its derivative rules
    (torch's product rule for 'mul') and its accumulation of reduced-precision sums.
    """
    if updates.size == 0 or operand.size == 0:
        return operand
    idx = along_dim(idx, updates.shape[dim], dim)
    clipped = "clip" if mode in ("clip", "promise_in_bounds") else "drop"
    return _engine.batchable(dim, clipped, _OPS[kind], True, sorted)(operand, idx, updates)


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
    if values.shape[dim] == 0:  # no segments: every entry is out of range
        whole = windowed(idx, dim)
        shape = tuple(
            idx.shape[d]
            if d == dim
            else values.shape[d]
            if whole
            else max(values.shape[d], idx.shape[d])
            for d in range(values.ndim)
        )
        return jnp.full(shape, 0 if fill is None else fill, values.dtype)
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


def same(a: jax.Array, b: jax.Array) -> jax.Array:
    """Elementwise equality in which NaN equals NaN."""
    eq = a == b
    if jnp.issubdtype(a.dtype, jnp.inexact):
        eq = eq | (jnp.isnan(a) & jnp.isnan(b))
    return eq
