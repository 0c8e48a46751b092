"""Dtype rules of every reduction: accumulation dtype, identities, key dtype, integer means.

Used by the torch ops and by ``jgather.segment`` alike (see "Internals" in
``docs/development.md``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def accumulation_dtype(dtype: Any) -> np.dtype:
    """float32 for floats narrower than 32 bits (bf16, fp16, every float8), else ``dtype``.

    Sums of such values accumulate in float32 and are rounded once at the end, as torch does
    on CPU: a bf16 running sum stops growing at 256 when adding ones.
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return np.dtype(np.float32)
    return dtype


def identity(dtype: Any, op: str) -> Any:
    """The identity of ``op`` ('sum', 'prod', 'amax', 'amin') representable in ``dtype``.

    For 'amax'/'amin' that is -inf/+inf where the dtype has infinities; float8 types without
    them (e4m3fn, the fnuz family) use their finite lowest/highest value instead (an inf
    would become NaN there). Integers use their limits; bool ``False`` for 'amax'.
    """
    dtype = np.dtype(dtype)
    if op in ("sum", "prod"):
        return 0 if op == "sum" else 1
    if dtype == np.bool_:
        return op == "amin"
    if jnp.issubdtype(dtype, jnp.inexact):
        inf = np.inf if op == "amin" else -np.inf
        if np.isinf(np.asarray(inf).astype(dtype)):
            return inf
        finfo = jnp.finfo(dtype)
        return finfo.max if op == "amin" else finfo.min
    info = jnp.iinfo(dtype)
    return info.min if op == "amax" else info.max


def key_dtype_for(fn: str, n: Any) -> Any:
    """int32 keys for regions of up to 2**31 - 2 elements, else int64 (which needs x64).

    A symbolic size (``jax.export`` with a symbolic batch) is unbounded: int64 keys when
    ``jax_enable_x64`` is on; with it off, int32 keys, which address up to 2**31 - 2 elements.

    Raises:
      ValueError: the region needs 64-bit keys and ``jax_enable_x64`` is off.
    """
    if is_symbolic(n):
        return jnp.int64 if jax.config.read("jax_enable_x64") else jnp.int32
    if n < np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.read("jax_enable_x64"):
        raise ValueError(
            f"{fn}: the scattered region has {n} elements, more than int32 can address; "
            "enable 64-bit indices with jax.config.update('jax_enable_x64', True)."
        )
    return jnp.int64


def is_symbolic(*dims: Any) -> bool:
    """Whether any of ``dims`` is a symbolic dimension (a shape-polymorphic export)."""
    return any(jax.export.is_symbolic_dim(d) for d in dims)


def check_ordered(fn: str, dtype: Any, reduce: str) -> None:
    """A ``TypeError`` for a max/min reduction of complex values, which have no order.

    torch raises for complex 'amax'/'amin' ("not implemented for 'ComplexFloat'"), and
    torch_scatter's max/min kernels do not take complex dtypes; ``lax.scatter_max`` would
    order them lexicographically, which is no answer either.
    """
    if jnp.issubdtype(np.dtype(dtype), jnp.complexfloating):
        raise TypeError(
            f"{fn}: reduce={reduce!r} needs ordered values, but the values are complex "
            f"({np.dtype(dtype)}), which have no order (torch raises too); reduce their real "
            "and imaginary parts separately (jnp.real / jnp.imag), or their magnitudes "
            "(jnp.abs)."
        )


def mean(total: jax.Array, count: jax.Array, dtype: Any, *, kernel: bool = False) -> jax.Array:
    """``total / count`` in ``dtype``, with the division of torch and torch_scatter.

    Real floats divide (in the accumulation dtype, rounded once). Complex values are multiplied
    by the real reciprocal of ``count``, as torch's complex division by a real-valued complex
    count computes it (``total / count`` differs from it in the last bit). Integers divide in
    the dtype's own signedness at 32 or 64 bits (a uint32 sum above 2**31 is not read as
    negative), rounding towards -inf (torch's ``scatter_reduce`` and torch_scatter's
    ``scatter_mean``). ``count`` must be positive.

    ``kernel=True``: the ``val / (scalar_t)count`` of torch_scatter's ``segment_csr`` /
    ``segment_coo`` CPU kernels, in ``dtype`` itself: integers truncate towards zero (C++
    division), and float16/bfloat16 round the sum and the count to ``dtype`` before dividing
    (in float32, rounded again).
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        # c10::complex's division by c + 0i: rat = 0 / c, scale = 1 / c,
        # ((a + b * rat) * scale, (b - a * rat) * scale).
        c = jnp.real(count).astype(jnp.finfo(dtype).dtype)
        rat, scale = 0 / c, 1 / c
        a, b = total.real, total.imag
        return jax.lax.complex((a + b * rat) * scale, (b - a * rat) * scale).astype(dtype)
    if jnp.issubdtype(dtype, jnp.inexact):
        acc = accumulation_dtype(dtype)
        if kernel:  # c10::Half / c10::BFloat16 division: float32 of the rounded operands
            total, count = total.astype(dtype), count.astype(dtype)
        # A count broadcast in the division lets XLA divide by multiplying with its
        # reciprocal, which differs in the last bit; the barrier keeps the true division.
        count = jax.lax.optimization_barrier(jnp.broadcast_to(count.astype(acc), total.shape))
        return (total.astype(acc) / count).astype(dtype)
    signed = jnp.issubdtype(dtype, jnp.signedinteger)
    bits = 64 if dtype.itemsize == 8 else 32
    wide = jnp.dtype(f"{'int' if signed else 'uint'}{bits}")
    total, count = total.astype(wide), count.astype(wide)
    if kernel:
        return jax.lax.div(total, count).astype(dtype)
    return jnp.floor_divide(total, count).astype(dtype)


def gather_upcast_transpose(gather_fn: Any, operand: jax.Array, index: jax.Array) -> jax.Array:
    """``gather_fn(operand, index)`` whose gradient accumulates in float32 for reduced floats.

    The forward is ``gather_fn`` unchanged (one gather, bit-exact). The tangent is gathered
    from the tangent upcast to float32 and rounded, so its transpose -- the gradient, a
    scatter-add of the cotangent -- adds in float32 and rounds once.
    """
    acc = accumulation_dtype(operand.dtype)
    if acc == operand.dtype:
        return gather_fn(operand, index)

    @jax.custom_jvp
    def upcast(x: jax.Array, idx: jax.Array) -> jax.Array:
        return gather_fn(x, idx)

    @upcast.defjvp
    def upcast_jvp(
        primals: tuple[jax.Array, jax.Array], tangents: tuple[jax.Array, Any]
    ) -> tuple[jax.Array, jax.Array]:
        x, idx = primals
        t = tangents[0]
        return upcast(x, idx), gather_fn(t.astype(acc), idx).astype(x.dtype)

    return upcast(operand, index)


def broadcast_upcast_transpose(x: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """``jnp.broadcast_to(x, shape)`` whose gradient sums in float32 for reduced floats.

    The gradient of a broadcast sums the cotangent over the broadcast axes; for bf16, fp16
    and float8 the broadcast goes through float32 (a lossless round trip), so that sum adds
    in float32 and rounds once, on every backend (torch's CPU sums do the same).
    """
    if tuple(x.shape) == tuple(shape):
        return x
    acc = accumulation_dtype(x.dtype)
    if acc == x.dtype:
        return jnp.broadcast_to(x, shape)
    return jnp.broadcast_to(x.astype(acc), shape).astype(x.dtype)
