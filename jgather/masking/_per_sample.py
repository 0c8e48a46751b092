"""MAE random masking with a mask ratio per sample, in fixed shapes; and a ratio sampler.

MAE fixes one ratio per batch because ``x_masked`` must have one static length (its TPU
version says so, facebookresearch/mae #37); MAR and MaskGIT-style training draw a ratio per
sample. ``random_masking_per_sample`` keeps the static shape by giving ``x_masked`` a static
``capacity`` of ``K`` kept slots: sample ``i`` keeps ``k_i = int(L * (1 - r_i))`` tokens (MAE's
rule, per sample), the first ``k_i`` of its ``K`` slots hold them, and the other slots are
invalid (zeros; ``valid`` is False there, for the encoder's attention mask).

The shuffle is ``random_masking``'s own (same permutation helpers, same per-sample keys, same
``noise=`` order), so with every ratio equal and ``capacity`` equal to that ratio's
``len_keep`` the outputs are ``random_masking``'s bit for bit.

``ids_restore`` is routed so that ``jgather.unshuffle`` (which appends mask tokens after the
``K`` slots and reads token ``j`` from slot ``ids_restore[j]`` when that is below ``K``) puts a
mask token at every removed position: a token is kept iff its position in the shuffle is below
``k_i``; kept tokens keep that position (below ``k_i``), removed tokens get a value of at least
``K``. Removed tokens whose shuffle position lies in the invalid slots ``[k_i, K)`` are sent to
``K``: several removed tokens then share an index, which is harmless because every appended
token is the same mask token. ``ids_restore`` is therefore not a permutation when ``k_i < K``,
and with ``capacity == L`` a removed token has ``ids_restore == L`` (no mask token is appended
then; ``unshuffle`` handles it, an MAE-style ``gather`` of ``[x, mask_tokens]`` of length
``L`` would not).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import chex  # type: ignore[import-untyped]  # chex ships no py.typed marker
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jgather import _checks
from jgather.masking._arguments import (
    check_key_first,
    check_mask_dtype,
    check_method,
    check_noise,
    check_tokens,
)
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import argsort_noise, inverse_permutation, random_permutation
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.masking._results import TokenTuple
from jgather.masking._take import after_prefix, take_rows
from jgather.masking._variable_ratio import mask_schedule


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["x_masked", "mask", "ids_restore", "valid", "len_keep"],
    meta_fields=["num_prefix", "capacity"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class PaddedMaskedTokens(TokenTuple):
    """The result of ``random_masking_per_sample``: MAE's triple, then the padding facts.

    Unpacks as the five arrays below; also records ``num_prefix`` and ``capacity`` as static
    pytree metadata, so ``unshuffle(x_masked, out, mask_token)`` checks the token count.

    Attributes:
      x_masked: [N, P + K, D] the ``P`` prefix tokens, then ``K = capacity`` slots: sample
        ``i``'s ``len_keep[i]`` kept tokens in shuffled order, then zeros (invalid slots).
      mask: [N, L] float32 (``mask_dtype``), 0 for kept and 1 for removed tokens, in original
        order; a token is removed when it is not among the sample's ``len_keep[i]``.
      ids_restore: [N, L] int32 for ``unshuffle(x_masked, out, mask_token)`` (or the array
        with ``num_prefix=P``): below ``len_keep[i]`` for kept tokens (their slot), at least
        ``K`` for removed ones, so that ``unshuffle`` puts a mask token there (several removed
        tokens may share ``K``: not a permutation when ``len_keep[i] < K``).
      valid: [N, P + K] bool, True for the prefix and the kept slots: the encoder's key mask.
      len_keep: [N] int32, the number of kept tokens of each sample (at most ``K``).
      num_prefix: static ``P`` (None when built by hand without it).
      capacity: static ``K`` (None when built by hand without it).
    """

    x_masked: jax.Array
    mask: jax.Array
    ids_restore: jax.Array
    valid: jax.Array
    len_keep: jax.Array
    num_prefix: int | None = None
    capacity: int | None = None

    _fields = ("x_masked", "mask", "ids_restore", "valid", "len_keep")

    @property
    def _kept_slots(self) -> int | None:
        return self.capacity


# ----------------------------------------------------------------------------------------------
# Argument checks (trace time; values only when they are concrete).


def _check_capacity(fn: str, capacity: Any, length: int) -> int:
    return _checks.static_int(
        fn,
        "capacity",
        capacity,
        minimum=1,
        maximum=length,
        what="the length of x_masked",
        hint=f"(L={length}); use int(L * (1 - min_ratio)) for ratios of at least min_ratio.",
    )


def _keep_counts_concrete(fn: str, ratio: np.ndarray, length: int, capacity: int) -> np.ndarray:
    """MAE's ``int(L * (1 - r))`` per sample, in float64 as Python computes it."""
    ratio = ratio.astype(np.float64)  # exact for float16/bfloat16/float32 values
    bad = np.flatnonzero(~((ratio >= 0) & (ratio <= 1)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{fn}: mask_ratio must lie in [0, 1], got {float(ratio.reshape(-1)[i])!r} for "
            f"sample {i}."
        )
    counts = np.trunc(length * (1.0 - ratio)).astype(np.int64)
    over = np.flatnonzero(counts > capacity)
    if over.size:
        i = int(over[0])
        raise ValueError(
            f"{fn}: sample {i} has mask_ratio={float(ratio[i])!r}, which keeps "
            f"int({length} * (1 - {float(ratio[i])!r})) = {int(counts[i])} tokens, more than "
            f"capacity={capacity}; raise capacity to int(L * (1 - min_ratio)) = "
            f"{int(counts.max())} or draw ratios of at least {1 - capacity / length:.6g}."
        )
    return counts.astype(np.int32)


@functools.partial(jax.jit, static_argnames=("length", "capacity"))
def _keep_counts_traced(ratio: jax.Array, *, length: int, capacity: int) -> jax.Array:
    """``int(L * (1 - r))`` for traced ratios, clipped into ``[0, capacity]``.

    Computed in float64 (a local x64 scope; nothing 64-bit leaves), where ``1 - r`` and
    ``L * (1 - r)`` are exact for a float32 ``r`` (24-bit mantissa, ``L < 2**29``), so the
    count equals Python's ``int(L * (1 - float(r)))`` for the same float32 value. Ratios
    outside ``[0, 1]`` are clipped into it first, NaN counts as 1 (keeps nothing).
    """
    with jax.enable_x64(True):
        r = lax.convert_element_type(ratio, jnp.float64)
        r = jnp.where(jnp.isnan(r), 1.0, jnp.clip(r, 0.0, 1.0))
        counts = jnp.floor(length * (1.0 - r))
        return lax.convert_element_type(jnp.minimum(counts, capacity), jnp.int32)


def _check_ratio(fn: str, mask_ratio: Any, n: int, length: int, capacity: int) -> jax.Array:
    """[N] int32 keep counts from a scalar or [N] ratio (concrete: checked; traced: clipped)."""
    if isinstance(mask_ratio, bool | str | bytes):
        raise TypeError(
            f"{fn}: mask_ratio must be a float or an [N] float array, got {mask_ratio!r}."
        )
    if not isinstance(mask_ratio, jax.Array):
        try:
            mask_ratio = np.asarray(mask_ratio)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{fn}: mask_ratio must be a float or an [N] float array, got "
                f"{type(mask_ratio).__name__}."
            ) from e
    dtype = mask_ratio.dtype
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(f"{fn}: mask_ratio must be a real number array, got dtype {dtype}.")
    if mask_ratio.shape not in ((), (n,)):
        raise ValueError(
            f"{fn}: mask_ratio must be a scalar or have shape [N] = ({n},) (one ratio per "
            f"sample), got shape {tuple(mask_ratio.shape)}."
        )
    if isinstance(mask_ratio, jax.Array):
        # Counts are computed where the ratios live (the same values as the host rule for
        # valid ratios). Concrete device ratios are read back once, explicitly, to raise on
        # an invalid one (jax.transfer_guard allows explicit transfers); traced ones clip.
        if not _checks.is_traced(mask_ratio):
            ratios = np.broadcast_to(np.asarray(jax.device_get(mask_ratio)), (n,))
            _keep_counts_concrete(fn, ratios, length, capacity)
        ratio = jnp.broadcast_to(mask_ratio, (n,))
        return _keep_counts_traced(ratio, length=length, capacity=capacity)
    ratios = np.broadcast_to(np.asarray(mask_ratio), (n,))
    return jnp.asarray(_keep_counts_concrete(fn, ratios, length, capacity))


# ----------------------------------------------------------------------------------------------
# Single-sample core, vmapped.


def _pad_one(
    x: jax.Array,
    perm: jax.Array,
    len_keep: jax.Array,
    capacity: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> PaddedMaskedTokens:
    """Masks one sample [P + L, D] with shuffle ``perm`` [L], keeping ``len_keep`` (traced)."""
    (length,) = perm.shape
    chex.assert_shape(x, (num_prefix + length, None))
    ids = inverse_permutation(perm)  # shuffle position of each token
    rows = after_prefix(perm[:capacity], num_prefix)
    slot_valid = lax.iota(jnp.int32, capacity) < len_keep
    valid = jnp.pad(slot_valid, (num_prefix, 0), constant_values=True)
    rows_x = take_rows(x, rows, method)
    x_masked = jnp.where(valid[:, None], rows_x, jnp.zeros_like(rows_x))
    kept = ids < len_keep
    ids_restore = jnp.where(kept, ids, jnp.maximum(ids, capacity))
    mask = (~kept).astype(mask_dtype)
    return PaddedMaskedTokens(x_masked, mask, ids_restore, valid, len_keep)


_STATIC = ("capacity", "num_prefix", "method", "mask_dtype")


@functools.partial(jax.jit, static_argnames=_STATIC)
def _per_sample_keys(
    key: jax.Array,
    x: jax.Array,
    len_keep: jax.Array,
    *,
    capacity: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> PaddedMaskedTokens:
    length = x.shape[1] - num_prefix

    def one(key: jax.Array, x: jax.Array, k: jax.Array) -> PaddedMaskedTokens:
        perm = random_permutation(key, length)
        return _pad_one(x, perm, k, capacity, num_prefix, method, mask_dtype)

    sharding = batch_sharding(x, key, len_keep)
    x, len_keep = (to_batch_sharding(a, sharding) for a in (x, len_keep))
    return jax.vmap(one)(per_sample_keys(key, x.shape[0], sharding), x, len_keep)


@functools.partial(jax.jit, static_argnames=_STATIC)
def _per_sample_noise(
    noise: jax.Array,
    x: jax.Array,
    len_keep: jax.Array,
    *,
    capacity: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> PaddedMaskedTokens:
    def one(noise: jax.Array, x: jax.Array, k: jax.Array) -> PaddedMaskedTokens:
        return _pad_one(x, argsort_noise(noise), k, capacity, num_prefix, method, mask_dtype)

    sharding = batch_sharding(x, noise, len_keep)
    x, noise, len_keep = (to_batch_sharding(a, sharding) for a in (x, noise, len_keep))
    return jax.vmap(one)(noise, x, len_keep)


# ----------------------------------------------------------------------------------------------
# Public functions.


def random_masking_per_sample(
    key: ArrayLike | None,
    x: jax.Array,
    mask_ratio: ArrayLike | None = None,
    *,
    capacity: int,
    noise: jax.Array | None = None,
    num_prefix: int = 0,
    method: Literal["gather", "onehot"] | None = None,
    mask_dtype: DTypeLike = jnp.float32,
) -> PaddedMaskedTokens:
    """MAE random masking with one mask ratio per sample, in shapes fixed by ``capacity``.

    Sample ``i`` keeps ``int(L * (1 - mask_ratio[i]))`` tokens, the first of ``random_masking``'s
    shuffle, in ``P + capacity`` slots; ``valid`` marks the filled ones.

    Args:
      key: one PRNG key (split into ``N``) or a batch of ``N`` keys, as ``random_masking``;
        ignored (may be ``None``) when ``noise`` is given.
      x: [N, P + L, D] tokens.
      mask_ratio: a float or an [N] array of per-sample ratios in ``[0, 1]``; may be traced.
        Required (its ``None`` default only lets the MAE-order call ``(x, ratios)`` reach
        the key check, which names the key-first signature).
      capacity: static ``K``, the number of kept slots in ``x_masked`` (``1 <= K <= L``).
      noise: optional [N, L] values replacing the random draw (smaller noise is kept first).
      num_prefix: static number of leading tokens that are never masked (always valid).
      method: ``'gather'``, ``'onehot'`` or ``None`` (see ``random_masking``).
      mask_dtype: static dtype of ``mask`` (float32, as MAE's).

    Returns:
      ``PaddedMaskedTokens(x_masked, mask, ids_restore, valid, len_keep)``: ``x_masked``
      [N, P + K, D] in ``x``'s dtype; ``mask`` [N, L] ``mask_dtype`` (1 = removed);
      ``ids_restore`` [N, L] int32; ``valid`` [N, P + K] bool; ``len_keep`` [N] int32.

    Raises:
      TypeError: ``capacity`` is traced or not an int; ``mask_ratio`` is not numeric; ``key``
        is not a key; ``noise`` is not numeric.
      ValueError: ``x`` is not 3-D; ``capacity`` is outside ``[1, L]``; ``mask_ratio`` has
        the wrong shape, or (concrete) lies outside ``[0, 1]`` or keeps more than
        ``capacity`` tokens; ``key``/``noise`` have the wrong shape or both are ``None``.

    Example:
      >>> import jax, jax.numpy as jnp, jgather
      >>> x = jnp.arange(16.0).reshape(2, 8, 1)
      >>> noise = jnp.tile(jnp.arange(8.0)[::-1], (2, 1))  # keep the last tokens first
      >>> out = jgather.random_masking_per_sample(
      ...     None, x, jnp.array([0.5, 0.75]), capacity=4, noise=noise)
      >>> out.x_masked[..., 0].tolist(), out.len_keep.tolist()
      ([[7.0, 6.0, 5.0, 4.0], [15.0, 14.0, 0.0, 0.0]], [4, 2])
      >>> out.valid.tolist()[1]
      [True, True, False, False]
      >>> full = jgather.unshuffle(out.x_masked, out, jnp.full((1,), -1.0))
      >>> full[1, :, 0].tolist()
      [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 14.0, 15.0]

    Mirrors MAE's ``random_masking`` per sample: sample ``i`` keeps ``k_i = int(L * (1 -
    r_i))`` tokens, the first ``k_i`` of its shuffle (``random_masking``'s shuffle: the same
    keys or ``noise=`` order, ties lower index first). ``x_masked`` has the static length
    ``P + capacity``: the kept tokens fill the first ``k_i`` slots, the rest are zeros marked
    invalid in ``valid`` (pass ``valid`` as the encoder's attention key mask). ``mask`` and
    ``ids_restore`` are such that ``unshuffle(x_masked, out, mask_token)`` (the result in
    place of ``ids_restore``) puts ``mask_token`` at every removed token and ``mae_loss``
    averages over exactly the removed ones. With every ratio equal and ``capacity`` equal to its
    ``len_keep``, ``x_masked``, ``mask`` and ``ids_restore`` equal ``random_masking``'s bit
    for bit (both masks are float32 by default).

    More kept tokens than slots: when ``mask_ratio`` is concrete, a sample with ``k_i >
    capacity`` is a ``ValueError`` (as are ratios outside ``[0, 1]``). Under ``jax.jit``
    (traced ratios) it cannot raise: ``k_i`` is clipped to ``capacity`` (ratios into ``[0,
    1]`` first, NaN to 1), and the outputs describe the tokens actually kept: ``len_keep``
    holds the clipped count and ``mask`` marks the tokens that did not fit as removed, so
    ``unshuffle`` and ``mae_loss`` stay consistent. Choose ``capacity = int(L * (1 -
    min_ratio))`` for ratios of at least ``min_ratio`` (``sample_mask_ratios``'s ``low``) and
    nothing is ever clipped. A ratio of 1 keeps no token (``len_keep`` 0, every slot invalid).

    The count is MAE's formula on the ratio's own value, in float64: a Python float ``0.9``
    at ``L=20`` keeps ``int(1.9999999999999996) = 1`` token (as ``random_masking``), while a
    float32 ratio holds ``0.89999998`` and keeps ``int(2.0000005) = 2``, traced or not.

    The core masks one sample and is ``jax.vmap``-ed over the batch, so with a batch of keys
    (e.g. ``example_keys``) sample ``i`` depends on its key, ratio and ``x[i]`` only, and a
    batch-sharded input stays sharded without collectives. Gradients flow to the kept tokens
    of ``x`` through ``x_masked``.
    """
    fn = "random_masking_per_sample"
    check_key_first(fn, key, "mask_ratio, capacity=K")
    if mask_ratio is None:
        raise TypeError(
            f"{fn}: mask_ratio is required: {fn}(key, x, mask_ratio, capacity=K) with a float "
            "or an [N] array of ratios (e.g. sample_mask_ratios)."
        )
    x = check_tokens(fn, x)
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    capacity = _check_capacity(fn, capacity, length)
    len_keep = _check_ratio(fn, mask_ratio, n, length, capacity)
    method = check_method(fn, method)
    mask_dtype = check_mask_dtype(fn, mask_dtype)
    static = dict(capacity=capacity, num_prefix=num_prefix, method=method, mask_dtype=mask_dtype)
    facts: dict[str, Any] = dict(num_prefix=num_prefix, capacity=capacity)
    if noise is not None:
        noise = check_noise(fn, noise, n, length)
        return PaddedMaskedTokens(*_per_sample_noise(noise, x, len_keep, **static), **facts)
    if key is None:
        raise ValueError(f"{fn}: pass a PRNG key, or noise= to choose the shuffle yourself.")
    key = check_key(fn, key, n)
    return PaddedMaskedTokens(*_per_sample_keys(key, x, len_keep, **static), **facts)


@functools.partial(jax.jit, static_argnames=("batch_size", "low", "high", "schedule", "tokens"))
def _sample_mask_ratios(
    key: jax.Array,
    *,
    batch_size: int,
    low: float,
    high: float,
    schedule: str | None,
    tokens: int | None,
) -> jax.Array:
    def one(k: jax.Array) -> jax.Array:
        u = jax.random.uniform(k, (), jnp.float32)
        if schedule is None:
            return low + (high - low) * u
        return mask_schedule(schedule, u, num_tokens=tokens)

    return jax.vmap(one)(per_sample_keys(key, batch_size))


def sample_mask_ratios(
    key: ArrayLike,
    batch_size: int,
    *,
    low: float | None = None,
    high: float | None = None,
    schedule: str | None = None,
    num_tokens: int | None = None,
) -> jax.Array:
    """Draws one mask ratio per sample: uniform in ``[low, high]`` (MAR) or a MaskGIT schedule.

    ``low + (high - low) * u`` (MAR) or ``mask_schedule(schedule, u)`` (MaskGIT), ``u`` uniform from
    each sample's own key; the ratios feed ``random_masking_per_sample``.

    Args:
      key: one PRNG key or a batch of ``batch_size`` keys.
      batch_size: static number of samples ``N``.
      low: static lower end of the uniform range, default 0.7 (not with ``schedule``).
      high: static upper end, default 1.0, at least ``low`` (not with ``schedule``).
      schedule: static ``mask_schedule`` name, e.g. ``'cosine'``.
      num_tokens: ``L``, needed by the ``'log'`` and ``'exp'`` schedules.

    Returns:
      [N] float32 mask ratios in ``[low, high]`` (schedule: in ``[1e-6, 1]``).

    Raises:
      TypeError: traced or non-numeric ``low``/``high``/``batch_size``, or a bad key.
      ValueError: ``low``/``high`` outside ``[0, 1]`` or ``low > high``, ``low``/``high``
        together with ``schedule``, an unknown schedule, or a key batch of the wrong length.

    Example:
      >>> import jax, jgather
      >>> r = jgather.sample_mask_ratios(jax.random.key(0), 4)
      >>> r.shape, bool(((r >= 0.7) & (r <= 1.0)).all())
      ((4,), True)
      >>> r = jgather.sample_mask_ratios(jax.random.key(0), 4, schedule="cosine")
      >>> bool(((r > 0) & (r <= 1)).all())
      True

    Without ``schedule``: ``r_i = low + (high - low) * u_i``, ``u_i ~ U[0, 1)`` (MAR draws its
    ratio from ``[0.7, 1.0]``, the defaults). With ``schedule``: ``r_i = mask_schedule(
    schedule, u_i)`` (MaskGIT training; ``low``/``high`` must then be left unset). Each sample
    draws from its own key (one key is split into ``batch_size``), so with a batch of keys
    sample ``i``'s ratio depends on ``key[i]`` alone. For ``random_masking_per_sample``,
    ``capacity = int(L * (1 - low))`` keeps every draw (MaskGIT's schedules reach down to
    ``1e-6``: ``capacity = L``). Draw the ratios from other keys than the masks (e.g.
    ``example_keys(jax.random.fold_in(base, 1), ids)``): one key used for both correlates the
    ratio with the shuffle.

    Note: MaskGIT masks ``ceil(gamma * L)`` tokens; MAE's rule used by
    ``random_masking_per_sample`` keeps ``int(L * (1 - gamma))``, the same count in exact
    arithmetic (float rounding can differ by one at exact multiples of ``1 / L``).
    """
    fn = "sample_mask_ratios"
    batch_size = _checks.static_int(fn, "batch_size", batch_size, minimum=1)
    if schedule is not None:
        if low is not None or high is not None:
            raise ValueError(
                f"{fn}: low/high set the uniform range; with schedule={schedule!r} the ratio is "
                "mask_schedule(schedule, u). Pass one or the other."
            )
        mask_schedule(schedule, 0.5, num_tokens=num_tokens)  # validates name and num_tokens
        lo = hi = 0.0
    else:
        lo = _checks.static_ratio(fn, "`low`", 0.7 if low is None else low)
        hi = _checks.static_ratio(fn, "`high`", 1.0 if high is None else high)
        if lo > hi:
            raise ValueError(f"{fn}: low={lo} must not exceed high={hi}.")
    key = check_key(fn, key, batch_size)
    tokens = None if num_tokens is None else int(num_tokens)
    return _sample_mask_ratios(
        key, batch_size=batch_size, low=lo, high=hi, schedule=schedule, tokens=tokens
    )
