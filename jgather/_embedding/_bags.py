"""``embedding_bag``: torch's ``F.embedding_bag``, a gather of rows reduced over bags.

The reduction is handed to the scatter engine (``jgather._engine.scatter``) as whole-row sums,
maxima and minima into a ``[num_bags, D]`` operand. On XLA:CPU, sums of short bags run slot
by slot instead (row gathers added to a running total: no scatter, no ``[n, D]`` array of
rows), differentiated as the scatter program.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike

from jgather import _checks, _dtypes, _engine, _indexing, _sharding
from jgather._embedding import _slots, _table

__all__ = ["embedding_bag"]


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
    # Entries that take no part: padding, and (under jit) out-of-range values, which
    # checkify reports; they get the bag id num_bags, which the scatters drop.
    keep = (index >= 0) & (index < size)
    if padding_idx is not None:
        keep = keep & (index != padding_idx)
    if mode == "max":
        bag = jnp.where(keep, _bag_ids(offsets, n, num_bags, bag_len), num_bags)

        def bag_scatter(operand: jax.Array, updates: jax.Array, op: str) -> jax.Array:
            return _engine.scatter(
                operand, bag, updates, dim=0, op=op, mode="drop", trailing=(width,)
            )

        rows = _read(weight, index, renorm, scale_grad_by_freq)
        return _bag_max(rows, bag, num_bags, bag_scatter)
    scattered = functools.partial(
        _scattered,
        num_bags=num_bags,
        bag_len=bag_len,
        renorm=renorm,
        scale_grad_by_freq=scale_grad_by_freq,
    )
    # Bags of at most ``cap`` entries sum slot by slot on XLA:CPU: a 2-D input [B, L] (cap
    # L), or offsets whose bags all fit (tested at run time).
    cap = 0
    if renorm is None and not _dtypes.is_symbolic(n):
        cap = bag_len if offsets is None else _slots.slot_cap(n, num_bags)
    psw = () if per_sample_weights is None else (per_sample_weights,)
    if 0 < cap <= _slots.MAX_SLOTS:
        total, counts = _slots.bag_sums(weight, psw, index, keep, offsets, scattered, cap, num_bags)
    else:
        total, counts = scattered(weight, psw, index, keep, offsets)
    total = _round_like_torch(total, dtype, padding_idx is None)
    if mode == "sum":
        return total
    # torch divides the rounded sum by the bag's size; an empty bag gives 0.
    return _dtypes.mean(total, jnp.maximum(counts, 1)[:, None], dtype)


def _read(
    weight: jax.Array,
    index: jax.Array,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> jax.Array:
    """The rows of the entries [n, D], as torch reads them, with torch's gradient rules
    (out-of-range entries read a clamped row: the bag scatters drop them, and the padding
    rows' gradient is zero because their entries are dropped)."""
    return _table.torch_rows(weight, index, None, renorm, scale_grad_by_freq, dropped=True)


def _scattered(
    weight: jax.Array,
    psw: tuple[jax.Array, ...],
    index: jax.Array,
    keep: jax.Array,
    offsets: jax.Array | None,
    *,
    num_bags: int,
    bag_len: int,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> tuple[jax.Array, jax.Array]:
    """The bags' sums [num_bags, D] in the accumulation dtype and their sizes [num_bags]
    (entries kept), for any bags: the rows gathered once, scaled by ``psw`` (per-sample
    weights, or none), summed into their bags by one whole-row scatter."""
    n = index.shape[0]
    bag = jnp.where(keep, _bag_ids(offsets, n, num_bags, bag_len), num_bags)  # num_bags: dropped
    acc = _dtypes.accumulation_dtype(weight.dtype)
    updates = _read(weight, index, renorm, scale_grad_by_freq).astype(acc)
    for p in psw:
        updates = updates * p.reshape(-1).astype(acc)[:, None]
    zeros = jnp.zeros((num_bags, weight.shape[1]), acc)
    total = _engine.scatter(
        zeros, bag, updates, dim=0, op="sum", mode="drop", trailing=zeros.shape[1:]
    )
    one = jnp.ones((), jnp.int32)
    counts = _engine.scatter(
        jnp.zeros((num_bags,), jnp.int32), bag, one, dim=0, op="sum", mode="drop"
    )
    return total, counts


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
    mode: Literal["sum", "mean", "max"] = "mean",
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

    On CPU, 'sum' and 'mean' of short bags (a 2-D ``input`` of up to 32 columns, or
    ``offsets`` whose bags all fit in up to 32 slots, tested at run time) are summed slot by
    slot, with no scatter, in the same order and to the same bits; their gradient is the
    scatter program's.

    Under ``jax.jit`` values are not checked: ``checkify.index_checks`` reports an
    out-of-range ``input`` value, and that entry is left out of its bag. Offsets are read as
    bag starts (``offsets[0]`` taken as 0); offsets that break the contract give bags of
    other entries than torch would (torch's kernel reads out of bounds there). Check them
    before ``jax.jit``, or pass a 2-D ``input``.
    """
    fn = "embedding_bag"
    index, wide = _table.index_of(fn, input)
    weight = _table.weight_of(fn, weight, floating=True)
    _checks.one_of(fn, "mode", mode, ("sum", "mean", "max"))
    padding = _table.padding_index(fn, padding_idx, weight.shape[0])
    renorm = _table.renorm_of(fn, max_norm, norm_type)
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
    _table.check_values(fn, wide, weight.shape[0])
    core = functools.partial(
        _bag_core,
        mode=mode,
        padding_idx=padding,
        renorm=renorm,
        scale_grad_by_freq=by_freq,
    )
    if offsets_array is not None:  # bags are runs of the whole input: not split
        index, offsets_array, weight, psw = _sharding.replicated(index, offsets_array, weight, psw)
        return core(index, offsets_array, weight, psw, num_bags=num_bags, bag_len=0)

    def bags(i: jax.Array, w: jax.Array, p: jax.Array | None) -> jax.Array:
        # A shard of the batch holds whole bags: its own rows of the input.
        return core(i, None, w, p, num_bags=i.shape[0], bag_len=i.shape[1])

    return _sharding.per_shard_of_index(bags, index, weight, psw, 1)
