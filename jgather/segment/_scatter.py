"""torch_scatter's scatter family: ``scatter`` and ``scatter_{sum,add,mean,mul,min,max}``,
with torch_scatter 2.1's semantics (its ``scatter.py``) on JAX.

Each public function checks its arguments at trace time (``_arguments.prepare``) and calls one
jitted core in ``_reductions`` with static ``dim``, ``dim_size`` and ``mode``.
"""

from __future__ import annotations

from typing import Literal

import jax
from jax.typing import ArrayLike

from jgather import _checks
from jgather.segment import _reductions

__all__ = [
    "scatter",
    "scatter_add",
    "scatter_max",
    "scatter_mean",
    "scatter_min",
    "scatter_mul",
    "scatter_sum",
]

_REDUCES = ("sum", "add", "mean", "mul", "min", "max")


def scatter_sum(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Sums ``src`` into segments along ``dim``: ``out[..., i, ...] += sum of src[..., j, ...]
    over index[j] == i``.

    torch_scatter's ``scatter_sum`` (= ``scatter_add``). One ``lax.scatter_add``; float16 and
    bfloat16 accumulate in float32 and round once. Empty segments are 0 (or keep ``out``).
    Gradient: the cotangent gathered at ``index`` (zero for dropped entries).

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

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
    return _reductions.run("scatter_sum", "sum", src, index, dim, out, dim_size, mode)


def scatter_add(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Sums ``src`` into segments along ``dim``: torch_scatter's ``scatter_add``.

    The same function as :func:`scatter_sum` under torch_scatter's other name: empty segments
    are 0 (or keep ``out``). Not ``jgather.scatter_add``, which is
    ``torch.Tensor.scatter_add`` (input first).

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``.
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_add
      >>> scatter_add(jnp.array([1, 2, 3, 4]), jnp.array([1, 1, 0, 1]))
      Array([3, 7], dtype=int32)
    """
    return _reductions.run("scatter_add", "sum", src, index, dim, out, dim_size, mode)


def scatter_mean(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Averages ``src`` within segments along ``dim``.

    torch_scatter's ``scatter_mean``: ``(out + sum) / max(count, 1)`` where ``count`` is the
    number of entries in the segment (``out``, when given, is added but not counted, as
    torch_scatter). Empty segments are 0. Integer means floor (round towards -inf), as
    torch_scatter's ``rounding_mode='floor'``. float16/bfloat16 accumulate in float32.

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``.
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_mean
      >>> scatter_mean(jnp.array([1.0, 2.0, 4.0]), jnp.array([0, 0, 2]))
      Array([1.5, 0. , 4. ], dtype=float32)
      >>> scatter_mean(jnp.array([-3, -4]), jnp.array([0, 0]))  # floor(-7 / 2)
      Array([-4], dtype=int32)
    """
    return _reductions.run("scatter_mean", "mean", src, index, dim, out, dim_size, mode)


def scatter_mul(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Multiplies ``src`` within segments along ``dim`` (into ones, or into ``out``).

    torch_scatter's ``scatter_mul``: empty segments are 1 (and every segment 0 when ``src``
    is empty and there is no ``out``, as torch_scatter's kernel). One ``lax.scatter_mul``.
    Gradient (floats): each factor gets the product of the *other* factors in its segment,
    computed without dividing by zero, and differentiable again (torch_scatter divides by
    ``src`` and sets the ``0 / 0`` of a zero factor to 0; elsewhere the two agree, second
    derivatives included).

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``.
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_mul
      >>> scatter_mul(jnp.array([2.0, 3.0, 4.0]), jnp.array([0, 0, 2]))
      Array([6., 1., 4.], dtype=float32)
    """
    return _reductions.run("scatter_mul", "mul", src, index, dim, out, dim_size, mode)


def scatter_max(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Maximum within segments along ``dim``, with its position: ``(values, argmax)``.

    torch_scatter's ``scatter_max``: ``argmax`` holds the position along ``dim`` of ``src``
    that won; ties go to the first position; empty segments give value 0 and argmax
    ``src.shape[dim]`` (torch_scatter's sentinel; with ``out=`` they keep ``out`` and the
    sentinel, and ``out`` wins ties). Gradient: the whole cotangent goes to the argmax element
    (torch_scatter's rule; ``jax.ops.segment_max`` and ``scatter_reduce('amax')`` split it
    among ties), none to empty segments.

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``(values, argmax)``, both ``[..., dim_size, ...]``; values in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``,
        complex src for a max/min (complex numbers have no order).
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_max
      >>> values, arg = scatter_max(jnp.array([1.0, 5.0, 5.0, 2.0]), jnp.array([0, 0, 0, 2]))
      >>> values, arg
      (Array([5., 0., 2.], dtype=float32), Array([1, 4, 3], dtype=int32))

    Differences from torch_scatter's CPU kernel, which compares with ``>`` from an initial
    ``lowest()``: NaN propagates here (the first NaN wins; torch_scatter skips NaN), and a
    segment of only ``-inf`` gives ``-inf`` at its first position (torch_scatter gives 0 and
    the sentinel). argmax has the index's integer dtype (int32 without x64; torch_scatter:
    int64).
    """
    return _reductions.run("scatter_max", "max", src, index, dim, out, dim_size, mode)


def scatter_min(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Minimum within segments along ``dim``, with its position: ``(values, argmin)``.

    torch_scatter's ``scatter_min``: ``argmin`` holds the position along ``dim`` of ``src``
    that won; ties go to the first position; empty segments give value 0 and argmin
    ``src.shape[dim]`` (with ``out=`` they keep ``out`` and the sentinel, and ``out`` wins
    ties). Gradient: the whole cotangent goes to the argmin element, none to empty segments.
    NaN propagates (torch_scatter skips it); a segment of only ``+inf`` gives ``+inf`` at its
    first position (torch_scatter: 0 and the sentinel). argmin has the index's integer dtype.

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
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``(values, argmin)``, both ``[..., dim_size, ...]``; values in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``,
        complex src for a max/min (complex numbers have no order).
      ValueError: index does not broadcast, ``out`` shape, traced index without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter_min
      >>> scatter_min(jnp.array([3, 1, 2]), jnp.array([1, 1, 1]))
      (Array([0, 1], dtype=int32), Array([3, 1], dtype=int32))
    """
    return _reductions.run("scatter_min", "min", src, index, dim, out, dim_size, mode)


def scatter(
    src: ArrayLike,
    index: ArrayLike,
    dim: int = -1,
    out: ArrayLike | None = None,
    dim_size: int | None = None,
    reduce: Literal["sum", "add", "mean", "mul", "min", "max"] = "sum",
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reduces ``src`` into segments along ``dim`` with ``reduce``.

    torch_scatter's ``scatter``: ``reduce`` is ``'sum'``/``'add'``, ``'mean'``, ``'mul'``,
    ``'min'`` or ``'max'`` (values only; use :func:`scatter_max` for the argmax), each with
    its function's semantics (empty segments: 0, mul 1). Not ``jgather.scatter``, which is
    ``torch.Tensor.scatter`` (input, dim, index, src).

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
      reduce: the reduction (default ``'sum'``). Static.
      mode: index values outside ``[0, dim_size)``: None raises ``IndexError`` for a concrete
        index and drops them when traced (``checkify.index_checks`` reports them); ``'drop'``
        drops, ``'clip'`` clamps, ``'promise_in_bounds'`` promises none (else unspecified). Static.

    Returns:
      ``[..., dim_size, ...]`` in ``src``'s dtype.

    Raises:
      TypeError: non-integer index, bool src, ``out`` dtype differs, non-int ``dim_size``,
        complex src for a max/min (complex numbers have no order).
      ValueError: unknown ``reduce``, index does not broadcast, ``out`` shape, traced index
        without ``dim_size``.
      IndexError: ``dim`` out of range; a concrete index value outside ``[0, dim_size)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather.segment import scatter
      >>> src = jnp.ones((2, 6, 4))
      >>> index = jnp.array([0, 1, 0, 1, 2, 1])
      >>> scatter(src, index, dim=1, reduce="sum").shape  # broadcast in the first and last dim
      (2, 3, 4)
    """
    fn = "scatter"
    _checks.one_of(fn, "reduce", reduce, _REDUCES)
    op = {"add": "sum"}.get(reduce, reduce)
    res = _reductions.run(fn, op, src, index, dim, out, dim_size, mode)
    return res[0] if op in ("min", "max") else res
