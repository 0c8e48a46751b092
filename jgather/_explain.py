"""Exploration helpers: read a gather forwards (``explain``) and backwards (``infer_gather``).

``torch.gather(input, dim, index)`` fills each output cell by copying the output's own
coordinates, replacing the one along ``dim`` with the index value found at that cell:
for a 3-D input and ``dim=1``, ``out[i][j][k] = input[i][index[i][j][k]][k]``.
``explain`` prints that substitution for one cell; ``infer_gather`` runs it in reverse and
recovers every ``(dim, index)`` that turns a given input into a given output.

Both are host-side NumPy tools for notebooks and the command line, not jit-able functions.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt

from jgather import _checks, _indexing

__all__ = ["explain", "infer_gather"]


def _concrete(fn: str, name: str, value: Any) -> np.ndarray:
    if _checks.is_traced(value):
        raise TypeError(
            f"{fn}: {name} is a traced value; {fn} inspects concrete values on the host and "
            "cannot run under jax.jit, jax.vmap or jax.grad. Call it outside the transform."
        )
    array = np.asarray(value)
    if array.dtype.kind not in "biufc":
        raise TypeError(
            f"{fn}: {name} must be a numeric array, got {type(value).__name__} of dtype "
            f"{array.dtype}; pass a NumPy or JAX array."
        )
    return array


def _fmt(coords: Sequence[Any]) -> str:
    return ", ".join(str(c) for c in coords)


def explain(
    input: npt.ArrayLike, dim: int, index: npt.ArrayLike, position: int | Sequence[int]
) -> str:
    """Explains, for one output cell, where ``gather(input, dim, index)`` reads its value.

    Follows ``torch.gather``'s rule: output position ``p`` reads ``input`` at ``p`` with its
    coordinate along ``dim`` replaced by ``index[p]``. For the 3-D example of the
    ``torch.gather`` documentation and ``dim=1`` that is
    ``out[i][j][k] = input[i][index[i][j][k]][k]``.

    Args:
      input: array of any rank (NumPy, JAX or anything ``np.asarray`` accepts).
      dim: the gathered dimension; negative values count from the end.
      index: integer array with ``input``'s rank; the output has ``index``'s shape.
      position: one coordinate per output dimension; negative values count from the end,
        as in Python indexing.

    Returns:
      One line of text: ``out[p] = input[p with index[p] along dim] = input[q] = value``.

    Raises:
      TypeError: ``index`` is not integer-valued, ``dim``/``position`` hold non-integers, or
        an array is traced (``explain`` runs on the host, outside ``jax.jit``).
      ValueError: ranks differ, ``index`` is larger than ``input`` along a dimension other
        than ``dim`` (torch forbids that), or ``position`` has the wrong length.
      IndexError: ``dim`` is out of range, ``position`` lies outside the output, or the index
        value there is outside ``[0, input.shape[dim])``.

    Example:
      >>> import numpy as np
      >>> import jgather
      >>> x = np.arange(24).reshape(2, 3, 4)
      >>> index = np.array([[[0, 0, 0, 0], [2, 2, 2, 2]]] * 2)
      >>> print(jgather.explain(x, 1, index, (0, 1, 0)))
      out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8
    """
    fn = "explain"
    x = _concrete(fn, "input", input)
    idx = _concrete(fn, "index", index)
    _indexing.check_index_dtype(fn, idx)
    _indexing.check_same_ndim(fn, x.shape, idx.shape)
    if idx.ndim != x.ndim:  # as in torch, a 0-d array pairs with a 1-D one of size 1
        x, idx = x.reshape(-1), idx.reshape(-1)
    d = _indexing.canonical_dim(fn, dim, x.ndim)
    _indexing.check_gather_shapes(fn, x.shape, idx.shape, d)
    if isinstance(position, (int, np.integer)):
        position = (position,)
    try:
        pos = tuple(operator.index(p) for p in position)
    except TypeError:
        raise TypeError(
            f"{fn}: position must be a sequence of integers, got {position!r}."
        ) from None
    if len(pos) != idx.ndim:
        raise ValueError(
            f"{fn}: position needs one coordinate per output dimension ({idx.ndim}), "
            f"got {len(pos)}: {pos}."
        )
    out_pos = []
    for ax, (p, size) in enumerate(zip(pos, idx.shape, strict=True)):
        if not -size <= p < size:
            raise IndexError(
                f"{fn}: position {pos} lies outside the output of shape {idx.shape} "
                f"(coordinate {ax} must be in [{-size}, {size - 1}])."
            )
        out_pos.append(p % size)
    i = int(idx[tuple(out_pos)])
    if x.ndim == 0:
        if i != 0:
            raise IndexError(f"{fn}: index[()] = {i}, but a 0-d input only has position 0.")
        return f"out[] = input[] = {x.item()!r}"
    if not 0 <= i < x.shape[d]:
        raise IndexError(
            f"{fn}: index[{_fmt(out_pos)}] = {i} is outside [0, {x.shape[d]}) along dim {d}; "
            "torch.gather raises here, so there is no value to read."
        )
    src = list(out_pos)
    src[d] = i
    symbolic = [str(c) for c in out_pos]
    symbolic[d] = f"index[{_fmt(out_pos)}]"
    value = x[tuple(src)].item()
    return f"out[{_fmt(out_pos)}] = input[{_fmt(symbolic)}] = input[{_fmt(src)}] = {value!r}"


def infer_gather(input: npt.ArrayLike, output: npt.ArrayLike) -> list[tuple[int, jax.Array]]:
    """Finds every ``(dim, index)`` for which ``gather(input, dim, index)`` equals ``output``.

    The backward reading of ``torch.gather``: the output has the index's shape, and every
    output cell ``p`` must equal ``input`` at ``p`` with one coordinate (along ``dim``)
    changed. For each candidate ``dim`` this looks up, for every output cell, the input
    fibre through ``p`` along ``dim`` and searches it for the cell's value. When a value
    occurs more than once in its fibre, the first (smallest) position is returned. Values
    compare with ``==`` after NumPy type promotion, except that NaN matches NaN.

    Args:
      input: array of any rank >= 1 (NumPy, JAX or anything ``np.asarray`` accepts).
      output: array with ``input``'s rank, at most ``input``'s size along every dimension
        but ``dim``.

    Returns:
      A list of ``(dim, index)`` pairs in increasing ``dim``: ``dim`` a non-negative int and
      ``index`` an int32 ``jax.Array`` of ``output``'s shape such that
      ``jgather.gather(input, dim, index)`` reproduces ``output``.

    Raises:
      TypeError: an array is traced (the search runs on the host, outside ``jax.jit``).
      ValueError: the ranks differ, ``input`` is 0-d, or no ``dim`` and ``index`` reproduce
        ``output``; the message says why for each ``dim``.

    Example:
      >>> import numpy as np
      >>> import jgather
      >>> x = np.arange(24).reshape(2, 3, 4)
      >>> out = np.array([[[0, 1, 2, 3], [8, 9, 10, 11]], [[12, 13, 14, 15], [20, 21, 22, 23]]])
      >>> [(dim, index[0, :, 0].tolist()) for dim, index in jgather.infer_gather(x, out)]
      [(1, [0, 2])]

    The search is vectorised: a few sampled cells rule out most wrong ``dim`` at once, and
    each remaining candidate costs one row-wise sort of every fibre merged with its queries,
    so arrays of a million elements take well under a second. It runs on the host and cannot
    be jit-compiled.
    """
    fn = "infer_gather"
    x = _concrete(fn, "input", input)
    y = _concrete(fn, "output", output)
    if x.ndim == 0:
        raise ValueError(f"{fn}: input must have at least one dimension, got a 0-d array.")
    if y.ndim != x.ndim:
        raise ValueError(
            f"{fn}: output must have input's number of dimensions (gather keeps the rank), "
            f"got input.shape={x.shape} and output.shape={y.shape}."
        )

    x, y = _common_integers(fn, x, y)
    found: list[tuple[int, jax.Array]] = []
    reasons: list[str] = []
    for d in range(x.ndim):
        too_big = [ax for ax in range(x.ndim) if ax != d and y.shape[ax] > x.shape[ax]]
        if too_big:
            ax = too_big[0]
            reasons.append(
                f"dim={d}: output.shape[{ax}]={y.shape[ax]} > input.shape[{ax}]={x.shape[ax]}"
            )
            continue
        if y.size == 0:
            found.append((d, jnp.zeros(y.shape, jnp.int32)))
            continue
        if x.shape[d] == 0:
            reasons.append(f"dim={d}: input.shape[{d}] is 0, nothing to read")
            continue
        index = None if _quick_reject(x, y, d) else _search_dim(x, y, d)
        if index is None:
            reasons.append(f"dim={d}: some output values are absent from their input fibre")
            continue
        found.append((d, jnp.asarray(index, dtype=jnp.int32)))
    if not found:
        raise ValueError(
            f"{fn}: no (dim, index) makes gather(input, dim, index) equal output "
            f"(input.shape={x.shape}, output.shape={y.shape}): " + "; ".join(reasons) + "."
        )
    return found


def _fits(values: np.ndarray, dtype: np.dtype) -> bool:
    info = np.iinfo(dtype)
    return values.size == 0 or (int(values.min()) >= info.min and int(values.max()) <= info.max)


def _common_integers(fn: str, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer arrays in one integer dtype, where NumPy would promote them to float64.

    uint64 with a signed dtype promotes to float64, which merges values above 2**53 (two
    different input values would match one output value). When the values of one array fit
    the other's dtype the search runs in that dtype, exactly; otherwise some output value
    cannot occur in the input at all.
    """
    if x.dtype.kind not in "iu" or y.dtype.kind not in "iu":
        return x, y
    if np.result_type(x.dtype, y.dtype).kind in "iu":
        return x, y
    if _fits(y, x.dtype):
        return x, y.astype(x.dtype)
    if _fits(x, y.dtype):
        return x.astype(y.dtype), y
    raise ValueError(
        f"{fn}: no (dim, index) makes gather(input, dim, index) equal output: output "
        f"({y.dtype}) holds values that input ({x.dtype}) cannot hold, so they are absent "
        "from every input fibre."
    )


def _fibres(x: np.ndarray, y: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Fibres along ``d``: ``(rows, queries, shape)``.

    ``rows`` [F, S] are the input's fibres (cropped to the output's extent off ``d``),
    ``queries`` [F, K] the output's, and ``shape`` the output's shape with ``d`` moved last
    (to put per-query results back in place).
    """
    crop = tuple(slice(None) if ax == d else slice(0, n) for ax, n in enumerate(y.shape))
    rows = np.moveaxis(x[crop], d, -1)
    queries = np.moveaxis(y, d, -1)
    return rows.reshape(-1, rows.shape[-1]), queries.reshape(-1, queries.shape[-1]), queries.shape


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality in which NaN equals NaN."""
    return (a == b) | ((a != a) & (b != b))


def _quick_reject(x: np.ndarray, y: np.ndarray, d: int, samples: int = 64) -> bool:
    """True when a few evenly spread output cells already have no match in their fibre."""
    rows, queries, _ = _fibres(x, y, d)
    num_fibres, k = queries.shape
    flat = np.linspace(0, num_fibres * k - 1, min(samples, num_fibres * k)).astype(np.int64)
    f, j = np.divmod(flat, k)
    return not _same(rows[f], queries[f, j][:, None]).any(axis=1).all()


def _search_dim(x: np.ndarray, y: np.ndarray, d: int) -> np.ndarray | None:
    """Index along ``d`` of the first match of every output cell in its input fibre."""
    rows, queries, shape = _fibres(x, y, d)
    num_fibres, size = rows.shape
    k = queries.shape[1]
    # Sort each fibre together with its queries. The sort is stable and the fibre comes first,
    # so within a run of equal values the input entries precede the queries, in input order:
    # a run's first entry is the first occurrence in the fibre, or a query if there is none.
    merged = np.concatenate([rows, queries], axis=1)  # [F, S + K], common dtype
    order = np.argsort(merged, axis=1, kind="stable")
    values = np.take_along_axis(merged, order, axis=1)
    run_start = np.ones(values.shape, bool)
    run_start[:, 1:] = ~_same(values[:, 1:], values[:, :-1])
    start = np.where(run_start, np.arange(size + k), 0)
    np.maximum.accumulate(start, axis=1, out=start)
    first = np.take_along_axis(order, start, axis=1)  # merged position heading each run
    is_query = order >= size
    found = first[is_query].reshape(num_fibres, k)  # each fibre holds exactly k queries
    if (found >= size).any():
        return None
    index = np.empty((num_fibres, k), np.int64)
    np.put_along_axis(index, order[is_query].reshape(num_fibres, k) - size, found, axis=1)
    return np.moveaxis(index.reshape(shape), -1, d)
