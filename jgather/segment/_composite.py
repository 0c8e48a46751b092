"""torch_scatter's composite reductions ``scatter_std`` and ``scatter_logsumexp``, with
torch_scatter 2.1's semantics (its ``composite/``; the softmaxes are in ``_softmax``).

Each public function checks its arguments at trace time (``_arguments.prepare``) and calls one
jitted core in ``_reductions`` with static ``dim``, ``dim_size`` and ``mode``.
"""

from __future__ import annotations

from typing import Literal

import jax
from jax.typing import ArrayLike

from jgather import _checks
from jgather.segment import _reductions

__all__ = ["scatter_logsumexp", "scatter_std"]


def scatter_std(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    unbiased: bool = True,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Standard deviation within segments along ``dim``.

    torch_scatter's ``scatter_std``: ``sqrt((out + sum (src - mean)^2) / (d + 1e-6))`` with
    ``d = max(count - 1, 1)`` when ``unbiased`` else ``max(count, 1)`` (so a one-element
    segment is 0, not NaN; ``out``, when given, is added to the squared deviations; the
    ``1e-6`` is torch_scatter's). Empty
    segments are 0. float16/bfloat16 compute in float32. Gradient: zero where the deviation is
    zero (torch_scatter gives NaN there, from sqrt at 0).

    Args:
      src: floating values, any shape ``[..., E, ...]`` with ``E`` at ``dim``.
      index: integer array broadcastable to ``src`` by torch_scatter's rule (a 1-D index of
        length ``E`` is lined up with ``dim``; a longer one with the leading axes).
      dim: the axis of ``src`` to reduce along (default -1, as torch_scatter). Static.
      out: optional initial array, ``src``'s shape with ``dim`` -> ``dim_size``. It is reduced
        into and the result returned; JAX arrays are immutable, so ``out`` itself is never
        written (torch_scatter updates it in place).
      dim_size: the number of segments (output size on ``dim``). None: ``out.shape[dim]``, or
        ``index.max() + 1`` read from a concrete index; required (static) under jit/vmap/grad.
      unbiased: divide by ``count - 1`` (default, as torch_scatter) instead of ``count``.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-bool ``unbiased``, non-integer index, ``out`` dtype, non-int ``dim_size``.
      ValueError: integer ``src`` (as torch_scatter), index does not broadcast, ``out`` shape,
        traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_std
      >>> scatter_std(jnp.array([1.0, 3.0, 7.0]), jnp.array([0, 0, 1]))
      Array([1.414213, 0.      ], dtype=float32)
    """
    unbiased = _checks.static_bool("scatter_std", "unbiased", unbiased)
    return _reductions.run(
        "scatter_std", "std", src, index, dim, out, dim_size, mode, floating=True, extra=unbiased
    )


def scatter_logsumexp(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    eps: float = 1e-12,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """``log(sum(exp(src)))`` within segments along ``dim``, shifted by the segment max.

    torch_scatter's ``scatter_logsumexp``: ``log(sum exp(src - m) + eps) + m`` with ``m`` the
    segment max; empty segments give 0 (with ``out=``: ``out``). With ``out=`` the result is
    the logsumexp of ``out`` together with the segment, and ``out`` takes part in the shift,
    so nothing overflows (torch_scatter shifts by the ``src`` max only and falls back to
    ``out`` where that overflows). Gradient: the segment softmax (no gradient through ``m``).

    Args:
      src: floating values, any shape ``[..., E, ...]`` with ``E`` at ``dim``.
      index: integer array broadcastable to ``src`` by torch_scatter's rule (a 1-D index of
        length ``E`` is lined up with ``dim``; a longer one with the leading axes).
      dim: the axis of ``src`` to reduce along (default -1, as torch_scatter). Static.
      out: optional initial array, ``src``'s shape with ``dim`` -> ``dim_size``. It is reduced
        into and the result returned; JAX arrays are immutable, so ``out`` itself is never
        written (torch_scatter updates it in place).
      dim_size: the number of segments (output size on ``dim``). None: ``out.shape[dim]``, or
        ``index.max() + 1`` read from a concrete index; required (static) under jit/vmap/grad.
      eps: added to the sum before the log (default 1e-12, as torch_scatter).
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-float ``eps``, non-integer index, ``out`` dtype, non-int ``dim_size``.
      ValueError: integer ``src`` (as torch_scatter), index does not broadcast, ``out`` shape,
        traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_logsumexp
      >>> scatter_logsumexp(jnp.array([0.0, 0.0, 5.0]), jnp.array([0, 0, 2]))
      Array([0.6931472, 0.       , 5.       ], dtype=float32)

    Differences from torch_scatter (which ends with ``nan_to_num_(neginf=0)``): a segment of
    only ``-inf`` gives ``-inf`` (torch_scatter: 0), one holding ``+inf`` gives ``+inf``
    (torch_scatter: the largest finite float), and NaN propagates (torch_scatter skips it).
    """
    eps = _checks.static_float("scatter_logsumexp", "eps", eps, what="the program (a constant)")
    return _reductions.run(
        "scatter_logsumexp",
        "logsumexp",
        src,
        index,
        dim,
        out,
        dim_size,
        mode,
        floating=True,
        extra=eps,
    )
