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

__all__ = ["explain", "infer_gather"]


def _normalize_dim(fn: str, dim: Any, ndim: int) -> int:
    try:
        d = operator.index(dim)
    except TypeError:
        raise TypeError(
            f"{fn}: dim must be an integer, got {type(dim).__name__} ({dim!r})."
        ) from None
    rank = max(ndim, 1)  # torch treats a 0-d tensor as having one dimension here
    if not -rank <= d < rank:
        raise IndexError(
            f"{fn}: dim={d} is out of range for a {ndim}-d input; "
            f"expected an integer in [{-rank}, {rank - 1}]."
        )
    return d % rank


def _concrete(fn: str, name: str, value: Any) -> np.ndarray:
    if isinstance(value, jax.core.Tracer):
        raise TypeError(
            f"{fn}: {name} is a traced value; {fn} inspects concrete values on the host and "
            "cannot run under jax.jit, jax.vmap or jax.grad. Call it outside the transform."
        )
    return np.asarray(value)


def _fmt(coords: Sequence[Any]) -> str:
    return ", ".join(str(c) for c in coords)


def explain(input: Any, dim: int, index: Any, position: Sequence[int]) -> str:
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
    if not np.issubdtype(idx.dtype, np.integer):
        raise TypeError(f"{fn}: index must be an integer array, got dtype {idx.dtype}.")
    if idx.ndim != x.ndim:
        raise ValueError(
            f"{fn}: index must have the same number of dimensions as input "
            f"(torch.gather's rule), got input.ndim={x.ndim} and index.ndim={idx.ndim}."
        )
    d = _normalize_dim(fn, dim, x.ndim)
    for ax in range(x.ndim):
        if ax != d and idx.shape[ax] > x.shape[ax]:
            raise ValueError(
                f"{fn}: index.shape[{ax}]={idx.shape[ax]} exceeds input.shape[{ax}]="
                f"{x.shape[ax]}; torch.gather requires index.size(d) <= input.size(d) for "
                f"every d != dim (here dim={d})."
            )
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


def infer_gather(input: Any, output: Any) -> list[tuple[int, jnp.ndarray]]:
    """Finds every ``(dim, index)`` for which ``gather(input, dim, index)`` equals ``output``.

    The backward reading of ``torch.gather``: the output has the index's shape, and every
    output cell ``p`` must equal ``input`` at ``p`` with one coordinate (along ``dim``)
    changed. For each candidate ``dim`` this looks up, for every output cell, the input
    fibre through ``p`` along ``dim`` and searches it for the cell's value. When a value
    occurs more than once in its fibre, the first (smallest) position is returned. Values
    compare with ``==`` after NumPy type promotion, except that NaN matches NaN.

    The search is vectorised (one sort of the value set, then one sort and one
    ``searchsorted`` per candidate ``dim``), so arrays of millions of elements take well
    under a second per candidate. It runs on the host and cannot be jit-compiled.

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

    # Replace values by dense integer ranks over the union of both arrays, so that the
    # per-fibre search below works on int64 keys whatever the dtype (NaNs share one rank).
    _, inverse = np.unique(np.concatenate([x.ravel(), y.ravel()]), return_inverse=True)
    num_values = int(inverse.max()) + 1 if inverse.size else 1
    inverse = inverse.astype(np.int64, copy=False)
    x_rank = inverse[: x.size].reshape(x.shape)
    y_rank = inverse[x.size :].reshape(y.shape)

    found: list[tuple[int, jnp.ndarray]] = []
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
        index = _search_dim(x_rank, y_rank, d, num_values)
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


def _search_dim(x_rank: np.ndarray, y_rank: np.ndarray, d: int, num_values: int):
    """Index along ``d`` of the first match of every output cell in its input fibre."""
    # Crop input to output's extent on every axis but d, and put d last: fibres are rows.
    crop = tuple(slice(None) if ax == d else slice(0, n) for ax, n in enumerate(y_rank.shape))
    rows = np.moveaxis(x_rank[crop], d, -1)  # [F..., S]
    queries = np.moveaxis(y_rank, d, -1)  # [F..., K]
    size = rows.shape[-1]
    rows = rows.reshape(-1, size)
    queries = queries.reshape(rows.shape[0], -1)
    # Stable row-wise sort keeps equal values in input order, so a left search hits the
    # first occurrence. Adding row * num_values makes the flattened keys globally sorted.
    order = np.argsort(rows, axis=-1, kind="stable")
    offset = np.arange(rows.shape[0], dtype=np.int64)[:, None] * num_values
    keys = (np.take_along_axis(rows, order, axis=-1) + offset).ravel()
    wanted = (queries + offset).ravel()
    at = np.searchsorted(keys, wanted, side="left")
    hit = at < keys.size
    hit[hit] = keys[at[hit]] == wanted[hit]
    if not hit.all():
        return None
    at = at.reshape(queries.shape) - np.arange(rows.shape[0], dtype=np.int64)[:, None] * size
    index = np.take_along_axis(order, at, axis=-1)
    shape = np.moveaxis(y_rank, d, -1).shape
    return np.moveaxis(index.reshape(shape), -1, d)
