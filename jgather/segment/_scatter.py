"""torch_scatter's scatter family: ``scatter`` and ``scatter_{sum,add,mean,mul,min,max,std,
logsumexp}``.

Semantics are torch_scatter 2.1's (``torch_scatter/scatter.py``, ``composite/std.py``,
``composite/logsumexp.py``), re-stated on JAX:

* ``index`` broadcasts as torch_scatter's ``broadcast``: a 1-D index is lined up with ``dim``,
  a longer one with the leading axes; every axis must then be ``src``'s size or 1.
* The output has ``src``'s shape with ``dim`` replaced by ``dim_size`` (``out.shape[dim]`` when
  ``out`` is given, else ``index.max() + 1`` read from a concrete index, 0 for an empty one).
  Under ``jax.jit`` / ``vmap`` / ``grad`` the index is traced: pass ``dim_size`` (static).
* ``out=`` is the initial array, reduced into (sum adds to it, max compares with it, ...). JAX
  arrays are immutable, so it is never written: the updated copy is returned.
* Segments that receive nothing: sum 0, mean 0, mul 1, min/max 0 with arg ``src.shape[dim]``,
  std 0, logsumexp 0 (each torch_scatter's value). With ``out=`` they keep ``out``.

Each public function checks its arguments at trace time (``_checks.prepare``) and calls one
jitted core defined at module level with static ``dim``, ``dim_size``, ``mode``. The lowering
is ``_lowering.scatter_into`` (one ``lax.scatter_*``) and ``gather_back``.

Out-of-range index values (``mode=``, as jgather's scatters): ``None`` raises ``IndexError``
for a concrete index; a traced one drops those entries and
``checkify.checkify(f, errors=checkify.index_checks)`` reports them. ``'drop'`` drops them
also eagerly, ``'clip'`` clamps into ``[0, dim_size - 1]``, ``'promise_in_bounds'`` is the
caller's promise (unspecified otherwise). Dropped entries get a zero gradient.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jgather._indexing import ScatterMode
from jgather.segment import _checks as ck
from jgather.segment import _lowering as lw

__all__ = [
    "scatter",
    "scatter_add",
    "scatter_logsumexp",
    "scatter_max",
    "scatter_mean",
    "scatter_min",
    "scatter_mul",
    "scatter_std",
    "scatter_sum",
]

_REDUCES = ("sum", "add", "mean", "mul", "min", "max")

# --------------------------------------------------------------------------------------------
# Cores: plain functions of arrays plus static facts, shared with _softmax and _segment.


def reduce_sum(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> jax.Array:
    acc = lw.acc_dtype(src.dtype)
    base = (
        out.astype(acc) if out is not None else jnp.zeros(lw.out_shape(src.shape, dim, size), acc)
    )
    idx = lw.prepare_index(idx, size, mode)
    res = lw.scatter_into("add", base, src.astype(acc), idx, dim, mode, sorted=sorted)
    return res.astype(src.dtype)


def reduce_mean(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> jax.Array:
    acc = lw.acc_dtype(src.dtype)
    base = (
        out.astype(acc) if out is not None else jnp.zeros(lw.out_shape(src.shape, dim, size), acc)
    )
    idx = lw.prepare_index(idx, size, mode)
    total = lw.scatter_into("add", base, src.astype(acc), idx, dim, mode, sorted=sorted)
    floating = jnp.issubdtype(acc, jnp.inexact)
    n = lw.count(
        idx, dim, size, src.shape[dim], acc if floating else jnp.int32, mode, sorted=sorted
    )
    n = jnp.maximum(n, 1)
    if floating:
        return (total / n).astype(src.dtype)
    wide = jnp.int64 if src.dtype.itemsize == 8 else jnp.int32
    return jnp.floor_divide(total.astype(wide), n.astype(wide)).astype(src.dtype)


def _product(
    kind_base: jax.Array, src: jax.Array, idx: jax.Array, dim: int, mode: str | None, sorted: bool
) -> jax.Array:
    return lw.scatter_into("mul", kind_base, src, idx, dim, mode, sorted=sorted)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5))
def _float_product(
    base: jax.Array, src: jax.Array, idx: jax.Array, dim: int, mode: str | None, sorted: bool
) -> jax.Array:
    return _product(base, src, idx, dim, mode, sorted)


@_float_product.defjvp
def _float_product_jvp(
    dim: int,
    mode: str | None,
    sorted: bool,
    primals: tuple[jax.Array, jax.Array, jax.Array],
    tangents: tuple[jax.Array, jax.Array, Any],
) -> tuple[jax.Array, jax.Array]:
    # d prod = sum over factors f of (product of the others) * df. "The others" is computed
    # without dividing by f where f == 0: with Z zeros among a segment's factors and P the
    # product of its non-zero ones, others(f) = P / f if Z == 0, P if f == 0 and Z == 1,
    # else 0. No NaN or inf from zeros (torch_scatter divides by src and gets NaN there).
    base, src, idx = primals
    dbase, dsrc, _ = tangents
    zeros_src = (src == 0).astype(jnp.int32)
    zeros = lw.scatter_into(
        "add", (base == 0).astype(jnp.int32), zeros_src, idx, dim, mode, sorted=sorted
    )
    nz = _product(
        jnp.where(base == 0, 1, base), jnp.where(src == 0, 1, src), idx, dim, mode, sorted
    )
    out = jnp.where(zeros > 0, 0, nz).astype(base.dtype)

    def others(f: jax.Array, z: jax.Array, p: jax.Array) -> jax.Array:
        safe = jnp.where(f == 0, 1, f)
        return jnp.where(z == 0, p / safe, jnp.where((f == 0) & (z == 1), p, 0))

    z_g = lw.gather_back(zeros, idx, dim)
    p_g = lw.gather_back(nz, idx, dim)
    d_src = others(src, z_g, p_g) * dsrc
    valid = lw.in_range(idx, base.shape[dim], mode)
    if valid is not None:
        d_src = jnp.where(valid, d_src, 0)
    tangent = others(base, zeros, nz) * dbase
    tangent = lw.scatter_into("add", tangent, d_src, idx, dim, mode, sorted=sorted)
    return out, tangent


def reduce_mul(
    src: jax.Array,
    idx: jax.Array,
    out: jax.Array | None,
    dim: int,
    size: int,
    mode: str | None,
    sorted: bool = False,
) -> jax.Array:
    base = out if out is not None else jnp.ones(lw.out_shape(src.shape, dim, size), src.dtype)
    idx = lw.prepare_index(idx, size, mode)
    if jnp.issubdtype(src.dtype, jnp.inexact):
        return _float_product(base, src, idx, dim, mode, sorted)
    return _product(base, src, idx, dim, mode, sorted)


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
    idx = lw.prepare_index(idx, size, mode)
    shape = lw.out_shape(src.shape, dim, size)
    plain = lax.stop_gradient(src)
    init = (
        lax.stop_gradient(out)
        if out is not None
        else jnp.full(shape, lw.lowest(src.dtype, kind), src.dtype)
    )
    best = lw.scatter_into(kind, init, plain, idx, dim, mode, sorted=sorted)
    # Dropped entries need no mask: the arg scatter below drops them too.
    won = plain == lw.gather_back(best, idx, dim)
    if jnp.issubdtype(src.dtype, jnp.inexact):  # a NaN entry makes its segment's max NaN
        won = won | jnp.isnan(plain)
    arg_dtype = idx.dtype
    pos = lax.broadcasted_iota(arg_dtype, src.shape, dim)
    cand = jnp.where(won, pos, n).astype(arg_dtype)
    arg = lw.scatter_into("min", jnp.full(shape, n, arg_dtype), cand, idx, dim, mode, sorted=sorted)
    if out is not None:  # out keeps its place unless some src is strictly better
        arg = jnp.where(lw.same(init, best), n, arg)
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
    acc = lw.acc_dtype(src.dtype)
    x = src.astype(acc)
    idx = lw.prepare_index(idx, size, mode)
    shape = lw.out_shape(src.shape, dim, size)
    n = lw.count(idx, dim, size, src.shape[dim], acc, mode, sorted=sorted)
    total = lw.scatter_into("add", jnp.zeros(shape, acc), x, idx, dim, mode, sorted=sorted)
    mean = total / jnp.maximum(n, 1)
    dev = x - lw.gather_back(mean, idx, dim)
    base = out.astype(acc) if out is not None else jnp.zeros(shape, acc)
    sq = lw.scatter_into("add", base, dev * dev, idx, dim, mode, sorted=sorted)
    var = sq / jnp.maximum(n - 1 if unbiased else n, 1)
    # sqrt has an infinite derivative at 0 (a one-element or constant segment); torch_scatter
    # returns NaN gradients there, jgather zero (the double where keeps them out of the VJP).
    pos = var > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1)), 0).astype(src.dtype)


def segment_max_shift(
    src: jax.Array, idx: jax.Array, dim: int, size: int, mode: str | None, sorted: bool = False
) -> tuple[jax.Array, jax.Array]:
    """Per-segment max of ``src`` (no gradient), and the finite shift used to exponentiate."""
    m = lw.scatter_into(
        "max",
        jnp.full(lw.out_shape(src.shape, dim, size), -jnp.inf, src.dtype),
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
    acc = lw.acc_dtype(src.dtype)
    x = src.astype(acc)
    idx = lw.prepare_index(idx, size, mode)
    m, shift = segment_max_shift(x, idx, dim, size, mode, sorted)
    if out is not None:  # out takes part in the max too, so exp(out - shift) cannot overflow
        o = out.astype(acc)
        m = jnp.maximum(m, lax.stop_gradient(o))
        shift = jnp.where(jnp.isfinite(m), m, 0)
    z = x - lw.gather_back(shift, idx, dim, mode, fill=jnp.inf)  # dropped: exp(-inf) = 0
    base = jnp.exp(o - shift) if out is not None else jnp.zeros(m.shape, acc)
    s = lw.scatter_into("add", base, jnp.exp(z), idx, dim, mode, sorted=sorted)
    finite = jnp.isfinite(m)
    res = jnp.where(finite, jnp.log(jnp.where(finite, s, 1) + eps) + shift, m)
    hit = lw.count(idx, dim, size, src.shape[dim], jnp.int32, mode, sorted=sorted) > 0
    res = jnp.where(hit, res, o if out is not None else 0)
    return res.astype(src.dtype)


@functools.partial(jax.jit, static_argnames=("op", "dim", "size", "mode", "extra"))
def _core(
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


def _run(
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
) -> Any:  # _core's result
    p = ck.prepare(fn, src, index, dim, out, dim_size, mode, floating=floating)
    return _core(p.src, p.index, p.out, op=op, dim=p.dim, size=p.dim_size, mode=mode, extra=extra)


# --------------------------------------------------------------------------------------------
# Public functions.

_ARGS = """
    Args:
      src: the values, any shape ``[..., E, ...]`` with ``E`` at ``dim``.
      index: integer array broadcastable to ``src`` by torch_scatter's rule (a 1-D index of
        length ``E`` is lined up with ``dim``; a longer one with the leading axes).
      dim: the axis of ``src`` to reduce along (default -1, as torch_scatter). Static.
      out: optional initial array, ``src``'s shape with ``dim`` -> ``dim_size``. It is reduced
        into and the result returned; JAX arrays are immutable, so ``out`` itself is never
        written (torch_scatter updates it in place).
      dim_size: the number of segments (output size on ``dim``). None: ``out.shape[dim]``, or
        ``index.max() + 1`` read from a concrete index; required (static) under jit/vmap/grad.
      mode: out-of-range index values: None (``IndexError`` eagerly; dropped under jit and
        reported by checkify), ``'drop'``, ``'clip'``, ``'promise_in_bounds'``. Static."""


def _doc(text: str) -> str:
    return text.replace("    {ARGS}", _ARGS.strip("\n"))


def scatter_sum(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    return _run("scatter_sum", "sum", src, index, dim, out, dim_size, mode)


scatter_sum.__doc__ = _doc(
    """Sums ``src`` into segments along ``dim``: ``out[..., i, ...] += sum of src[..., j, ...]
    over index[j] == i``.

    torch_scatter's ``scatter_sum`` (= ``scatter_add``). One ``lax.scatter_add``; float16 and
    bfloat16 accumulate in float32 and round once. Empty segments are 0 (or keep ``out``).
    Gradient: the cotangent gathered at ``index`` (zero for dropped entries).

    {ARGS}

    Returns:
      ``[..., dim_size, ...]``: ``src``'s shape with ``dim`` -> ``dim_size``, ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``.
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_sum
      >>> src = jnp.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # 3 edges x 2 features
      >>> scatter_sum(src, jnp.array([0, 2, 0]), dim=0)
      Array([[6., 8.],
             [0., 0.],
             [3., 4.]], dtype=float32)
    """
)


def scatter_add(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    return _run("scatter_add", "sum", src, index, dim, out, dim_size, mode)


scatter_add.__doc__ = _doc(
    """Alias of :func:`scatter_sum` (torch_scatter's ``scatter_add``).

    Not ``jgather.scatter_add``, which is ``torch.Tensor.scatter_add`` (input first).

    {ARGS}

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError, ValueError, IndexError: as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_add
      >>> scatter_add(jnp.array([1, 2, 3, 4]), jnp.array([1, 1, 0, 1]))
      Array([3, 7], dtype=int32)
    """
)


def scatter_mean(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    return _run("scatter_mean", "mean", src, index, dim, out, dim_size, mode)


scatter_mean.__doc__ = _doc(
    """Averages ``src`` within segments along ``dim``.

    torch_scatter's ``scatter_mean``: ``(out + sum) / max(count, 1)`` where ``count`` is the
    number of entries in the segment (``out``, when given, is added but not counted, as
    torch_scatter). Empty segments are 0. Integer means floor (round towards -inf), as
    torch_scatter's ``rounding_mode='floor'``. float16/bfloat16 accumulate in float32.

    {ARGS}

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError, ValueError, IndexError: as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_mean
      >>> scatter_mean(jnp.array([1.0, 2.0, 4.0]), jnp.array([0, 0, 2]))
      Array([1.5, 0. , 4. ], dtype=float32)
      >>> scatter_mean(jnp.array([-3, -4]), jnp.array([0, 0]))  # floor(-7 / 2)
      Array([-4], dtype=int32)
    """
)


def scatter_mul(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    return _run("scatter_mul", "mul", src, index, dim, out, dim_size, mode)


scatter_mul.__doc__ = _doc(
    """Multiplies ``src`` within segments along ``dim`` (into ones, or into ``out``).

    torch_scatter's ``scatter_mul``: empty segments are 1. One ``lax.scatter_mul``. Gradient
    (floats): each factor gets the product of the *other* factors in its segment, computed
    without dividing by zero (torch_scatter divides by ``src`` and gives NaN at zeros).

    {ARGS}

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError, ValueError, IndexError: as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_mul
      >>> scatter_mul(jnp.array([2.0, 3.0, 4.0]), jnp.array([0, 0, 2]))
      Array([6., 1., 4.], dtype=float32)
    """
)


def scatter_max(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> tuple[jax.Array, jax.Array]:
    return _run("scatter_max", "max", src, index, dim, out, dim_size, mode)


scatter_max.__doc__ = _doc(
    """Maximum within segments along ``dim``, with its position: ``(values, argmax)``.

    torch_scatter's ``scatter_max``: ``argmax`` holds the position along ``dim`` of ``src``
    that won; ties go to the first position; empty segments give value 0 and argmax
    ``src.shape[dim]`` (torch_scatter's sentinel; with ``out=`` they keep ``out`` and the
    sentinel, and ``out`` wins ties). Gradient: the whole cotangent goes to the argmax element
    (torch_scatter's rule; ``jax.ops.segment_max`` and ``scatter_reduce('amax')`` split it
    among ties), none to empty segments.

    Differences from torch_scatter's CPU kernel, which compares with ``>`` from an initial
    ``lowest()``: NaN propagates here (the first NaN wins; torch_scatter skips NaN), and a
    segment of only ``-inf`` (``+inf`` for min) gives ``-inf`` at its first position (torch_scatter
    gives 0 and the sentinel). argmax has the index's integer dtype (int32 without x64;
    torch_scatter: int64).

    {ARGS}

    Returns:
      ``(values, argmax)``, both ``[..., dim_size, ...]``; values in ``src``'s dtype.

    Raises:
      TypeError, ValueError, IndexError: as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_max
      >>> values, arg = scatter_max(jnp.array([1.0, 5.0, 5.0, 2.0]), jnp.array([0, 0, 0, 2]))
      >>> values, arg
      (Array([5., 0., 2.], dtype=float32), Array([1, 4, 3], dtype=int32))
    """
)


def scatter_min(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: ScatterMode = None,
) -> tuple[jax.Array, jax.Array]:
    return _run("scatter_min", "min", src, index, dim, out, dim_size, mode)


scatter_min.__doc__ = _doc(
    """Minimum within segments along ``dim``, with its position: ``(values, argmin)``.

    torch_scatter's ``scatter_min``; the mirror of :func:`scatter_max` (first position wins
    ties, empty segments 0 with argmin ``src.shape[dim]``, whole gradient to the argmin, NaN
    propagates).

    {ARGS}

    Returns:
      ``(values, argmin)``, both ``[..., dim_size, ...]``.

    Raises:
      TypeError, ValueError, IndexError: as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_min
      >>> scatter_min(jnp.array([3, 1, 2]), jnp.array([1, 1, 1]))
      (Array([0, 1], dtype=int32), Array([3, 1], dtype=int32))
    """
)


def scatter_std(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    unbiased: bool = True,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    if not isinstance(unbiased, bool):
        raise TypeError(f"scatter_std: unbiased must be a bool, got {unbiased!r}.")
    return _run(
        "scatter_std", "std", src, index, dim, out, dim_size, mode, floating=True, extra=unbiased
    )


scatter_std.__doc__ = _doc(
    """Standard deviation within segments along ``dim``.

    torch_scatter's ``scatter_std``: ``sqrt((out + sum (src - mean)^2) / d)`` with
    ``d = max(count - 1, 1)`` when ``unbiased`` else ``max(count, 1)`` (so a one-element
    segment is 0, not NaN; ``out``, when given, is added to the squared deviations).
    float16/bfloat16 compute in float32. Gradient: zero where the deviation is zero (torch_scatter
    gives NaN there, from sqrt at 0).

    {ARGS}
      unbiased: divide by ``count - 1`` (default, as torch_scatter) instead of ``count``.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      ValueError: integer ``src`` (as torch_scatter); otherwise as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_std
      >>> scatter_std(jnp.array([1.0, 3.0, 7.0]), jnp.array([0, 0, 1]))
      Array([1.4142135, 0.       ], dtype=float32)
    """
)


def scatter_logsumexp(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    eps: float = 1e-12,
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    if isinstance(eps, bool) or not isinstance(eps, int | float):
        raise TypeError(f"scatter_logsumexp: eps must be a Python float, got {eps!r}.")
    return _run(
        "scatter_logsumexp",
        "logsumexp",
        src,
        index,
        dim,
        out,
        dim_size,
        mode,
        floating=True,
        extra=float(eps),
    )


scatter_logsumexp.__doc__ = _doc(
    """``log(sum(exp(src)))`` within segments along ``dim``, shifted by the segment max.

    torch_scatter's ``scatter_logsumexp``: ``log(sum exp(src - m) + eps) + m`` with ``m`` the
    segment max; empty segments give 0 (with ``out=``: ``out``). With ``out=`` the result is
    the logsumexp of ``out`` together with the segment, and ``out`` takes part in the shift,
    so nothing overflows (torch_scatter shifts by the ``src`` max only and falls back to
    ``out`` where that overflows). Gradient: the segment softmax (no gradient through ``m``).

    Differences from torch_scatter (which ends with ``nan_to_num_(neginf=0)``): a segment of
    only ``-inf`` gives ``-inf`` (torch_scatter: 0), one holding ``+inf`` gives ``+inf``
    (torch_scatter: the largest finite float), and NaN propagates (torch_scatter skips it).

    {ARGS}
      eps: added to the sum before the log (default 1e-12, as torch_scatter).

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      ValueError: integer ``src`` (as torch_scatter); otherwise as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_logsumexp
      >>> scatter_logsumexp(jnp.array([0.0, 0.0, 5.0]), jnp.array([0, 0, 2]))
      Array([0.6931472, 0.       , 5.       ], dtype=float32)
    """
)


def scatter(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    reduce: Literal["sum", "add", "mean", "mul", "min", "max"] = "sum",
    *,
    mode: ScatterMode = None,
) -> jax.Array:
    fn = "scatter"
    ck.check_reduce(fn, reduce, _REDUCES)
    op = {"add": "sum"}.get(reduce, reduce)
    res = _run(fn, op, src, index, dim, out, dim_size, mode)
    return res[0] if op in ("min", "max") else res


scatter.__doc__ = _doc(
    """Reduces ``src`` into segments along ``dim`` with ``reduce``.

    torch_scatter's ``scatter``: ``reduce`` is ``'sum'``/``'add'``, ``'mean'``, ``'mul'``,
    ``'min'`` or ``'max'`` (values only; use :func:`scatter_max` for the argmax). Not
    ``jgather.scatter``, which is ``torch.Tensor.scatter`` (input, dim, index, src).

    {ARGS}
      reduce: the reduction (default ``'sum'``). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      ValueError: unknown ``reduce``; otherwise as :func:`scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter
      >>> src = jnp.ones((2, 6, 4))
      >>> index = jnp.array([0, 1, 0, 1, 2, 1])
      >>> scatter(src, index, dim=1, reduce="sum").shape  # broadcast in the first and last dim
      (2, 3, 4)
    """
)
