"""The reductions of ``jgather.segment`` on an aligned index: sum, mean, mul, max/min with
their args, std, logsumexp; each a composition of :func:`jgather.segment._lowering.scatter_into`
and ``gather_back``. ``run`` checks the arguments and calls the jitted ``core``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jgather import _dtypes, _indexing
from jgather.segment import _arguments, _lowering


def _accumulated_sum(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool,
) -> tuple[jax.Array, jax.Array]:
    """(per-segment sums in the accumulation dtype, the prepared index)."""
    acc = _dtypes.accumulation_dtype(src.dtype)
    shape = _lowering.out_shape(src.shape, dim, size)
    base = out.astype(acc) if out is not None else jnp.zeros(shape, acc)
    idx = _indexing.prepare(idx, size, mode)
    total = _lowering.scatter_into("add", base, src.astype(acc), idx, dim, mode, sorted=sorted)
    return total, idx


def reduce_sum(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> jax.Array:
    """``out + sum``; a reduced-precision sum accumulates in float32 in the engine."""
    shape = _lowering.out_shape(src.shape, dim, size)
    base = out if out is not None else jnp.zeros(shape, src.dtype)
    idx = _indexing.prepare(idx, size, mode)
    return _lowering.scatter_into("add", base, src, idx, dim, mode, sorted=sorted)


def reduce_mean(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
    kernel: bool = False,
) -> jax.Array:
    """``(out + sum) / max(count, 1)``, divided as torch_scatter's segment kernels do when
    ``kernel`` (:func:`jgather._dtypes.mean`)."""
    total, idx = _accumulated_sum(src, idx, out, dim, size, mode, sorted)
    counted = total.dtype if jnp.issubdtype(total.dtype, jnp.inexact) else jnp.int32
    n = _lowering.count(idx, dim, size, src.shape[dim], counted, mode, sorted=sorted)
    return _dtypes.mean(total, jnp.maximum(n, 1), src.dtype, kernel=kernel)


def reduce_mul(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> jax.Array:
    shape = _lowering.out_shape(src.shape, dim, size)
    if out is None and src.size == 0:  # torch_scatter's kernel: an empty src gives zeros
        return jnp.zeros(shape, src.dtype)
    base = out if out is not None else jnp.ones(shape, src.dtype)
    idx = _indexing.prepare(idx, size, mode)
    # A floating product's derivative is torch's rule, in the engine (no division by zero).
    return _lowering.scatter_into("mul", base, src, idx, dim, mode, sorted=sorted)


def reduce_arg(
    kind: str,
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """(values, arg) of max or min, torch_scatter's rules.

    ``src`` replaces the running value only when strictly greater (less), so ties go to the
    first position along ``dim`` and to ``out`` when it ties; NaN propagates (and wins, its
    first position is the arg). The values are then *read* at the arg, so the gradient goes
    wholly to the arg element (torch_scatter's rule) and empty segments get none.
    """
    n = src.shape[dim]
    arg_dtype = idx.dtype  # the caller's index dtype (int64 with x64, as torch_scatter)
    idx = _indexing.prepare(idx, size, mode)
    shape = _lowering.out_shape(src.shape, dim, size)
    plain = lax.stop_gradient(src)
    init = (
        lax.stop_gradient(out)
        if out is not None
        else jnp.full(shape, _dtypes.identity(src.dtype, "a" + kind), src.dtype)
    )
    best = _lowering.scatter_into(kind, init, plain, idx, dim, mode, sorted=sorted)
    # Dropped entries need no mask: the arg scatter below drops them too.
    won = plain == _lowering.gather_back(best, idx, dim)
    if jnp.issubdtype(src.dtype, jnp.inexact):  # a NaN entry makes its segment's max NaN
        won = won | jnp.isnan(plain)
    pos = lax.broadcasted_iota(arg_dtype, src.shape, dim)
    cand = jnp.where(won, pos, n).astype(arg_dtype)
    arg = _lowering.scatter_into(
        "min", jnp.full(shape, n, arg_dtype), cand, idx, dim, mode, sorted=sorted
    )
    if out is not None:  # out keeps its place unless some src is strictly better
        arg = jnp.where(_lowering.same(init, best), n, arg)
    fallback = out if out is not None else jnp.zeros(shape, src.dtype)
    return _pick(src, best, arg, fallback, dim), arg


@functools.partial(jax.custom_jvp, nondiff_argnums=(4,))
def _pick(
    src: jax.Array, best: jax.Array, arg: jax.Array, fallback: jax.Array, dim: int
) -> jax.Array:
    """``best`` where ``arg`` hit an entry, else ``fallback``; its derivative reads ``src``'s
    tangent at ``arg`` (the whole cotangent to the arg element), so the forward pass needs no
    gather."""
    return jnp.where(arg < src.shape[dim], best, fallback)


@_pick.defjvp
def _pick_jvp(
    dim: int, primals: tuple[jax.Array, ...], tangents: tuple[Any, ...]
) -> tuple[jax.Array, jax.Array]:
    src, best, arg, fallback = primals
    dsrc, _, _, dfallback = tangents
    n = src.shape[dim]
    hit = arg < n
    if n:
        at = jnp.take_along_axis(dsrc, jnp.minimum(arg, n - 1), axis=dim, mode="clip")
    else:
        at = jnp.zeros(arg.shape, dsrc.dtype)
    return _pick(src, best, arg, fallback, dim), jnp.where(hit, at, dfallback)


def reduce_std(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    unbiased: bool,
    sorted: bool = False,
) -> jax.Array:
    acc = _dtypes.accumulation_dtype(src.dtype)
    x = src.astype(acc)
    idx = _indexing.prepare(idx, size, mode)
    shape = _lowering.out_shape(src.shape, dim, size)
    n = _lowering.count(idx, dim, size, src.shape[dim], acc, mode, sorted=sorted)
    total = _lowering.scatter_into("add", jnp.zeros(shape, acc), x, idx, dim, mode, sorted=sorted)
    mean = total / jnp.maximum(n, 1)
    dev = x - _lowering.gather_back(mean, idx, dim)
    base = out.astype(acc) if out is not None else jnp.zeros(shape, acc)
    sq = _lowering.scatter_into("add", base, dev * dev, idx, dim, mode, sorted=sorted)
    # torch_scatter's denominator, 1e-6 included: (max(count - 1, 1) + 1e-6).
    var = sq / (jnp.maximum(n - 1 if unbiased else n, 1) + 1e-6)
    # sqrt has an infinite derivative at 0 (a one-element or constant segment); torch_scatter
    # returns NaN gradients there, jgather zero (the double where keeps them out of the VJP).
    # A NaN or infinite entry (and a negative out=) gives NaN, as in torch_scatter.
    zero = var == 0
    return jnp.where(zero, 0, jnp.sqrt(jnp.where(zero, 1, var))).astype(src.dtype)


def segment_max_shift(
    src: jax.Array, idx: jax.Array, dim: int, size: int, mode: str | None, sorted: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Per-segment max of ``src`` (no gradient), and the finite shift used to exponentiate."""
    m = _lowering.scatter_into(
        "max",
        jnp.full(_lowering.out_shape(src.shape, dim, size), -jnp.inf, src.dtype),
        lax.stop_gradient(src),
        idx,
        dim,
        mode,
        sorted=sorted,
    )
    return m, jnp.where(jnp.isfinite(m), m, 0)


def reduce_logsumexp(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    eps: float,
    sorted: bool = False,
) -> jax.Array:
    acc = _dtypes.accumulation_dtype(src.dtype)
    x = src.astype(acc)
    idx = _indexing.prepare(idx, size, mode)
    m, shift = segment_max_shift(x, idx, dim, size, mode, sorted)
    if out is not None:  # out takes part in the max too, so exp(out - shift) cannot overflow
        o = out.astype(acc)
        m = jnp.maximum(m, lax.stop_gradient(o))
        shift = jnp.where(jnp.isfinite(m), m, 0)
    z = x - _lowering.gather_back(shift, idx, dim, mode, fill=jnp.inf)  # dropped: exp(-inf) = 0
    base = jnp.exp(o - shift) if out is not None else jnp.zeros(m.shape, acc)
    s = _lowering.scatter_into("add", base, jnp.exp(z), idx, dim, mode, sorted=sorted)
    finite = jnp.isfinite(m)
    res = jnp.where(finite, jnp.log(jnp.where(finite, s, 1) + eps) + shift, m)
    hit = _lowering.count(idx, dim, size, src.shape[dim], jnp.int32, mode, sorted=sorted) > 0
    res = jnp.where(hit, res, o if out is not None else 0)
    return res.astype(src.dtype)


@functools.partial(jax.jit, static_argnames=("op", "dim", "size", "mode", "extra"))
def core(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    *,
    op: str,
    dim: int,
    size: int,
    mode: str | None,
    extra: Any = None,
) -> Any:  # an array, or (values, arg) for 'max' / 'min': each public wrapper says which
    if op == "sum":
        return reduce_sum(src, idx, out, dim, size, mode)
    if op == "mean":
        return reduce_mean(src, idx, out, dim, size, mode)
    if op == "mul":
        return reduce_mul(src, idx, out, dim, size, mode)
    if op in ("max", "min"):
        return reduce_arg(op, src, idx, out, dim, size, mode)
    if op == "std":
        return reduce_std(src, idx, out, dim, size, mode, extra)
    if op == "logsumexp":
        return reduce_logsumexp(src, idx, out, dim, size, mode, extra)
    raise AssertionError(op)


def run(
    fn: str,
    op: str,
    src: ArrayLike,
    index: ArrayLike,
    dim: int,
    out: ArrayLike | None,
    dim_size: int | None,
    mode: str | None,
    *,
    floating: bool = False,
    extra: Any = None,
) -> Any:  # core's result
    p = _arguments.prepare(fn, src, index, dim, out, dim_size, mode, floating=floating)
    if op in ("max", "min"):
        _dtypes.check_ordered(fn, p.src.dtype, op)
    return _lowering.call(
        core,
        (p.src, p.index, p.out),
        p.dim,
        checked=p.dim_size,
        op=op,
        size=p.dim_size,
        mode=mode,
        extra=extra,
    )
