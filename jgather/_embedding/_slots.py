"""Sums of short bags, slot by slot: ``embedding_bag``'s fast path on XLA:CPU.

Bags of at most ``MAX_SLOTS`` entries are summed as one fused loop over their slots: for each
slot, a gather of one row per bag added to a running ``[bags, D]`` total. No ``[n, D]`` array
of rows is made and nothing is scattered; the additions run in the scatter's order, so the
results are the same bits. Derivatives are those of the scatter program.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from jgather import _dtypes, _indexing, _platform, _rows

# XLA:CPU sums short bags fastest as one fused loop over their slots: a gather of each
# slot's rows added to a running [bags, D] total, with no [n, D] array of rows and no scatter
# (4096 bags of 20 rows of a 1M x 64 table: 4x to 6x faster than the gather and the scatter,
# benchmarks/ops.py). Bags of up to this many slots, unrolled.
MAX_SLOTS = 32


def slot_cap(n: int, num_bags: int) -> int:
    """The slots per bag for ``n`` entries in ``num_bags`` bags given by offsets (0: none).

    When ``n`` is a multiple of ``num_bags`` the slots are exactly ``n / num_bags`` (bags
    fit only when all have that length: every slot holds an entry); otherwise room for bags
    half again as long as the average, as a power of two. At most ``MAX_SLOTS``.
    """
    mean = -(-n // num_bags)
    if mean > MAX_SLOTS:
        return 0
    if n % num_bags == 0:
        return mean
    return min(MAX_SLOTS, 1 << max(0, (3 * mean + 1) // 2 - 1).bit_length())


def slots(
    offsets: jax.Array | None, n: int, num_bags: int, cap: int
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """Where each bag's slots read: (positions [num_bags, cap] in ``[0, n)``, whether a
    slot holds an entry, whether every bag fits in ``cap`` slots: None when known).

    Bags from offsets are read as ``_bags._bag_ids`` reads them: bag ``b`` holds the entries from
    its offset to the next (the first offset taken as 0, the last bag running to ``n``).
    Offsets that decrease, pass ``n`` or leave a bag longer than ``cap`` do not fit.
    """
    slot = lax.broadcasted_iota(jnp.int32, (num_bags, cap), 1)
    if offsets is None:  # a 2-D input: bag b holds entries [b * cap, (b + 1) * cap)
        start = lax.broadcasted_iota(jnp.int32, (num_bags, cap), 0) * cap
        return start + slot, jnp.ones((num_bags, cap), jnp.bool_), None
    starts = _indexing.widen_index(offsets[:num_bags])
    starts = jnp.concatenate([jnp.zeros((1,), starts.dtype), starts[1:]])
    ends = jnp.concatenate([starts[1:], jnp.full((1,), n, starts.dtype)])
    sizes = ends - starts
    fits = jnp.all((sizes >= 0) & (sizes <= cap))
    begin = jnp.clip(starts, 0, n).astype(jnp.int32)[:, None]
    held = slot < jnp.clip(sizes, 0, cap).astype(jnp.int32)[:, None]
    return jnp.clip(begin + slot, 0, max(n - 1, 0)), held, fits


def bag_sums(
    weight: jax.Array,
    psw: tuple[jax.Array, ...],
    index: jax.Array,
    keep: jax.Array,
    offsets: jax.Array | None,
    scattered: Any,
    cap: int,
    num_bags: int,
) -> tuple[jax.Array, jax.Array]:
    """``scattered``'s sums and sizes for ``num_bags`` bags of at most ``cap`` entries
    (a 2-D input, or offsets tested at run time). On XLA:CPU they sum slot by slot, adding
    in the same order as the scatter (the same bits); elsewhere, for offsets whose bags do
    not fit, and under differentiation, ``scattered(weight, psw, index, keep, offsets)``
    runs."""
    _indexing.probe(index, weight.shape[0])  # checkify reports the caller's value either way

    @jax.custom_jvp
    def sums(
        w: jax.Array,
        psw: tuple[jax.Array, ...],
        index: jax.Array,
        keep: jax.Array,
        offsets: jax.Array | None,
    ) -> tuple[jax.Array, jax.Array]:
        def dense(position: jax.Array, held: jax.Array) -> tuple[jax.Array, jax.Array]:
            acc = _dtypes.accumulation_dtype(w.dtype)
            safe = _indexing.prepare(index, w.shape[0], "clip")
            if cap * num_bags == index.shape[0]:  # full bags: slot l of bag b is entry b * cap + l
                at = lambda a: a.reshape(num_bags, cap)
                kept, rows_at = at(keep), at(safe)
            else:
                at = lambda a: a.reshape(-1)[position]
                kept = held & at(keep)
                rows_at = jnp.where(kept, at(safe), 0)  # an empty slot reads row 0 (cached)
            scales = [at(p).astype(acc) for p in psw]
            total = jnp.zeros((num_bags, w.shape[1]), acc)
            for slot in range(cap):
                rows = _rows.take_rows(w, rows_at[:, slot]).astype(acc)
                for scale in scales:
                    rows = rows * scale[:, slot, None]
                total = total + jnp.where(kept[:, slot, None], rows, 0)
            return total, jnp.sum(kept, axis=1, dtype=jnp.int32)

        def any_bags() -> tuple[jax.Array, jax.Array]:
            out: tuple[jax.Array, jax.Array] = scattered(w, psw, index, keep, offsets)
            return out

        def on_cpu() -> tuple[jax.Array, jax.Array]:
            position, held, fits = slots(offsets, index.shape[0], num_bags, cap)
            if fits is None:
                return dense(position, held)
            return lax.cond(fits, lambda: dense(position, held), any_bags)

        return _platform.cpu_or_accelerator(on_cpu, any_bags)

    @sums.defjvp
    def _(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> tuple[Any, Any]:
        # Differentiated as the program for any bags: one gather, one scatter (its transpose
        # is one scatter into the table), with torch's gradient rules for the rows.
        w, psw, index, keep, offsets = primals
        return jax.jvp(lambda w, p: scattered(w, p, index, keep, offsets), (w, psw), tangents[:2])

    out: tuple[jax.Array, jax.Array] = sums(weight, psw, index, keep, offsets)
    return out
