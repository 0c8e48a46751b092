"""Running a per-axis reduction shard by shard, on meshes of either kind.

A reduction along one axis is independent across every other axis, so it runs per shard with
``jax.shard_map`` and no communication when the arrays are sharded off that axis: on
``jax.make_mesh``'s explicit axes (visible at trace time, also under ``jax.jit``) and on
``Mesh(...)``'s auto axes for eager calls (under the caller's ``jax.jit`` an auto-axis
sharding is not visible at trace time; XLA's partitioner then decides).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax import lax
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from jgather import _checks


def explicit_mesh(*arrays: Any) -> Any:
    """The mesh when an array is sharded over explicit mesh axes, else None."""
    for a in arrays:
        sharding = getattr(jax.typeof(a), "sharding", None)
        mesh = getattr(sharding, "mesh", None)
        if (
            sharding is None
            or mesh is None
            or mesh.empty
            or AxisType.Explicit not in mesh.axis_types
        ):
            continue
        if any(p is not None for p in sharding.spec):
            return mesh
    return None


def spec_of(a: jax.Array) -> tuple[Any, ...]:
    """``a``'s partition spec on an explicit mesh, one entry per axis."""
    spec = tuple(jax.typeof(a).sharding.spec)
    return spec + (None,) * (a.ndim - len(spec))


def auto_layout(a: Any) -> tuple[Any, tuple[Any, ...]] | None:
    """(mesh, spec) of a concrete array sharded over a mesh with auto axes, else None."""
    if _checks.is_traced(a) or not getattr(a, "ndim", 0):
        return None
    sharding = getattr(a, "sharding", None)
    if not isinstance(sharding, NamedSharding) or AxisType.Explicit in sharding.mesh.axis_types:
        return None
    spec = tuple(sharding.spec) + (None,) * (a.ndim - len(sharding.spec))
    if all(p is None for p in spec) or sharding.mesh.size == 1:
        return None
    return sharding.mesh, spec


def layout_of(*arrays: Any) -> tuple[Any, tuple[Any, ...], bool] | None:
    """``(mesh, spec, explicit)`` of the first array sharded over a mesh, else None.

    Explicit axes first (also traced; eagerly the concrete mesh), then the auto axes of a
    concrete array (:func:`auto_layout`). ``None`` entries are skipped.
    """
    for a in arrays:
        if a is not None and explicit_mesh(a) is not None:
            mesh = explicit_mesh(a) if _checks.is_traced(a) else a.sharding.mesh
            return mesh, spec_of(a), True
    for a in arrays:
        if a is not None and (found := auto_layout(a)) is not None:
            return found[0], found[1], False
    return None


def per_shard(
    mesh: Any,
    body: Callable[..., Any],
    arrays: Sequence[jax.Array],
    splittable: Sequence[Sequence[bool]],
    spec: tuple[Any, ...],
    out_splittable: Sequence[bool],
    *,
    explicit: bool,
    restore: bool = True,
) -> Any:
    """``body(*arrays)`` per shard, each array laid out as ``spec`` where it can be split.

    ``splittable[k][d]`` says whether axis ``d`` of ``arrays[k]`` may take ``spec[d]`` (it has
    the full size there and is not the reduced axis); other axes are replicated (a collective,
    but the right answer). A 0-d array is replicated. The result (an array or a tuple of them)
    is laid out by ``out_splittable``, and put back on ``spec`` when ``restore``.
    """

    def layout(ok: Sequence[bool]) -> P:
        return P(*(spec[d] if flag else None for d, flag in enumerate(ok)))

    def place(a: jax.Array, p: P) -> jax.Array:
        if not _checks.is_traced(a):  # eager: move the data itself
            return jax.device_put(a, NamedSharding(mesh, p))
        if explicit:
            return jax.sharding.reshard(a, NamedSharding(mesh, p))
        return lax.with_sharding_constraint(a, NamedSharding(mesh, p))

    in_specs = tuple(layout(ok) for ok in splittable)
    placed = [place(a, p) for a, p in zip(arrays, in_specs, strict=True)]
    out_spec = layout(out_splittable)
    out = jax.shard_map(body, mesh=mesh, in_specs=in_specs, out_specs=out_spec, check_vma=False)(
        *placed
    )
    if not restore:
        return out
    return jax.tree.map(lambda o: place(o, P(*spec)), out)


def per_shard_off_axis(
    fn: Callable[..., Any],
    arrays: Sequence[jax.Array | None],
    dim: int,
    *,
    broadcastable: Sequence[bool] | None = None,
    layout: tuple[Any, tuple[Any, ...]] | None = None,
    restore: bool = False,
) -> Any:
    """``fn(*arrays)``, per shard when the arrays are sharded off axis ``dim``.

    The one per-shard rule of every reduction along ``dim``: each shard reduces its own block
    with no communication. The arrays have equal ranks (or are 0-d, replicated); an axis other
    than ``dim`` is split when the layout shards it and every array has the first array's
    size there, or size 1 where ``broadcastable`` flags the array (its size-1 axes broadcast;
    unflagged, a smaller size is a leading part, as a torch scatter's index, and keeps the
    axis whole). ``broadcastable`` defaults to every array. The layout is the first sharded
    array's on a mesh with explicit axes, else ``layout`` (``(mesh, spec)`` of an auto mesh,
    found eagerly by :func:`auto_layout`) or the first concrete auto-sharded array's.
    ``None`` entries are passed through; without a mesh this is ``fn(*arrays)``. ``restore``
    puts the result back on the whole layout (``dim`` included).
    """
    slots = [k for k, a in enumerate(arrays) if a is not None]
    present = [a for a in arrays if a is not None]
    flags = [True] * len(arrays) if broadcastable is None else list(broadcastable)
    found = layout_of(*present)
    if layout is not None and (found is None or not found[2]):
        found = (layout[0], layout[1], False)
    if found is None:
        return fn(*arrays)
    mesh, spec, explicit = found
    ref = present[0]

    def fits(k: int, a: Any, d: int) -> bool:
        return a.ndim == 0 or a.shape[d] == ref.shape[d] or (flags[k] and a.shape[d] == 1)

    split = [
        d != dim and spec[d] is not None and all(fits(k, arrays[k], d) for k in slots)
        for d in range(ref.ndim)
    ]

    def body(*blocks: jax.Array) -> Any:
        full: list[jax.Array | None] = list(arrays)
        for k, b in zip(slots, blocks, strict=True):
            full[k] = b
        return fn(*full)

    splittable = [
        [ok and a.shape[d] == ref.shape[d] for d, ok in enumerate(split)] if a.ndim else []
        for a in present
    ]
    return per_shard(
        mesh, body, present, splittable, spec, split, explicit=explicit, restore=restore
    )


def replicated(*arrays: Any) -> list[Any]:
    """The arrays replicated over the mesh one of them is sharded on (a collective, but the
    order of torch's sums where the work cannot be split): explicit axes, or auto axes
    eagerly; as they are without one."""
    found = layout_of(*arrays)
    if found is None:
        return list(arrays)
    whole = NamedSharding(found[0], P())
    traced = any(_checks.is_traced(a) for a in arrays if a is not None)
    move = jax.sharding.reshard if found[2] and traced else jax.device_put
    return [None if a is None else move(a, whole) for a in arrays]


def per_shard_of_index(
    fn: Any, index: jax.Array, weight: jax.Array, extra: jax.Array | None, split: int
) -> jax.Array:
    """``fn(index, weight, extra)``, per shard of ``index``'s first ``split`` axes when it is
    sharded over a mesh (explicit axes, or auto axes eagerly): the lookups and bags of
    different examples are independent, so each shard computes its own with the (replicated)
    weight and no communication. Other layouts on an explicit mesh are replicated first (a
    collective, but the right answer); under the caller's ``jax.jit`` an auto-axis layout is
    left to XLA's partitioner."""
    arrays = [a for a in (index, weight, extra) if a is not None]
    found = layout_of(index)
    if found is None or not any(found[1][:split]):
        return fn(*replicated(index, weight, extra))
    mesh, spec, _ = found
    # The output has the split axes, then one of width D (its last).
    out_spec = (*spec[:split], None)
    ok = [d < split for d in range(index.ndim)]

    def body(i: jax.Array, w: jax.Array, *e: jax.Array) -> jax.Array:
        return fn(i, w, e[0] if e else None)

    return per_shard(
        mesh,
        body,
        arrays,
        [ok, [False, False], *([ok] if extra is not None else [])],
        out_spec,
        [True] * split + [False],
        explicit=explicit_mesh(*arrays) is not None,
    )
