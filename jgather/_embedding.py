"""Embedding lookups with torch semantics: ``embedding`` and ``embedding_bag``.

``embedding`` is a gather of rows; ``embedding_bag`` a gather of rows followed by a reduction
over bags, handed to the scatter engine (``jgather._engine.scatter``) as whole-row sums,
maxima and minima into a ``[num_bags, D]`` operand. Both check their arguments at trace time
and a concrete index's (and offsets') values eagerly, with torch's rules.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _engine, _indexing, _sharding

__all__ = ["embedding", "embedding_bag"]

BagMode = Literal["sum", "mean", "max"]
_BAG_MODES = ("sum", "mean", "max")


# --------------------------------------------------------------------------------------------
# Shared checks and pieces.


def _weight(fn: str, weight: Any, *, floating: bool) -> jax.Array:
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


def _padding_idx(fn: str, padding_idx: Any, num_embeddings: int) -> int | None:
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


def _renorm(fn: str, max_norm: Any, norm_type: Any) -> tuple[float, float] | None:
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


def _lookup(weight: jax.Array, index: jax.Array) -> jax.Array:
    """``weight[index]`` for a 1-D index [n]: rows [n, D]; out-of-range rows read NaN (floats)
    or the dtype's fill (lax's ``FILL_OR_DROP``). The gradient accumulates in float32 for
    reduced floats."""
    size = weight.shape[0]
    if _indexing.narrows_lossily(index):
        _indexing.probe(index, size)  # checkify reports the caller's full-width value
    index = _indexing.narrow_index(index, size)
    dnums = lax.GatherDimensionNumbers(
        offset_dims=(1,), collapsed_slice_dims=(0,), start_index_map=(0,)
    )

    def take(w: jax.Array, i: jax.Array) -> jax.Array:
        return lax.gather(
            w, i[:, None], dnums, (1, w.shape[1]), mode=lax.GatherScatterMode.FILL_OR_DROP
        )

    return _dtypes.gather_upcast_transpose(take, weight, index)


def _norms(rows: jax.Array, p: float) -> jax.Array:
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


def _renormed(rows: jax.Array, limit: float, p: float) -> jax.Array:
    """The rows torch reads after ``embedding_renorm_``: a row whose ``p``-norm exceeds
    ``limit`` is scaled by ``limit / (norm + 1e-7)`` (in float64 where x64 is on, as torch's
    double, else float32), rounded to the rows' dtype and applied in float32 or wider."""
    rows = lax.stop_gradient(rows)
    norm = _norms(rows, p)
    wide = jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    scale = limit / (norm.astype(wide) + 1e-7)
    acc = _dtypes.accumulation_dtype(rows.dtype)
    # torch multiplies by the scale as a scalar of the rows' dtype (rounded to it first).
    scale = scale.astype(jnp.finfo(rows.dtype).dtype).astype(jnp.finfo(acc).dtype)
    scaled = (rows.astype(acc) * scale[:, None]).astype(rows.dtype)
    return jnp.where((norm.astype(wide) > limit)[:, None], scaled, rows)


@jax.custom_jvp
def _reads(rows: jax.Array, shown: jax.Array, grad_scale: jax.Array) -> jax.Array:
    """``shown`` (rows [n, D] as torch reads them) with the derivative of ``rows`` scaled per
    row by ``grad_scale`` [n]: torch's ``max_norm`` renormalises the weight in place, outside
    autograd, so the gradient w.r.t. ``weight`` is that of the plain lookup; its
    ``scale_grad_by_freq`` and ``padding_idx`` scale a row's gradient (by 1/count, by 0)."""
    del rows, grad_scale
    return shown


@_reads.defjvp
def _reads_jvp(
    primals: tuple[jax.Array, jax.Array, jax.Array], tangents: tuple[Any, Any, Any]
) -> tuple[jax.Array, jax.Array]:
    _, shown, grad_scale = primals
    t = tangents[0]
    return shown, t * grad_scale.astype(t.dtype)[:, None]


def _frequency(index: jax.Array, size: int) -> jax.Array:
    """How often each entry's value occurs in ``index`` [n] (out-of-range values: 1)."""
    ones = jnp.ones((), jnp.int32)
    counts = _engine.scatter(
        jnp.zeros((size,), jnp.int32), index, ones, dim=0, op="sum", mode="drop"
    )
    safe = _indexing.clamp(_indexing.narrow_index(_indexing.widen_index(index), size), size)
    return jnp.maximum(counts[safe], 1)


def _torch_rows(
    weight: jax.Array,
    index: jax.Array,
    padding_idx: int | None,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> jax.Array:
    """The rows [n, D] torch's lookup reads for a 1-D index [n], with torch's gradient."""
    rows = _lookup(weight, index)
    if not jnp.issubdtype(rows.dtype, jnp.inexact):  # no gradient, no renormalisation
        return rows
    if padding_idx is None and renorm is None and not scale_grad_by_freq:
        return rows
    shown = rows if renorm is None else _renormed(rows, *renorm)
    grad_scale = jnp.ones(index.shape, jnp.finfo(rows.dtype).dtype)
    if scale_grad_by_freq:
        grad_scale = 1 / _frequency(index, weight.shape[0]).astype(
            _dtypes.accumulation_dtype(rows.dtype)
        )
    if padding_idx is not None:
        grad_scale = jnp.where(index == padding_idx, 0, grad_scale)
    return _reads(rows, lax.stop_gradient(shown), lax.stop_gradient(grad_scale))


def _index(fn: str, input: Any) -> tuple[jax.Array, Any]:
    index, wide = _indexing.as_index(fn, "input", input)
    _indexing.check_index_dtype(fn, index, "input")
    return index, wide


def _check_values(fn: str, wide: Any, size: int) -> None:
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


def _replicated(*arrays: Any) -> list[Any]:
    """The arrays replicated over the mesh one of them is sharded on (a collective, but the
    order of torch's sums where the work cannot be split): explicit axes, or auto axes
    eagerly; as they are without one."""
    sharded = [a for a in arrays if a is not None and _sharding.explicit_mesh(a) is not None]
    if not sharded:
        auto = next((lay for a in arrays if (lay := _sharding.auto_layout(a)) is not None), None)
        if auto is None:
            return list(arrays)
        whole = NamedSharding(auto[0], P())
        return [None if a is None else jax.device_put(a, whole) for a in arrays]
    ref = sharded[0]
    if _checks.is_traced(ref):
        whole = NamedSharding(_sharding.explicit_mesh(ref), P())
        return [None if a is None else jax.sharding.reshard(a, whole) for a in arrays]
    whole = NamedSharding(ref.sharding.mesh, P())  # eager: the concrete mesh
    return [None if a is None else jax.device_put(a, whole) for a in arrays]


def _by_examples(
    fn: Any, index: jax.Array, weight: jax.Array, extra: jax.Array | None, split: int
) -> jax.Array:
    """``fn(index, weight, extra)``, per shard of ``index``'s first ``split`` axes when it is
    sharded over a mesh (explicit axes, or auto axes eagerly): the lookups and bags of
    different examples are independent, so each shard computes its own with the (replicated)
    weight and no communication. Other layouts on an explicit mesh are replicated first (a
    collective, but the right answer); under the caller's ``jax.jit`` an auto-axis layout is
    left to XLA's partitioner."""
    arrays = [a for a in (index, weight, extra) if a is not None]
    mesh = _sharding.explicit_mesh(index)
    spec: tuple[Any, ...] | None = None
    if mesh is not None:
        spec = _sharding.spec_of(index)
        if not _checks.is_traced(index):
            mesh = index.sharding.mesh  # type: ignore[attr-defined]
    else:
        layout = _sharding.auto_layout(index)
        if layout is not None:
            mesh, spec = layout
    if mesh is None or spec is None or not any(spec[:split]):
        return fn(*_replicated(index, weight, extra))
    # The output has the split axes, then one of width D (its last).
    out_spec = (*spec[:split], None)
    ok = [d < split for d in range(index.ndim)]

    def body(i: jax.Array, w: jax.Array, *e: jax.Array) -> jax.Array:
        return fn(i, w, e[0] if e else None)

    return _sharding.per_shard(
        mesh,
        body,
        arrays,
        [ok, [False, False], *([ok] if extra is not None else [])],
        out_spec,
        [True] * split + [False],
        explicit=_sharding.explicit_mesh(*arrays) is not None,
    )


# --------------------------------------------------------------------------------------------
# embedding


@functools.partial(jax.jit, static_argnames=("padding_idx", "renorm", "scale_grad_by_freq"))
def _embedding_core(
    input: jax.Array,
    weight: jax.Array,
    *,
    padding_idx: int | None,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> jax.Array:
    flat = _indexing.widen_index(input.reshape(-1))
    rows = _torch_rows(weight, flat, padding_idx, renorm, scale_grad_by_freq)
    return rows.reshape(*input.shape, weight.shape[1])


def embedding(
    input: ArrayLike,
    weight: ArrayLike,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    """Looks up rows of ``weight``: ``out[..., :] = weight[input[...], :]``.

    Mirrors ``torch.nn.functional.embedding`` (same positional order): one gather of whole
    rows; the gradient w.r.t. ``weight`` is the scatter-add of the output's cotangent rows
    (in float32 for bfloat16 and float16, rounded once).

    Args:
      input: integer array of any shape (int32 or int64 as in torch; narrower integers are
        accepted), values in ``[0, num_embeddings)``.
      weight: array ``[num_embeddings, embedding_dim]``, any dtype.
      padding_idx: a row that gets no gradient (its value is read as usual); negative values
        count from the end. Static.
      max_norm: if given, each row read whose ``norm_type``-norm exceeds ``max_norm`` is
        scaled to norm ``max_norm`` (by ``max_norm / (norm + 1e-7)``, as torch) in the
        output. torch also writes the scaled rows back into ``weight``; ``weight`` here is
        not modified (arrays are immutable). The gradient is torch's: that of the plain
        lookup, not through the scale. Static.
      norm_type: the ``p`` of the norm for ``max_norm`` (``inf`` is the largest absolute
        value). Static.
      scale_grad_by_freq: scale each row's gradient by the inverse of how often its index
        occurs in ``input``, as torch. Static.
      sparse: accepted for torch compatibility and ignored: JAX has no sparse gradients, so
        the gradient is always a dense ``weight``-shaped array.

    Returns:
      Array ``input.shape + [embedding_dim]`` of ``weight``'s dtype.

    Raises:
      TypeError: ``input`` is not of integer dtype, or a static argument has a wrong type.
      ValueError: ``weight`` is not 2-D, or ``max_norm`` is not finite.
      IndexError: ``padding_idx`` is out of range, or a concrete ``input`` value is outside
        ``[0, num_embeddings)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import embedding
      >>> weight = jnp.arange(6.0).reshape(3, 2)
      >>> embedding(jnp.array([[2, 0]]), weight)
      Array([[[4., 5.],
              [0., 1.]]], dtype=float32)

    Under ``jax.jit`` index values are not checked: ``checkify.index_checks`` reports an
    out-of-range value, whose row then reads NaN for floating weights (lax's fill value for
    other dtypes). ``max_norm``'s norm is XLA's reduction of the row (torch's CPU kernel adds
    in order), so a renormalised row may differ from torch's in the last bit.
    """
    fn = "embedding"
    index, wide = _index(fn, input)
    weight = _weight(fn, weight, floating=False)
    padding = _padding_idx(fn, padding_idx, weight.shape[0])
    renorm = _renorm(fn, max_norm, norm_type)
    if renorm is not None and not jnp.issubdtype(weight.dtype, jnp.inexact):
        raise TypeError(
            f"{fn}: max_norm needs a floating or complex weight (a norm), got {weight.dtype}; "
            "cast weight to a float dtype, or leave max_norm None."
        )
    by_freq = _checks.static_bool(fn, "scale_grad_by_freq", scale_grad_by_freq)
    _checks.static_bool(fn, "sparse", sparse)
    _check_values(fn, wide, weight.shape[0])
    core = functools.partial(
        _embedding_core, padding_idx=padding, renorm=renorm, scale_grad_by_freq=by_freq
    )
    if index.ndim == 0:
        return core(index, weight)
    return _by_examples(lambda i, w, _: core(i, w), index, weight, None, index.ndim)


# --------------------------------------------------------------------------------------------
# embedding_bag


def _round_like_torch(total: jax.Array, dtype: Any, ties_away: bool) -> jax.Array:
    """A float32 bag sum rounded to ``dtype`` as torch's CPU kernels round it: to nearest
    even, but bfloat16 with ties away from zero where ``ties_away`` (the kernel torch uses
    without ``padding_idx`` converts by adding half an ulp and truncating). The gradient is
    that of the plain cast."""
    nearest = total.astype(dtype)
    if np.dtype(dtype) != jnp.bfloat16 or not ties_away:
        return nearest
    bits = lax.bitcast_convert_type(lax.stop_gradient(total), jnp.uint32)
    finite = jnp.isfinite(lax.stop_gradient(total))
    half, high = jnp.uint32(0x8000), jnp.uint32(0xFFFF0000)
    away = lax.bitcast_convert_type((bits + half) & high, jnp.float32).astype(dtype)
    differs = finite & (away != lax.stop_gradient(nearest))
    # Adjacent finite values: their difference, and the sum below, are exact in bfloat16.
    return jnp.where(differs, nearest + lax.stop_gradient(away - nearest), nearest)


def _bag_ids(offsets: jax.Array | None, n: int, num_bags: int, bag_len: int) -> jax.Array:
    """The bag of each of the ``n`` entries [n] int32: from the offsets (entry ``j`` is in
    the last bag whose offset is at most ``j``; the first offset is taken as 0), or
    ``j // bag_len`` for 2-D input."""
    if offsets is None:
        return lax.iota(jnp.int32, n) // max(bag_len, 1)
    starts = offsets[1:num_bags]
    if starts.size == 0 or n == 0:
        return jnp.zeros((n,), jnp.int32)
    marks = _engine.scatter(
        jnp.zeros((n,), jnp.int32),
        starts,
        jnp.ones((), jnp.int32),
        dim=0,
        op="sum",
        mode="drop",
    )
    return jnp.cumsum(marks, dtype=jnp.int32)


@functools.partial(
    jax.jit,
    static_argnames=("num_bags", "bag_len", "mode", "padding_idx", "renorm", "scale_grad_by_freq"),
)
def _bag_core(
    input: jax.Array,
    offsets: jax.Array | None,
    weight: jax.Array,
    per_sample_weights: jax.Array | None,
    *,
    num_bags: int,
    bag_len: int,
    mode: str,
    padding_idx: int | None,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> jax.Array:
    dtype, width = weight.dtype, weight.shape[1]
    index = _indexing.widen_index(input.reshape(-1))
    n = index.shape[0]
    if num_bags == 0 or width == 0:
        return jnp.zeros((num_bags, width), dtype)
    if n == 0 or weight.shape[0] == 0:
        return jnp.zeros((num_bags, width), dtype)
    size = weight.shape[0]
    bag = _bag_ids(offsets, n, num_bags, bag_len)
    # Entries that take no part: padding, and (under jit) out-of-range values, which
    # checkify reports; they get the bag id num_bags, which the scatters drop.
    keep = (index >= 0) & (index < size)
    if padding_idx is not None:
        keep = keep & (index != padding_idx)
    bag = jnp.where(keep, bag, num_bags)
    # The padding rows' gradient is zero already: their entries are dropped.
    rows = _torch_rows(weight, index, None, renorm, scale_grad_by_freq)
    acc = _dtypes.accumulation_dtype(dtype)
    zeros = jnp.zeros((num_bags, width), acc)

    def bag_scatter(operand: jax.Array, updates: jax.Array, op: str, **kw: Any) -> jax.Array:
        return _engine.scatter(
            operand, bag, updates, dim=0, op=op, mode="drop", trailing=(width,), **kw
        )

    if mode == "max":
        return _bag_max(rows, bag, num_bags, bag_scatter)
    updates = rows.astype(acc)
    if per_sample_weights is not None:
        updates = updates * per_sample_weights.reshape(-1).astype(acc)[:, None]
    total = _round_like_torch(bag_scatter(zeros, updates, "sum"), dtype, padding_idx is None)
    if mode == "sum":
        return total
    counts = _engine.scatter(
        jnp.zeros((num_bags,), jnp.int32),
        bag,
        jnp.ones((), jnp.int32),
        dim=0,
        op="sum",
        mode="drop",
    )
    # torch divides the rounded sum by the bag's size; an empty bag gives 0.
    return _dtypes.mean(total, jnp.maximum(counts, 1)[:, None], dtype)


def _bag_max(rows: jax.Array, bag: jax.Array, num_bags: int, bag_scatter: Any) -> jax.Array:
    """torch's CPU 'max': each bag keeps its first entry and replaces it by every later one
    that is strictly greater. So ties go to the first entry (also between -0.0 and +0.0),
    a NaN counts only as the first entry, and the gradient goes to that one entry."""
    n, width = rows.shape
    values = lax.stop_gradient(rows)
    nan = jnp.isnan(values)
    # The largest non-NaN value of each bag and column.
    low = _dtypes.identity(values.dtype, "amax")
    top = bag_scatter(
        jnp.full((num_bags, width), low, values.dtype),
        jnp.where(nan, low, values),
        "amax",
    )
    at_top = _indexing.clamp(bag, num_bags)
    position = lax.broadcasted_iota(jnp.int32, (n, width), 0)
    candidate = (values == top[at_top]) & ~nan
    first_top = bag_scatter(
        jnp.full((num_bags, width), n, jnp.int32),
        jnp.where(candidate, position, n),
        "amin",
    )
    # The bag's first entry, and whether it is NaN (then it stays).
    first = _engine.scatter(
        jnp.full((num_bags,), n, jnp.int32),
        bag,
        lax.iota(jnp.int32, n),
        dim=0,
        op="amin",
        mode="drop",
    )
    first_nan = jnp.isnan(values[jnp.clip(first, 0, n - 1)]) & (first < n)[:, None]
    chosen = jnp.where(first_nan, first[:, None], first_top)
    # One gather: the value of the chosen entry (0 for an empty bag), and its gradient.
    return _indexing.batched_gather(
        rows, chosen, 0, lax.GatherScatterMode.FILL_OR_DROP, fill_value=0
    )


def _offsets(fn: str, offsets: Any, n: int, include_last_offset: bool) -> tuple[jax.Array, int]:
    """The offsets as an array and the number of bags; a concrete one checked as torch."""
    offsets, wide = _indexing.as_index(fn, "offsets", offsets)
    _indexing.check_index_dtype(fn, offsets, "offsets")
    if offsets.ndim != 1:
        raise ValueError(
            f"{fn}: offsets must be 1-D (one start position per bag), got shape {offsets.shape}."
        )
    count = offsets.shape[0]
    if include_last_offset:
        if count < 1:
            raise ValueError(
                f"{fn}: with include_last_offset=True offsets needs at least one value (the "
                "last one closes the last bag), got none."
            )
        count -= 1
    if not _checks.is_traced(wide):
        values = np.asarray(wide).astype(np.int64)
        if values.size and values[0] != 0:
            raise ValueError(
                f"{fn}: offsets[0] must be 0 (the first bag starts at the first entry), got "
                f"{int(values[0])}."
            )
        steps = np.diff(values)
        if steps.size and steps.min() < 0:
            k = int(np.argmax(steps < 0))
            raise ValueError(
                f"{fn}: offsets must be non-decreasing, got offsets[{k}] = {int(values[k])} "
                f"> offsets[{k + 1}] = {int(values[k + 1])}."
            )
        if values.size and values[-1] > n:
            raise ValueError(
                f"{fn}: offsets[-1] = {int(values[-1])} is greater than input's length {n}; "
                "offsets are start positions in input."
            )
    return offsets, count


def embedding_bag(
    input: ArrayLike,
    weight: ArrayLike,
    offsets: ArrayLike | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: BagMode = "mean",
    sparse: bool = False,
    per_sample_weights: ArrayLike | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> jax.Array:
    """Sums, averages or takes the maximum of bags of ``weight`` rows.

    Mirrors ``torch.nn.functional.embedding_bag`` (same positional order). Bags are the
    rows of a 2-D ``input`` ``[B, L]`` (``offsets`` None), or runs of a 1-D ``input``
    ``[n]`` starting at ``offsets`` (bag ``b`` holds ``input[offsets[b]:offsets[b + 1]]``,
    the last bag runs to the end). Each bag gives one row: the sum, the mean or the
    elementwise maximum of its ``weight`` rows. An empty bag gives zeros. Entries equal to
    ``padding_idx`` take no part (and are not counted by 'mean'). The rows are gathered once
    and reduced by one whole-row scatter per reduction.

    Args:
      input: integer array ``[B, L]``, or ``[n]`` with ``offsets``; values in
        ``[0, num_embeddings)``.
      weight: float array ``[num_embeddings, D]``.
      offsets: integer array ``[B]`` (``[B + 1]`` with ``include_last_offset``) of bag start
        positions for a 1-D ``input``: ``offsets[0] == 0``, non-decreasing, at most ``n``.
        None for a 2-D ``input``.
      max_norm: renormalise the rows read, as :func:`embedding` (``weight`` itself is not
        modified). Static.
      norm_type: the ``p`` of the norm for ``max_norm``. Static.
      scale_grad_by_freq: scale each entry's gradient by the inverse of how often its index
        occurs in ``input``, as torch. Static.
      mode: ``'sum'``, ``'mean'`` or ``'max'``. Static.
      sparse: accepted for torch compatibility and ignored (JAX has no sparse gradients).
      per_sample_weights: float array of ``input``'s shape and ``weight``'s dtype, scaling
        each entry's row before the sum; only with ``mode='sum'``, as torch.
      include_last_offset: ``offsets`` has one more value, closing the last bag (CSR
        layout). As torch, that value is not read: the last bag runs to the end of input.
      padding_idx: a row whose entries are left out of their bags (negative values count
        from the end). Static.

    Returns:
      Array ``[B, D]`` of ``weight``'s dtype.

    Raises:
      TypeError: ``input`` or ``offsets`` is not of integer dtype, ``weight`` not of a
        floating dtype, ``per_sample_weights``' dtype differs from ``weight``'s.
      ValueError: wrong ranks or shapes, ``offsets`` with a 2-D input (or missing with a
        1-D one), an unknown ``mode``, ``per_sample_weights`` with 'mean' or 'max', concrete
        offsets that break the contract above.
      IndexError: ``padding_idx`` out of range, or a concrete ``input`` value outside
        ``[0, num_embeddings)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import embedding_bag
      >>> weight = jnp.arange(8.0).reshape(4, 2)
      >>> embedding_bag(jnp.array([0, 2, 3, 1]), weight, jnp.array([0, 1, 1]))
      Array([[0., 1.],
             [0., 0.],
             [4., 5.]], dtype=float32)

    Arithmetic, as torch's CPU kernel: sums add in order within a bag, in float32 for
    bfloat16 and float16 (rounded once, bfloat16 with ties away from zero as torch's
    kernel); 'mean' divides that rounded sum by the bag's size; ``per_sample_weights``
    products are rounded before they are added (torch's kernel fuses the multiply-add for
    float32 and narrower, so those sums may differ in the last bit). 'max' keeps a bag's
    first entry and replaces it only by a strictly greater one: ties go to the first entry,
    a NaN shows only when it comes first, and the gradient goes to the chosen entry alone.

    Under ``jax.jit`` values are not checked: ``checkify.index_checks`` reports an
    out-of-range ``input`` value, and that entry is left out of its bag. Offsets are read as
    bag starts (``offsets[0]`` taken as 0); offsets that break the contract give bags of
    other entries than torch would (torch's kernel reads out of bounds there). Check them
    before ``jax.jit``, or pass a 2-D ``input``.
    """
    fn = "embedding_bag"
    index, wide = _index(fn, input)
    weight = _weight(fn, weight, floating=True)
    if mode not in _BAG_MODES:
        raise ValueError(f"{fn}: mode must be 'sum', 'mean' or 'max', got {mode!r}.")
    padding = _padding_idx(fn, padding_idx, weight.shape[0])
    renorm = _renorm(fn, max_norm, norm_type)
    by_freq = _checks.static_bool(fn, "scale_grad_by_freq", scale_grad_by_freq)
    _checks.static_bool(fn, "sparse", sparse)
    last = _checks.static_bool(fn, "include_last_offset", include_last_offset)
    if index.ndim == 2:
        if offsets is not None:
            raise ValueError(
                f"{fn}: a 2-D input [B, L] is B bags of L entries, so offsets must be None; "
                "for bags of different sizes pass a 1-D input with offsets."
            )
        offsets_array, num_bags = None, index.shape[0]
    elif index.ndim == 1:
        if offsets is None:
            raise ValueError(
                f"{fn}: a 1-D input needs offsets (the start of each bag), got None; or "
                "pass a 2-D input [B, L] of equal-sized bags."
            )
        offsets_array, num_bags = _offsets(fn, offsets, index.shape[0], last)
    else:
        raise ValueError(f"{fn}: input must be 1-D (with offsets) or 2-D, got shape {index.shape}.")
    psw = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError(
                f"{fn}: per_sample_weights is only supported with mode='sum' (as in torch), "
                f"got mode={mode!r}."
            )
        psw = _checks.as_array(fn, "per_sample_weights", per_sample_weights)
        if psw.shape != index.shape:
            raise ValueError(
                f"{fn}: per_sample_weights must have input's shape {index.shape}, got {psw.shape}."
            )
        if psw.dtype != weight.dtype:
            raise TypeError(
                f"{fn}: per_sample_weights dtype {psw.dtype} differs from weight dtype "
                f"{weight.dtype}; cast it with per_sample_weights.astype({weight.dtype})."
            )
    _check_values(fn, wide, weight.shape[0])
    core = functools.partial(
        _bag_core,
        mode=mode,
        padding_idx=padding,
        renorm=renorm,
        scale_grad_by_freq=by_freq,
    )
    if offsets_array is not None:  # bags are runs of the whole input: not split
        index, offsets_array, weight, psw = _replicated(index, offsets_array, weight, psw)
        return core(index, offsets_array, weight, psw, num_bags=num_bags, bag_len=0)

    def bags(i: jax.Array, w: jax.Array, p: jax.Array | None) -> jax.Array:
        # A shard of the batch holds whole bags: its own rows of the input.
        return core(i, None, w, p, num_bags=i.shape[0], bag_len=i.shape[1])

    return _by_examples(bags, index, weight, psw, 1)
