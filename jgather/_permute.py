"""Gathers by unique indices: gradients that are gathers (or non-atomic scatters), not scatter-adds.

The gradient of a gather is a scatter-add of the cotangent at the gathered positions. When the
indices are a permutation, or part of one, every position receives at most one contribution,
and the scatter is a gather in disguise: the cotangent read back by the inverse permutation.
``take`` serves the gathers of ``jgather.gather`` / ``take_along_dim`` / ``index_select``
(their ``unique_indices`` and ``inverse`` options) and every permutation gather of
``jgather.masking``:

* with an ``inverse``, the gather is a ``jax.custom_jvp`` whose tangent is the *transpose* of
  the gather by ``inverse`` (a scatter with ``unique_indices``); reverse mode transposes that
  tangent back, so the gradient program holds one gather by ``inverse`` and no scatter.
  Forward mode (``jax.jvp``) computes the tangent as that scatter; ``jax.vmap`` batches both.
* with ``unique`` and no inverse, the forward gather is marked ``unique_indices``, and JAX's
  own transpose is a scatter-add marked ``unique_indices``, which XLA may lower without
  atomics.

Reduced-precision floats keep the rule of the plain gather (``_dtypes.gather_upcast_transpose``):
the tangent, hence the gradient, is computed in float32 and rounded once, so summing the
gradients of several gathers (``jax.vmap`` over an unbatched operand) adds in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _checks, _dtypes, _indexing

# take(operand, index, mode, unique) -> the gather of ``operand`` at ``index`` along one axis,
# shape-generic along it (the same function reads the cotangent back by the inverse).
Take = Callable[[jax.Array, jax.Array, lax.GatherScatterMode, bool], jax.Array]

_DROP = lax.GatherScatterMode.FILL_OR_DROP


def take(
    take_fn: Take,
    operand: jax.Array,
    index: jax.Array,
    mode: lax.GatherScatterMode,
    *,
    unique: bool = False,
    inverse: jax.Array | None = None,
) -> jax.Array:
    """``take_fn(operand, index, mode, unique)`` with the gradient that the promise allows.

    ``inverse``: for each position ``i`` of ``operand`` along the axis, the output position
    ``k`` with ``index[k] == i``, or any value outside ``[0, K)`` where no output reads ``i``.
    The gradient is then ``take_fn(cotangent, inverse, FILL_OR_DROP)`` (zero at those), so
    output positions that no ``inverse`` entry names contribute nothing to it.
    """
    inexact = jnp.issubdtype(operand.dtype, jnp.inexact)
    if inverse is None or not inexact:
        return _dtypes.gather_upcast_transpose(
            lambda x, i: take_fn(x, i, mode, unique and inexact), operand, index
        )
    acc = _dtypes.accumulation_dtype(operand.dtype)

    @jax.custom_jvp
    def permuted(x: jax.Array, idx: jax.Array, inv: jax.Array) -> jax.Array:
        return take_fn(x, idx, mode, False)

    @permuted.defjvp
    def permuted_jvp(primals: Any, tangents: Any) -> tuple[jax.Array, jax.Array]:
        x, idx, inv = primals
        out = take_fn(x, idx, mode, False)
        back = lambda c: take_fn(c, inv, _DROP, True)  # [out] -> [x]: the gradient
        (tangent,) = jax.linear_transpose(back, out.astype(acc))(tangents[0].astype(acc))
        return out, tangent.astype(x.dtype)

    return permuted(operand, index, inverse)


# ----------------------------------------------------------------------------------------------
# Eager checks of the promise (concrete indices only).


def check_unique(
    fn: str, index: Any, axis: int, name: str = "index", problem: str | None = None
) -> None:
    """Raises ``ValueError`` when a concrete ``index`` repeats a value along ``axis``.

    ``problem`` replaces the message's account of the promise and its fix.
    """
    values = np.asarray(index)
    if values.ndim == 0 or values.shape[axis] < 2:
        return
    ordered = np.sort(values, axis=axis)
    repeats = np.diff(ordered, axis=axis) == 0
    if repeats.any():
        where = np.argwhere(repeats)[0]
        value = ordered[tuple(where)]
        problem = problem or (
            f"unique_indices=True promises distinct indices along dim {axis}; pass "
            "unique_indices=False (the gradient then adds the repeats), or de-duplicate it"
        )
        raise ValueError(f"{fn}: {name} repeats the value {int(value)}: {problem}.")


def check_inverse(fn: str, index: Any, inverse: Any, axis: int, size: int) -> None:
    """Raises ``ValueError`` unless a concrete ``inverse`` is ``index``'s inverse along ``axis``.

    ``index`` [.., K, ..] holds positions in ``[0, size)``; ``inverse`` [.., size, ..] must map
    each position read by ``index[k]`` back to ``k`` and every other position outside
    ``[0, K)``.
    """
    idx, inv = np.asarray(index).astype(np.int64), np.asarray(inverse).astype(np.int64)
    if idx.ndim == 0 or idx.size == 0:
        return
    k = idx.shape[axis]
    ok_idx = (idx >= 0) & (idx < size)
    back = np.take_along_axis(inv, np.clip(idx, 0, size - 1), axis)
    slots = np.arange(k).reshape([-1 if d == axis else 1 for d in range(idx.ndim)])
    named = (inv >= 0) & (inv < k)
    forth = np.take_along_axis(idx, np.clip(inv, 0, k - 1), axis)
    positions = np.arange(inv.shape[axis]).reshape(
        [-1 if d == axis else 1 for d in range(inv.ndim)]
    )
    if np.any(ok_idx & (back != slots)) or np.any(named & (forth != positions)):
        raise ValueError(
            f"{fn}: inverse is not the inverse of index along dim {axis}: it must hold, at "
            f"each position i read by index[k], the slot k (and a value outside [0, {k}) at "
            "positions that index does not read); compute it with jnp.argsort(index) for a "
            "full permutation, or leave inverse=None."
        )


def check_promise(
    fn: str,
    unique_indices: Any,
    inverse: Any,
    wide: Any,
    inverse_shape: tuple[int, ...],
    dim: int,
    size: int,
) -> tuple[bool, jax.Array | None]:
    """Checks the ``unique_indices`` / ``inverse`` options; returns ``(unique, inverse)``.

    Concrete indices are checked here (distinct along ``dim``; ``inverse`` their inverse); a
    traced index is taken at its word.
    """
    unique = _checks.static_bool(fn, "unique_indices", unique_indices)
    if inverse is None:
        if unique and not _checks.is_traced(wide):
            check_unique(fn, wide, dim)
        return unique, None
    inverse, inverse_wide = _indexing.as_index(fn, "inverse", inverse)
    _indexing.check_index_dtype(fn, inverse, "inverse")
    if tuple(inverse.shape) != tuple(inverse_shape):
        raise ValueError(
            f"{fn}: inverse must have shape {tuple(inverse_shape)} (the gathered input's shape: "
            f"one slot per position along dim {dim}), got {tuple(inverse.shape)}."
        )
    if not _checks.is_traced(wide) and not _checks.is_traced(inverse_wide):
        check_inverse(fn, wide, inverse_wide, dim, size)
    return True, inverse
