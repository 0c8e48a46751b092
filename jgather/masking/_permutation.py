"""The shared permutation of the masking family: packed argsorts, orderable noise bits,
random permutations and their inverses.

The straightforward port (``argsort`` of the noise, ``argsort`` again for ``ids_restore``, then
``take_along_axis``) spends most of its time in the two sorts: XLA sorts a float array, or a
(key, iota) pair, through a generic comparator, which is slower than sorting one array of
unsigned integers (figures in benchmarks/masking.py and benchmarks/results/masking.json).
Here each permutation is one single-operand sort of packed ``uint64`` keys,
``(key << s) | position`` with ``s`` bits for a position: positions are unique, so the keys
never tie, the sort needs no second operand, and the order is read back from the low ``s``
bits. (The keys are 64-bit inside a local ``jax.enable_x64`` scope; nothing 64-bit enters or
leaves.)

* With ``noise=`` given, the noise is mapped to an unsigned integer of its width by the
  order-preserving float transform (sign bit set for positives, all bits flipped for
  negatives; ``-0.0`` is folded onto ``+0.0`` and every NaN onto one NaN that sorts last),
  with integer operations on the bit pattern only, so subnormals are ordered exactly (XLA on
  CPU flushes them to zero in float arithmetic), and packed above the position:
  the order is exactly ``numpy.argsort(noise, kind="stable")`` ==
  ``torch.argsort(noise, stable=True)``: ascending, ties broken by lower index first.
* With ``noise=None`` the key is ``64 - s`` random bits drawn directly as integers (two
  threefry words per token; no floats). Ties between random keys are broken by position, so
  the chance of any tie, ``L (L - 1) / 2 * 2**-(64 - s)`` (``tie_probability_bound``), bounds
  the total-variation distance between the permutation drawn here and a uniformly random one
  (given no tie, the order of i.i.d. keys is exactly uniform): 3e-13 at L=196 (56 bits),
  1e-10 at L=1568 (53 bits), below 1e-6 up to L=32768. MAE's own ``torch.rand`` noise has 24
  random bits: 1e-3 at L=196, 7e-2 at L=1568.
* ``ids_restore`` is the inverse permutation, written by one scatter of ``iota`` (no second
  sort), and the mask is ``ids_restore >= len_keep`` (MAE's gather of a 0/1 row by
  ``ids_restore``, without the row).
* Kept tokens are gathered with ``jgather.index_select`` per sample under ``jax.vmap``: one
  ``lax.gather`` with a batch dimension and whole [D] rows as slices (no [N, K, D] index is
  ever built), or with a one-hot matrix product (``method="onehot"``).

Alternatives measured (benchmarks/masking.py, "alternatives"): float argsort, a (noise, iota)
sort, ``top_k``, a least-significant-digit radix sort of two packed ``uint32`` passes, and a
single packed ``uint32`` pass (with ``32 - s`` random bits it ties often at L=1568: bound
0.6); the inverse by argsort, by a packed sort and by comparisons. On TPU,
64-bit integers are emulated with 32-bit pairs, so the uint64 sort may cost more there; not
measured here (no TPU).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike


def position_bits(length: int) -> int:
    """Bits that hold every position ``0 .. length - 1`` (at least one)."""
    return max(1, (length - 1).bit_length())


def tie_probability_bound(length: int) -> float:
    """Upper bound on the chance that ``random_masking``'s random keys tie for one sample.

    It bounds the total-variation distance between the shuffle drawn without ``noise=`` and a
    uniformly random permutation of ``length`` tokens: ``L (L - 1) / 2 * 2**-(64 - s)``.
    """
    return length * (length - 1) / 2 * 2.0 ** -(64 - position_bits(length))


def packed_argsort(keys: jax.Array, key_bits: int) -> jax.Array:
    """Stable argsort of a [L] ``uint32`` array with values below ``2**key_bits``.

    One single-operand ``uint32`` sort of ``(key << s) | position`` (unique, hence stable);
    needs ``key_bits + s <= 32`` (for the 0/1 keys of ``apply_mask``: ``L <= 2**31``).
    """
    (length,) = keys.shape
    bits = position_bits(length)
    packed = lax.shift_left(keys, jnp.uint32(bits)) | lax.iota(jnp.uint32, length)
    return (lax.sort(packed) & jnp.uint32((1 << bits) - 1)).astype(jnp.int32)


def wide_argsort(high: jax.Array, low: jax.Array | None) -> jax.Array:
    """Argsort of [L] 64-bit keys ``high << 32 | low`` whose low ``s`` bits are replaced by the
    position: one single-operand ``uint64`` sort, ties broken by lower position.

    With ``low=None`` the key is ``high`` alone and the argsort is exact and stable.
    """
    (length,) = high.shape
    bits = position_bits(length)
    with jax.enable_x64(True):
        key = lax.shift_left(lax.convert_element_type(high, jnp.uint64), jnp.uint64(32))
        if low is not None:
            key = key | lax.convert_element_type(low, jnp.uint64)
            key = lax.shift_left(lax.shift_right_logical(key, jnp.uint64(bits)), jnp.uint64(bits))
        packed = lax.sort(key | lax.iota(jnp.uint64, length))
        return lax.convert_element_type(packed & jnp.uint64((1 << bits) - 1), jnp.int32)


_UINT = {16: jnp.uint16, 32: jnp.uint32, 64: jnp.uint64}


def _orderable_bits(noise: jax.Array) -> jax.Array:
    """Maps floats to unsigned ints of the same width with the same order (``-0 == +0``, NaN
    last), bit-exactly.

    Only integer operations on the bit pattern: a float comparison (``noise == 0``) or a
    conversion would let XLA flush subnormals to zero on CPU (denormals-are-zero), tying
    ``1e-45`` with ``0``; numpy and torch order them.
    """
    width = jnp.finfo(noise.dtype).bits
    uint = _UINT[width]
    as_bits = lambda v: int(np.array(v, noise.dtype).view(np.dtype(uint)))
    sign = 1 << (width - 1)
    exponent_ones, quiet_nan = as_bits(np.inf), as_bits(np.nan) & (sign - 1)
    b = lax.bitcast_convert_type(noise, uint)
    magnitude = b & uint(sign - 1)
    b = jnp.where(magnitude == 0, uint(0), b)  # -0.0 -> +0.0
    b = jnp.where(magnitude > uint(exponent_ones), uint(quiet_nan), b)  # one NaN, sorts last
    negative = (b & uint(sign)) != 0
    sign = uint(sign)
    return jnp.where(negative, ~b, b | sign)


def argsort_noise(noise: jax.Array) -> jax.Array:
    """``numpy.argsort(noise, kind='stable')`` for one [L] row, as int32."""
    (length,) = noise.shape
    if jnp.issubdtype(noise.dtype, jnp.floating):
        if jnp.finfo(noise.dtype).bits <= 32:  # f32, f16, bf16 (fp8 is widened to 16 bits)
            if jnp.finfo(noise.dtype).bits < 16:
                noise = noise.astype(jnp.float16)  # exact: fp8 values are normal in float16
            return wide_argsort(_orderable_bits(noise).astype(jnp.uint32), None)
        noise = _orderable_bits(noise)  # float64 under x64: a stable sort of uint64 keys
    _, order = lax.sort((noise, lax.iota(jnp.int32, length)), num_keys=1, is_stable=True)
    return order


def random_permutation(key: jax.Array, length: int) -> jax.Array:
    """A random permutation of ``length`` positions from ``key`` (see module docstring)."""
    words = jax.random.bits(key, (2, length), jnp.uint32)
    return wide_argsort(words[0], words[1])


def _rows_inverse(rows: jax.Array, size: int, fill: int, mode: str) -> jax.Array:
    """[B, L] rows -> [B, size] int32: ``j`` at ``rows[b, j]`` and ``fill`` elsewhere, one
    batched scatter of ``iota`` (``mode`` for indices outside ``[0, size)``), behind a
    ``custom_vmap`` boundary.

    ``jax.experimental.checkify`` cannot check a scatter with batching dimensions (its bounds
    rule fails with ``IndexError: tuple index out of range``, jax 0.10), so the scatter sits
    behind a ``custom_vmap`` boundary, which checkify evaluates without looking inside. The
    rule (for a ``jax.vmap`` of a caller) merges the extra batch axes into the scatter's own
    batch: unlike ``_batching.fold_batch``'s reductions there is no reduction axis to move,
    no derivative (integer outputs) and no per-shard split (the batch stays a scatter batching
    dimension, local on a batch-sharded mesh).
    """
    length = rows.shape[-1]

    def one(row: jax.Array) -> jax.Array:
        iota = lax.iota(jnp.int32, length)
        return jnp.full((size,), fill, jnp.int32).at[row].set(iota, mode=mode, unique_indices=True)

    @jax.custom_batching.custom_vmap
    def inverse(rows: jax.Array) -> jax.Array:
        return jax.vmap(one)(rows)

    @inverse.def_vmap
    def rule(axis_size: int, in_batched: Sequence[bool], rows: jax.Array) -> tuple[jax.Array, bool]:
        del axis_size
        if not in_batched[0]:
            return inverse(rows), False
        flat = inverse(rows.reshape(-1, rows.shape[-1]))
        return flat.reshape(*rows.shape[:-1], size), True

    return inverse(rows)


def inverse_permutations(perms: jax.Array) -> jax.Array:
    """[N, L] inverse permutations of the rows of ``perms``: one batched scatter of ``iota``.

    The scatter is the fastest inverse measured (benchmarks/masking.py, against a second
    sort) and, with the batch as a scatter batching dimension, stays local on a batch-sharded
    mesh of either kind. It is not visible to ``checkify`` (see ``_rows_inverse``); nothing is
    lost: the indices are a permutation of ``0 .. L - 1`` by construction, so there is nothing
    to check.
    """
    return _rows_inverse(perms, perms.shape[-1], 0, "promise_in_bounds")


def inverse_permutation(perm: jax.Array) -> jax.Array:
    """[L] inverse of one permutation (for cores written per sample, e.g. the per-sample
    ratio masking): under their ``vmap`` it becomes one ``inverse_permutations`` call."""
    return inverse_permutations(perm[None])[0]


def slots_inverse(slots: jax.Array, size: int) -> jax.Array:
    """[..., L] slots -> [..., size]: at slot ``s``, the position ``j`` with ``slots[j] == s``,
    or ``L`` where no position holds ``s``.

    For the partial permutations of the masking (``unshuffle``'s ``ids_restore``, whose kept
    slots are unique and whose removed tokens may share a slot at or above ``size``): one
    scatter of ``iota`` per row, behind ``_rows_inverse``' checkify-safe boundary.
    Slots outside ``[0, size)`` are given distinct values above it first, so the scatter's
    indices are unique and those updates are dropped.
    """
    length = slots.shape[-1]
    iota = lax.broadcasted_iota(slots.dtype, slots.shape, slots.ndim - 1)
    inside = (slots >= 0) & (slots < size)
    distinct = jnp.where(inside, slots, size + iota)
    flat = distinct.reshape(-1, length)
    return _rows_inverse(flat, size, length, "drop").reshape(*slots.shape[:-1], size)


def shuffled_count(key: jax.Array, length: int, count: ArrayLike) -> jax.Array:
    """A boolean [length] vector with exactly ``count`` True at uniformly random positions.

    A random permutation of ``[True] * count + [False] * (length - count)``; ``count`` may be
    traced.
    """
    return jax.random.permutation(key, jnp.arange(length) < count)
