"""torch_scatter's ``scatter_softmax`` and ``scatter_log_softmax`` (``composite/softmax.py``).

Both are the numerically safe form: subtract each segment's max (gathered back to its
entries, no gradient through it), exponentiate, sum per segment, normalise. float16/bfloat16
compute in float32 and round once. The output has ``src``'s shape; ``dim_size`` only sizes the
per-segment buffers (under jit it must be given, as for every ``jgather.segment`` function).
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax
from jax.typing import ArrayLike

from jgather import _dtypes, _indexing
from jgather.segment import _arguments, _lowering

__all__ = ["scatter_log_softmax", "scatter_softmax"]


@functools.partial(jax.jit, static_argnames=("dim", "size", "mode", "log", "eps"))
def _core(
    src: jax.Array, idx: jax.Array, *, dim: int, size: int, mode: str | None, log: bool, eps: float
) -> jax.Array:
    acc = _dtypes.accumulation_dtype(src.dtype)
    x = src.astype(acc)
    idx = _indexing.prepare(idx, size, mode)
    # Entries in no segment (dropped) go to an extra segment whose max starts at +inf and
    # whose sum starts at 1: softmax 0, log_softmax -inf, zero gradient. Setting them in the
    # scatters' initial buffers keeps the [E, ...] gathers plain (XLA fuses them).
    idx, size, trash = _lowering.with_trash(idx, size, mode)
    shape = _lowering.out_shape(src.shape, dim, size)
    init = jnp.full(shape, -jnp.inf, acc)
    if trash:
        init = _lowering.set_segment(init, dim, size - 1, jnp.inf)
    m = _lowering.scatter_into("max", init, lax.stop_gradient(x), idx, dim, "promise_in_bounds")
    # Shift by the max; an empty or all -inf segment (and a NaN max) by 0. A +inf max stays,
    # so a segment holding +inf is NaN throughout, as torch_scatter's.
    shift = jnp.where(jnp.isnan(m) | (m == -jnp.inf), 0, m)
    z = x - _lowering.gather_back(shift, idx, dim)
    e = jnp.exp(z)
    init = jnp.zeros(shape, acc)
    if trash:
        init = _lowering.set_segment(init, dim, size - 1, 1)
    s = _lowering.scatter_into("add", init, e, idx, dim, "promise_in_bounds")
    s_g = _lowering.gather_back(s, idx, dim)
    res = z - jnp.log(s_g + eps) if log else e / s_g
    return res.astype(src.dtype)


def _softmax(
    fn: str,
    src: ArrayLike,
    index: ArrayLike,
    dim: int,
    dim_size: int | None,
    mode: str | None,
    *,
    log: bool,
    eps: float,
) -> jax.Array:
    p = _arguments.prepare(fn, src, index, dim, None, dim_size, mode, floating=True)
    result: jax.Array = _lowering.call(
        _core,
        (p.src, p.index),
        p.dim,
        checked=p.dim_size,
        size=p.dim_size,
        mode=mode,
        log=log,
        eps=float(eps),
    )
    return result


def scatter_softmax(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Softmax of ``src`` within each segment along ``dim``.

    torch_scatter's ``scatter_softmax``: ``exp(src - m) / sum_segment exp(src - m)`` with
    ``m`` the segment max (no epsilon, as torch_scatter 2.1). A segment of only ``-inf``
    gives NaN, as torch_scatter. Entries dropped by ``mode='drop'`` (or a traced out-of-range
    index) belong to no segment: 0, with zero gradient.

    Args:
      src: floating array ``[..., E, ...]``.
      index: integer array broadcastable to ``src`` by torch_scatter's rule.
      dim: the axis to normalise along (default -1). Static.
      dim_size: the number of segments; None reads ``index.max() + 1`` from a concrete
        index; required (static) under jit/vmap/grad.
      mode: out-of-range index values, as :func:`jgather.segment.scatter_sum`. Static.

    Returns:
      ``src``'s shape and dtype.

    Raises:
      ValueError: integer ``src`` (as torch_scatter), index not broadcastable, traced index
        without ``dim_size``.
      TypeError, IndexError: as :func:`jgather.segment.scatter_sum`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_softmax
      >>> scatter_softmax(jnp.array([0.0, 0.0, 3.0, 1.0]), jnp.array([0, 0, 1, 0]))
      Array([0.21194156, 0.21194156, 1.        , 0.57611686], dtype=float32)
    """
    return _softmax("scatter_softmax", src, index, dim, dim_size, mode, log=False, eps=0.0)


def scatter_log_softmax(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    eps: float = 1e-12,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Log-softmax of ``src`` within each segment along ``dim``.

    torch_scatter's ``scatter_log_softmax``: ``(src - m) - log(sum_segment exp(src - m) +
    eps)``; note torch_scatter's positional order puts ``eps`` before ``dim_size``, kept here.
    Entries in no segment (dropped) give ``-inf`` with zero gradient.

    Args:
      src: floating array ``[..., E, ...]``.
      index: integer array broadcastable to ``src`` by torch_scatter's rule.
      dim: the axis to normalise along (default -1). Static.
      eps: added to the sum before the log (default 1e-12, as torch_scatter).
      dim_size: the number of segments; required (static) under jit/vmap/grad.
      mode: out-of-range index values, as :func:`jgather.segment.scatter_sum`. Static.

    Returns:
      ``src``'s shape and dtype.

    Raises:
      ValueError, TypeError, IndexError: as :func:`scatter_softmax`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_log_softmax
      >>> scatter_log_softmax(jnp.array([0.0, 0.0, 3.0]), jnp.array([0, 0, 1]))
      Array([-0.6931472, -0.6931472,  0.       ], dtype=float32)
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float):
        raise TypeError(f"scatter_log_softmax: eps must be a Python float, got {eps!r}.")
    return _softmax("scatter_log_softmax", src, index, dim, dim_size, mode, log=True, eps=eps)
