"""What ``embedding`` and ``embedding_bag`` share: the table's checks and the rows they read.

The weight, ``padding_idx``, ``max_norm`` and index checks, and the rows read from the table
with torch's gradient rules (``padding_idx`` rows get none, ``scale_grad_by_freq`` divides by
an index's frequency, ``max_norm`` rows are read renormalised with no gradient through the
scale).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jgather import _checks, _dtypes, _engine, _indexing


def weight_of(fn: str, weight: Any, *, floating: bool) -> jax.Array:
    weight = _checks.as_array(fn, "weight", weight)
    if weight.ndim != 2:
        raise ValueError(
            f"{fn}: weight must be 2-D [num_embeddings, embedding_dim], got shape "
            f"{weight.shape} (torch: \"'weight' must be 2-D\")."
        )
    if floating and not jnp.issubdtype(weight.dtype, jnp.floating):
        raise TypeError(
            f"{fn}: weight must have a floating dtype (float16, bfloat16, float32 or float64, as "
            f"in torch), got {weight.dtype}; cast it with weight.astype(jnp.float32)."
        )
    return weight


def padding_index(fn: str, padding_idx: Any, num_embeddings: int) -> int | None:
    """``padding_idx`` in ``[0, num_embeddings)`` (negative values count from the end)."""
    if padding_idx is None:
        return None
    value = _checks.static_int(fn, "padding_idx", padding_idx, what="which row is padding")
    if not -num_embeddings <= value < num_embeddings:
        raise IndexError(
            f"{fn}: padding_idx {value} is out of range for a weight with {num_embeddings} "
            f"rows; pass a value in [{-num_embeddings}, {num_embeddings - 1}] or None."
        )
    return value % num_embeddings


def renorm_of(fn: str, max_norm: Any, norm_type: Any) -> tuple[float, float] | None:
    """``(max_norm, norm_type)`` as static floats, or None without ``max_norm``."""
    if max_norm is None:
        return None
    what = "the renormalisation"
    limit = _checks.static_float(fn, "max_norm", max_norm, what=what)
    if isinstance(norm_type, bool | str | bytes) or np.ndim(norm_type) != 0:
        raise TypeError(f"{fn}: norm_type must be a real number, got {norm_type!r}.")
    if _checks.is_traced(norm_type):
        raise _checks.traced_where_static(fn, "norm_type", "float", what)
    return limit, float(norm_type)


def lookup(weight: jax.Array, index: jax.Array, *, dropped: bool = False) -> jax.Array:
    """``weight[index]`` for a 1-D index [n]: rows [n, D]; out-of-range rows read NaN (floats)
    or the dtype's fill (lax's ``FILL_OR_DROP``), or, where the caller drops those entries
    itself (``dropped``), a clamped row (a gather XLA:CPU runs faster). The gradient
    accumulates in float32 for reduced floats."""
    size = weight.shape[0]
    if dropped:
        _indexing.probe(index, size)  # checkify reports the caller's value
        index = _indexing.prepare(index, size, "clip")
        mode = lax.GatherScatterMode.PROMISE_IN_BOUNDS
    else:
        index = _indexing.prepare(index, size, None, probe_lossy=True)
        mode = lax.GatherScatterMode.FILL_OR_DROP
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,)
    )

    def take(w: jax.Array, i: jax.Array) -> jax.Array:
        return lax.gather(w, i[:, None], dnums, (1, w.shape[1]), mode=mode)

    return _dtypes.gather_upcast_transpose(take, weight, index)


def norms(rows: jax.Array, p: float) -> jax.Array:
    """torch's ``vector_norm(row, p)`` of each row [n, D] -> [n], accumulated in float32 for
    reduced floats and rounded to the rows' dtype."""
    acc = _dtypes.accumulation_dtype(rows.dtype)
    a = jnp.abs(rows.astype(acc))
    if p == np.inf:
        out = jnp.max(a, axis=1, initial=0)
    elif p == -np.inf:
        out = jnp.min(a, axis=1, initial=np.inf)
    elif p == 0:
        out = jnp.sum(a != 0, axis=1).astype(acc)
    elif p == 1:
        out = jnp.sum(a, axis=1)
    elif p == 2:
        out = jnp.sqrt(jnp.sum(a * a, axis=1))
    else:
        out = jnp.sum(a**p, axis=1) ** (1 / p)
    return out.astype(jnp.finfo(rows.dtype).dtype)  # complex rows have real norms


def renormed(rows: jax.Array, limit: float, p: float) -> jax.Array:
    """The rows torch reads after ``embedding_renorm_``: a row whose ``p``-norm exceeds
    ``limit`` is scaled by ``limit / (norm + 1e-7)`` (in float64 where x64 is on, as torch's
    double, else float32), rounded to the rows' dtype and applied in float32 or wider."""
    rows = lax.stop_gradient(rows)
    norm = norms(rows, p)
    wide = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    scale = limit / (norm.astype(wide) + 1e-7)
    acc = _dtypes.accumulation_dtype(rows.dtype)
    # torch multiplies by the scale as a scalar of the rows' dtype (rounded to it first).
    scale = scale.astype(jnp.finfo(rows.dtype).dtype).astype(jnp.finfo(acc).dtype)
    scaled = (rows.astype(acc) * scale[:, None]).astype(rows.dtype)
    return jnp.where((norm.astype(wide) > limit)[:, None], scaled, rows)


@jax.custom_jvp
def reads(rows: jax.Array, shown: jax.Array, grad_scale: jax.Array) -> jax.Array:
    """``shown`` (rows [n, D] as torch reads them) with the derivative of ``rows`` scaled per
    row by ``grad_scale`` [n]: torch's ``max_norm`` renormalises the weight in place, outside
    autograd, so the gradient w.r.t. ``weight`` is that of the plain lookup; its
    ``scale_grad_by_freq`` and ``padding_idx`` scale a row's gradient (by 1/count, by 0)."""
    del rows, grad_scale
    return shown


@reads.defjvp
def _reads_jvp(
    primals: tuple[jax.Array, jax.Array, jax.Array], tangents: tuple[Any, Any, Any]
) -> tuple[jax.Array, jax.Array]:
    _, shown, grad_scale = primals
    t = tangents[0]
    return shown, t * grad_scale.astype(t.dtype)[:, None]


def frequency(index: jax.Array, size: int) -> jax.Array:
    """How often each entry's value occurs in ``index`` [n] (out-of-range values: 1)."""
    ones = jnp.ones((), jnp.int32)
    counts = _engine.scatter(
        jnp.zeros((size,), jnp.int32), index, ones, dim=0, op="sum", mode="drop"
    )
    safe = _indexing.clamp(_indexing.narrow_index(_indexing.widen_index(index), size), size)
    return jnp.maximum(counts[safe], 1)


def torch_rows(
    weight: jax.Array,
    index: jax.Array,
    padding_idx: int | None,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
    *,
    dropped: bool = False,
) -> jax.Array:
    """The rows [n, D] torch's lookup reads for a 1-D index [n], with torch's gradient
    (``dropped``: the caller drops out-of-range entries; see :func:`lookup`)."""
    rows = lookup(weight, index, dropped=dropped)
    if not jnp.issubdtype(rows.dtype, jnp.inexact):  # no gradient, no renormalisation
        return rows
    if padding_idx is None and renorm is None and not scale_grad_by_freq:
        return rows
    shown = rows if renorm is None else renormed(rows, *renorm)
    grad_scale = jnp.ones(index.shape, jnp.finfo(rows.dtype).dtype)
    if scale_grad_by_freq:
        grad_scale = 1 / frequency(index, weight.shape[0]).astype(
            _dtypes.accumulation_dtype(rows.dtype)
        )
    if padding_idx is not None:
        grad_scale = jnp.where(index == padding_idx, 0, grad_scale)
    return reads(rows, lax.stop_gradient(shown), lax.stop_gradient(grad_scale))


def index_of(fn: str, input: Any) -> tuple[jax.Array, Any]:
    index, wide = _indexing.as_index(fn, "input", input)
    _indexing.check_index_dtype(fn, index, "input")
    return index, wide


def check_values(fn: str, wide: Any, size: int) -> None:
    """torch's ``IndexError`` for a concrete index value outside ``[0, size)``."""
    if _checks.is_traced(wide):
        return
    values = np.asarray(wide).reshape(-1)
    if values.size and (values.min() < 0 or values.max() >= size):
        bad = values[(values < 0) | (values >= size)][0]
        raise IndexError(
            f"{fn}: index {int(bad)} is out of range for a weight with {size} rows (torch: "
            f"'index out of range in self'); input values must lie in [0, {size})."
        )
