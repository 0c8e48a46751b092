"""Batch placement on explicit-axis meshes, shared by every function of the masking family.

On a mesh from ``jax.make_mesh`` (explicit axes, JAX's default) an array's sharding is part of
its type, and ``jax.vmap`` requires every mapped input to be sharded alike along the batch axis.
A user's ``x`` is typically batch-sharded while one key (split inside), ``noise`` or a ``mask``
arrives replicated. ``batch_sharding`` reads the batch placement from the inputs' types at trace
time and ``to_batch_sharding`` reshards the others to it before the ``vmap``: taking the local
rows of a replicated array is a slice on each device, not communication. ``reshape_batch``
reshapes with the batch placement stated, where JAX cannot infer it. On auto-axis meshes
(``Mesh(devices, names)``) and single devices the types carry no sharding, all three are plain
(no-op, or a plain reshape), and the compiler propagates the input shardings as before.
"""

from __future__ import annotations

from typing import Any

import jax
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P


def batch_sharding(*arrays: Any) -> NamedSharding | None:
    """The explicit sharding of the leading (batch) axis of the first array that has one.

    Read from the arrays' types (``jax.typeof``), so it is static under ``jax.jit``. Returns
    ``None`` when no array's batch axis is sharded over explicit mesh axes (auto-axis meshes,
    single devices, replicated inputs): then nothing needs resharding.
    """
    for a in arrays:
        if a is None or not getattr(a, "ndim", 0):
            continue
        sharding = jax.typeof(a).sharding
        spec = getattr(sharding, "spec", None)
        if not spec or spec[0] is None:
            continue
        names = spec[0] if isinstance(spec[0], tuple) else (spec[0],)
        types = dict(zip(sharding.mesh.axis_names, sharding.mesh.axis_types, strict=True))
        if all(types[name] == AxisType.Explicit for name in names):
            return NamedSharding(sharding.mesh, P(spec[0]))
    return None


def to_batch_sharding(a: jax.Array, sharding: NamedSharding | None) -> jax.Array:
    """``a`` resharded so its leading axis is split like ``sharding`` (no-op for ``None``)."""
    if sharding is None:
        return a
    current = getattr(jax.typeof(a).sharding, "spec", None)
    if current and current[0] == sharding.spec[0] and all(s is None for s in current[1:]):
        return a
    spec = P(sharding.spec[0], *([None] * (a.ndim - 1)))
    return jax.sharding.reshard(a, NamedSharding(sharding.mesh, spec))


def reshape_batch(
    a: jax.Array, shape: tuple[int, ...], sharding: NamedSharding | None
) -> jax.Array:
    """``a.reshape(shape)`` with the leading axis split like ``sharding`` (a plain reshape for
    ``None``).

    On an explicit-axis mesh JAX cannot infer the output sharding of a reshape that splits or
    merges the other axes, so it is stated. A reshape that merges the batch with another axis
    ([M, N, ...] -> [M * N, ...]) mixes the shards: XLA moves the rows.
    """
    if sharding is None:
        return a.reshape(shape)
    spec = P(sharding.spec[0], *([None] * (len(shape) - 1)))
    return lax.reshape(a, shape, out_sharding=NamedSharding(sharding.mesh, spec))
