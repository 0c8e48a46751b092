"""Argument checks shared by every ``jgather.segment`` function (trace time, static shapes).

One rule for exception types, as in the rest of jgather: ``TypeError`` for a wrong type
(non-integer index, integer ``src`` where a float is needed is torch_scatter's ``ValueError``
and stays one), ``ValueError`` for a wrong value or shape, ``IndexError`` for an out-of-range
``dim`` or index value. Every message names the function, says what came and what to do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks, _indexing


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a jitted core needs: canonical arrays and the static facts about them."""

    src: jax.Array
    index: jax.Array  # aligned: src.ndim dims, each 1 or src's size (torch_scatter broadcast)
    out: jax.Array | None
    dim: int
    dim_size: int


def as_src(fn: str, src: Any, *, floating: bool = False) -> jax.Array:
    src = _checks.as_array(fn, "src", src)
    if src.ndim == 0:
        raise ValueError(
            f"{fn}: src is 0-dimensional; torch_scatter reduces along an axis of src. Pass "
            "src with at least one dimension (e.g. src[None])."
        )
    if src.dtype == jnp.bool_:
        raise TypeError(
            f"{fn}: src has dtype bool; cast it to an integer or float dtype first "
            "(e.g. src.astype(jnp.int32))."
        )
    if floating and not jnp.issubdtype(src.dtype, jnp.floating):
        # torch_scatter raises ValueError here ("can only be computed over tensors with
        # floating point data types"); jgather keeps its exception type.
        raise ValueError(
            f"{fn}: can only be computed over floating point src (as torch_scatter), got "
            f"{src.dtype}; cast it with src.astype(jnp.float32)."
        )
    return src


def as_index(fn: str, index: Any, name: str = "index") -> tuple[jax.Array, Any]:
    """The index as an integer JAX array, and its values at full width for the eager checks
    (:func:`jgather._indexing.as_index`)."""
    arr, wide = _indexing.as_index(fn, name, index)
    _indexing.check_index_dtype(fn, arr, name)
    return _indexing.widen_index(arr), wide


def align(fn: str, index: jax.Array, src_shape: tuple[int, ...], dim: int) -> jax.Array:
    """torch_scatter's ``broadcast(index, src, dim)`` without the final expand.

    A 1-D index is lined up with ``dim`` (leading size-1 axes added); then trailing size-1 axes
    are added until the ranks match. Every axis must then equal ``src``'s or be 1.
    """
    n = len(src_shape)
    shape = index.shape
    if index.ndim > n:
        raise ValueError(
            f"{fn}: index has {index.ndim} dimensions (shape {shape}) but src only {n} (shape "
            f"{src_shape}); index may have at most src's rank."
        )
    if index.ndim == 1:
        shape = (1,) * dim + shape
    shape = shape + (1,) * (n - len(shape))  # (a 1-D index has dim + 1 <= n axes here)
    for d, (i, s) in enumerate(zip(shape, src_shape, strict=True)):
        if i not in (1, s):
            hint = ""
            if index.ndim == 1 and dim == n - 1 and n > 1 and index.shape[0] == src_shape[0]:
                hint = (
                    " A 1-D index of length src.shape[0] reduces rows: pass dim=0 (the default "
                    "dim=-1 lines it up with the last axis)."
                )
            raise ValueError(
                f"{fn}: index of shape {index.shape}, lined up with dim {dim} as {shape}, does "
                f"not broadcast to src shape {src_shape} (axis {d}: {i} vs {s}); torch_scatter's "
                f"rule: a 1-D index is aligned with dim, otherwise with the leading axes, and "
                f"each axis must equal src's or be 1.{hint}"
            )
    return index.reshape(shape)


def check_out(fn: str, out: Any, src: jax.Array, dim: int) -> jax.Array:
    out = _checks.as_array(fn, "out", out)
    if out.dtype != src.dtype:
        raise TypeError(
            f"{fn}: out has dtype {out.dtype} but src {src.dtype}; they must match (cast out "
            f"with out.astype({src.dtype}))."
        )
    want = src.shape[:dim] + src.shape[dim + 1 :]
    got = out.shape[:dim] + out.shape[dim + 1 :] if out.ndim == src.ndim else None
    if got != want:
        raise ValueError(
            f"{fn}: out has shape {out.shape} but src {src.shape}; out must have src's shape "
            f"on every axis except dim {dim}."
        )
    return out


def resolve_dim_size(fn: str, wide: Any, dim_size: Any, out: jax.Array | None, dim: int) -> int:
    """``out.shape[dim]``, else ``dim_size``, else ``index.max() + 1`` read eagerly from the
    index's full-width values ``wide``."""
    if dim_size is not None:
        dim_size = _checks.static_int(fn, "dim_size", dim_size, minimum=0)
    if out is not None:
        if dim_size is not None and dim_size != out.shape[dim]:
            raise ValueError(
                f"{fn}: dim_size={dim_size} but out.shape[{dim}] = {out.shape[dim]}; pass one "
                "of them (out fixes the size)."
            )
        return int(out.shape[dim])
    if dim_size is not None:
        return int(dim_size)
    if _checks.is_traced(wide):
        raise ValueError(
            f"{fn}: dim_size=None needs index.max() + 1, but index is traced (under jax.jit, "
            "jax.vmap or grad) so its values are unknown at trace time. Pass dim_size=<int> "
            "(the number of segments, e.g. nodes; it is static), or out=."
        )
    values = np.asarray(wide)
    if values.size == 0:
        return 0
    size = max(int(values.max()) + 1, 0)
    if size > np.iinfo(np.int32).max and not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{fn}: index.max() + 1 = {size} segments is more than JAX can address with "
            "32-bit indices; pass dim_size=<int> for the real number of segments (larger "
            "values are then out of range), or enable x64."
        )
    return size


def check_bounds(fn: str, wide: Any, dim: int, dim_size: int, mode: Any) -> None:
    """An eager ``IndexError`` for a concrete index (read at full width) with a value outside
    ``[0, dim_size)``, when ``mode`` is None."""
    if mode is None:
        _indexing.check_bounds_eagerly(fn, wide, dim, dim_size, segments=True)


def prepare(
    fn: str,
    src: Any,
    index: Any,
    dim: Any,
    out: Any,
    dim_size: Any,
    mode: Any,
    *,
    floating: bool = False,
) -> Plan:
    """The shared checks of the scatter family; returns the canonical :class:`Plan`."""
    src = as_src(fn, src, floating=floating)
    index, wide = as_index(fn, index)
    dim = _indexing.canonical_dim(fn, dim, src.ndim)
    _checks.one_of(fn, "mode", mode, _indexing.SCATTER_MODES)
    aligned = align(fn, index, src.shape, dim)
    if out is not None:
        out = check_out(fn, out, src, dim)
    size = resolve_dim_size(fn, wide, dim_size, out, dim)
    check_bounds(fn, wide, dim, size, mode)
    return Plan(src, aligned, out, dim, size)
