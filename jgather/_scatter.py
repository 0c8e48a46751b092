"""The scatter family with torch semantics: ``scatter``, ``scatter_add``, ``scatter_reduce``.

Each public function checks its arguments at trace time (and a concrete index's values, with
torch's ``IndexError``) and hands the request to the scatter engine (``jgather._engine.scatter``).
Out-of-range index values and the ``mode`` argument are described in the
"Out-of-range indices under jit" guide.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _engine, _indexing

__all__ = ["scatter", "scatter_add", "scatter_reduce"]

Reduction = Literal["sum", "prod", "mean", "amax", "amin", "max", "min"]
_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
# torch also accepts "max" and "min" for "amax" and "amin" (the same values).
_REDUCE_ALIASES = {"max": "amax", "min": "amin"}
_SCATTER_REDUCE = {None: "set", "add": "sum", "multiply": "prod"}


def _prepare(
    fn: str, input: Any, dim: Any, index: Any, src: Any, mode: Any
) -> tuple[jax.Array, int, jax.Array, jax.Array, Any]:
    """Shared trace-time checks; returns canonical (input, dim, index, src) and the index as
    the caller gave it (a NumPy array, or the same JAX array or tracer)."""
    input, index, wide, dim = _indexing.operands(
        fn, input, index, mode, _indexing.SCATTER_MODES, dim=dim
    )
    if _checks.is_scalar(src):
        src_shape = None
        _indexing.check_scalar_fits(fn, "src", src, input.dtype)
        src = _indexing.scalar_as(src, input.dtype)
    else:
        src = _checks.as_array(fn, "src", src)
        _checks.same_dtype(fn, "src", src, input.dtype)
        src_shape = src.shape
    _indexing.check_scatter_shapes(fn, input.shape, index.shape, src_shape, dim)
    if index.size:  # the scatter addresses the input with flat keys
        _dtypes.key_dtype_for(fn, math.prod(input.shape))
    if mode is None:
        size = input.shape[dim] if input.ndim else 1
        _indexing.check_bounds_eagerly(fn, wide, dim, size, scatter=True)
    return input, dim, index, src, wide


def scatter(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    src: ArrayLike,
    *,
    reduce: Literal["add", "multiply"] | None = None,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Writes ``src`` into a copy of ``input`` at ``index``: ``out[index[i][j]][j] = src[i][j]``.

    Mirrors ``torch.Tensor.scatter(dim, index, src, reduce=None)`` (dim=0 formula shown) and
    returns a new array instead of writing in place. ``index.ndim == input.ndim ==
    src.ndim``; ``index.shape[d] <= input.shape[d]`` for ``d != dim`` and ``index.shape[d] <=
    src.shape[d]`` for every ``d`` (only the leading part of ``src`` is read). ``src`` may be a
    Python scalar (cast to ``input``'s dtype, as torch's ``value=`` form).

    Args:
      input: array ``[..., N, ...]`` with ``N`` at ``dim``; any dtype.
      dim: axis to scatter along; negative values count from the end. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype and ``index``'s ndim, or a Python scalar.
      reduce: None (overwrite), ``'add'`` or ``'multiply'``. Static.
      mode: what an out-of-range index value does: None (default: ``IndexError`` for a
        concrete index; under jit the update is dropped and checkify reports it),
        ``'drop'`` (drop, also eagerly), ``'clip'`` (clamp into ``[0, size - 1]``) or
        ``'promise_in_bounds'`` (the caller promises; unspecified otherwise). Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError: non-integer ``index``, or ``src`` dtype differs from ``input`` dtype.
      IndexError: ``dim`` out of range, or (mode None) a concrete index value out of range.
      ValueError: rank mismatch, ``index`` larger than ``input`` off ``dim`` or than ``src``,
        unknown ``reduce`` or ``mode``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter
      >>> src = jnp.arange(1, 11).reshape(2, 5)
      >>> scatter(jnp.zeros((3, 5), src.dtype), 0, jnp.array([[0, 1, 2, 0]]), src)
      Array([[1, 0, 0, 4, 0],
             [0, 2, 0, 0, 0],
             [0, 0, 3, 0, 0]], dtype=int32)

    Duplicate indices: torch leaves the winner unspecified; here the *last* one along ``dim``
    wins (largest position in ``index`` along ``dim``), on every backend. ``reduce='add'`` /
    ``'multiply'`` equal ``scatter_reduce(..., 'sum' / 'prod')`` with ``include_self=True``.

    Gradient: w.r.t. ``input``, the cotangent with overwritten positions zeroed (as torch);
    w.r.t. ``src``, the cotangent gathered at ``index`` for the winning entries and zero for
    the overwritten duplicates (torch gives every duplicate the gradient; jgather gives the
    true derivative of what it computed).
    """
    fn = "scatter"
    _checks.one_of(
        fn,
        "reduce",
        reduce,
        tuple(_SCATTER_REDUCE),
        hint="For 'mean', 'amax', 'amin' use scatter_reduce.",
    )
    input, dim, index, src, wide = _prepare(fn, input, dim, index, src, mode)
    op = _SCATTER_REDUCE[reduce]
    return _engine.scatter(
        input, index, src, dim=dim, op=op, mode=mode, include_self=True, wide=wide
    )


def scatter_add(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    src: ArrayLike,
    *,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Adds ``src`` into a copy of ``input`` at ``index``: ``out[index[i][j]][j] += src[i][j]``.

    Mirrors ``torch.Tensor.scatter_add(dim, index, src)`` (dim=0 formula shown); duplicates
    accumulate (bf16/fp16/float8 in float32, rounded once). Same shape rules as
    :func:`scatter`; lowers to one ``lax.scatter_add`` on flattened keys. Gradients are
    torch's: the cotangent itself w.r.t. ``input`` and the cotangent gathered at ``index``
    w.r.t. ``src`` (zero for dropped out-of-range entries).

    Args:
      input: array ``[..., N, ...]``; any dtype (bool adds as logical or).
      dim: axis to scatter along. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype with ``index``'s ndim (or a Python scalar).
      mode: out-of-range behaviour, as in :func:`scatter`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError, IndexError, ValueError: as :func:`scatter`.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter_add
      >>> scatter_add(jnp.zeros(3), 0, jnp.array([0, 2, 0, 2, 2]), jnp.ones(5))
      Array([2., 0., 3.], dtype=float32)
    """
    input, dim, index, src, wide = _prepare("scatter_add", input, dim, index, src, mode)
    return _engine.scatter(
        input, index, src, dim=dim, op="sum", mode=mode, include_self=True, wide=wide
    )


def scatter_reduce(
    input: ArrayLike,
    dim: int,
    index: ArrayLike,
    src: ArrayLike,
    reduce: Literal["sum", "prod", "mean", "amax", "amin", "max", "min"],
    *,
    include_self: bool = True,
    mode: Literal["clip", "drop", "promise_in_bounds"] | None = None,
) -> jax.Array:
    """Reduces ``src`` into a copy of ``input`` at ``index`` with 'sum', 'prod', 'mean', 'amax'
    or 'amin'.

    Mirrors ``torch.Tensor.scatter_reduce(dim, index, src, reduce, include_self=True)``.

    Args:
      input: array ``[..., N, ...]``; any dtype.
      dim: axis to scatter along. Static.
      index: integer array, same ndim as ``input``.
      src: array of ``input``'s dtype with ``index``'s ndim (or a Python scalar).
      reduce: one of ``'sum'``, ``'prod'``, ``'mean'``, ``'amax'``, ``'amin'`` (``'max'`` and
        ``'min'`` are accepted for ``'amax'`` and ``'amin'``, as torch does). Static.
      include_self: whether ``input``'s values take part in the reduction. Static.
      mode: out-of-range behaviour, as in :func:`scatter`. Static.

    Returns:
      Array with ``input``'s shape and dtype.

    Raises:
      TypeError, IndexError, ValueError: as :func:`scatter`; also ``ValueError`` for an
        unknown ``reduce``, ``TypeError`` for bool 'mean' and for complex 'amax'/'amin'
        (complex numbers have no order; torch raises too).

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import scatter_reduce
      >>> src = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
      >>> index = jnp.array([0, 1, 0, 1, 2, 1])
      >>> scatter_reduce(jnp.array([1.0, 2.0, 3.0, 4.0]), 0, index, src, "sum")
      Array([ 5., 14.,  8.,  4.], dtype=float32)
      >>> scatter_reduce(jnp.array([1.0, 2.0, 3.0, 4.0]), 0, index, src, "amax",
      ...                include_self=False)
      Array([3., 6., 5., 4.], dtype=float32)

    Each output position is the reduction of every ``src`` value scattered to it, together with
    the ``input`` value when ``include_self`` is True. With ``include_self=False`` positions
    that receive nothing keep ``input``. ``'mean'`` divides by the number of contributions
    (counting ``input`` when included); integer means are floored (towards -inf) as in torch,
    from the sum in the input's dtype (which wraps, as torch's does). Sums and means of bf16,
    fp16 and float8 accumulate in float32 and round once.
    ``'amax'``/``'amin'`` propagate NaN. For bool, 'sum'/'amax' are "or" and 'prod'/'amin'
    are "and"; bool 'mean' raises ``TypeError`` (torch does not implement it).

    Gradients (floating dtypes): 'sum' and 'mean' as torch (the cotangent, divided by the
    count for 'mean', gathered at ``index`` for ``src``; zero for ``input`` where excluded).
    'amax'/'amin' split the cotangent evenly among all tied maxima/minima, ``input``
    included when ``include_self`` (torch's rule). With ``include_self=False`` jgather does
    not count the excluded ``input`` among the ties (torch does, so its ``src`` gradients
    then sum to less than one). A NaN result gives NaN gradients to every entry reduced into
    it, as torch's 0/0 share does. 'prod': each factor gets the cotangent times the product
    of the other factors of its position, computed without dividing by zeros (torch's
    masking), so a single zero factor gets the product of the rest.

    Signed zeros: 'amax' orders ``-0.0 < +0.0`` and 'amin' the same, on every backend, so a
    tie between the two gives ``+0.0`` for 'amax' and ``-0.0`` for 'amin' whatever the order
    of the entries. torch's CPU kernel keeps whichever of the tied zeros comes first (the
    input, then ``src`` in index order) and its CUDA kernel whichever its atomics see first;
    the values compare equal either way.
    """
    fn = "scatter_reduce"
    if isinstance(reduce, str):
        reduce = _REDUCE_ALIASES.get(reduce, reduce)  # type: ignore[assignment]
    _checks.one_of(
        fn,
        "reduce",
        reduce,
        _REDUCTIONS,
        hint="('max' and 'min' are accepted for 'amax' and 'amin', as in torch.)",
    )
    _checks.static_bool(fn, "include_self", include_self)
    input, dim, index, src, wide = _prepare(fn, input, dim, index, src, mode)
    if reduce in ("amax", "amin"):
        _dtypes.check_ordered(fn, input.dtype, reduce)
    if reduce == "mean" and input.dtype == jnp.bool_:
        raise TypeError(
            f"{fn}: reduce='mean' is not defined for bool arrays (torch does not implement it "
            "either); cast input and src to an integer or float dtype first."
        )
    return _engine.scatter(
        input, index, src, dim=dim, op=reduce, mode=mode, include_self=include_self, wide=wide
    )
