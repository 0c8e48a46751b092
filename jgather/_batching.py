"""Batching by folding: ``jax.vmap`` of a reduction along one axis as one more leading axis.

jax 0.10's ``checkify`` cannot read scatters with batching dimensions (what ``vmap``'s scatter
rule makes), so reductions whose other axes broadcast are batched by adding the batch as a
new leading axis and reducing along ``dim + 1`` instead, with derivatives from the JVP of the
unbatched function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _sharding


def fold_batch(
    make: Callable[[int], Callable[..., Any]],
    dim: int,
    broadcastable: Sequence[bool],
    *,
    jvp: Callable[[int], Callable[..., Any]] | None = None,
) -> Callable[..., Any]:
    """``make(dim)``, batched under ``jax.vmap`` by folding the batch axis into its arrays.

    ``make(d)`` returns a function of equal-rank arrays that reduces along axis ``d`` and
    treats every other axis as independent (broadcast where an array has size 1 there, for
    the arrays flagged ``broadcastable``; a smaller size in an unflagged array is a leading
    part). Under ``vmap`` an unbatched broadcastable array gets a leading axis of size 1, any
    other unbatched array is broadcast to the batch, and ``make(dim + 1)`` runs on the result
    (nested ``vmap`` folds once per level), per shard on a mesh
    (:func:`jgather._sharding.per_shard_off_axis`). Derivatives are the JVP of ``make(dim)``
    itself, only for the arguments with a non-zero tangent, or ``jvp(dim)``'s rule when given:
    a function of ``(primals, tangents)`` (tangents may be ``SymbolicZero``) returning
    ``(out, tangent)``.
    """
    impl = make(dim)
    flags = tuple(broadcastable)

    @jax.custom_batching.custom_vmap
    def folded(*arrays: jax.Array) -> Any:
        return impl(*arrays)

    @folded.def_vmap
    def rule(axis_size: int, in_batched: Sequence[bool], *arrays: jax.Array) -> tuple[Any, Any]:
        batched = [
            a if b else (a[None] if bc else jnp.broadcast_to(a, (axis_size, *a.shape)))
            for a, b, bc in zip(arrays, in_batched, flags, strict=True)
        ]
        # A batch sharded on a mesh (explicit axes) reduces per shard, as unbatched calls do.
        inner = fold_batch(make, dim + 1, flags, jvp=jvp)
        out = _sharding.per_shard_off_axis(inner, batched, dim + 1, broadcastable=flags)
        return out, jax.tree.map(lambda _: True, out)

    @jax.custom_jvp
    def fn(*arrays: jax.Array) -> Any:
        return folded(*arrays)

    def fn_jvp(primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        live = [
            k
            for k, t in enumerate(tangents)
            if not isinstance(t, jax.custom_derivatives.SymbolicZero)
        ]
        if not live:
            out = impl(*primals)
            return out, jax.tree.map(_zero_tangent, out)
        if jvp is not None:
            return jvp(dim)(primals, tangents)

        def on_live(*xs: jax.Array) -> Any:
            full = list(primals)
            for k, x in zip(live, xs, strict=True):
                full[k] = x
            return impl(*full)

        return jax.jvp(on_live, tuple(primals[k] for k in live), tuple(tangents[k] for k in live))

    fn.defjvp(fn_jvp, symbolic_zeros=True)
    return fn


def _zero_tangent(x: jax.Array) -> Any:
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)  # integer outputs (argmax) have float0 tangents
