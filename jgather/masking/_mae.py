"""MAE's per-sample random masking, its inverse for the decoder, and fixed-count masks.

``random_masking`` re-states the algorithm of MAE's ``random_masking`` (He et al., 2021): each
sample's tokens are shuffled by sorting per-sample uniform noise, the first ``len_keep`` are
kept, and ``ids_restore`` (the inverse permutation) lets the decoder put mask tokens back in
place (``unshuffle``). ``apply_mask`` turns any fixed-count mask (the other strategies
of ``jgather.masking``) into the same triple.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator
from typing import Any, Literal, Self

import chex  # type: ignore[import-untyped]  # chex ships no py.typed marker
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.typing import ArrayLike, DTypeLike

from jgather import _checks, _platform
from jgather._gather import index_select
from jgather.masking._keys import batch_sharding, check_key, per_sample_keys, to_batch_sharding
from jgather.masking._permutation import (
    _argsort_noise,
    _inverse_permutations,
    _packed_argsort,
    _random_permutation,
)

Method = Literal["gather", "onehot"] | None

_METHODS = (None, "gather", "onehot")


class _TokenTuple:
    """Tuple behaviour for the masking results, over their array fields only.

    They unpack, index and count like the NamedTuple (MAE's 3-tuple) they were, while also
    carrying static facts (``num_prefix``, the kept count) that ``unshuffle`` checks against;
    the static facts are pytree metadata, so the results pass through ``jax.jit``,
    ``jax.vmap`` and ``jax.tree.map`` unchanged.
    """

    _fields: tuple[str, ...] = ()
    # Declared for the checker only (not dataclass fields here): every result type has them.
    ids_restore: jax.Array
    num_prefix: int | None

    def __iter__(self) -> Iterator[jax.Array]:
        return (getattr(self, name) for name in self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, index: int | slice) -> Any:
        return tuple(self)[index]

    def _replace(self, **changes: Any) -> Self:
        # Every subclass is a dataclass; this mixin itself is not, which replace's TypeVar needs.
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @property
    def _kept_slots(self) -> int | None:
        """Static number of token slots after the prefix in ``x_masked`` (None: unknown)."""
        raise NotImplementedError


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["x_masked", "mask", "ids_restore"],
    meta_fields=["num_prefix", "len_keep"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class MaskedTokens(_TokenTuple):
    """The result of ``random_masking`` and ``apply_mask``; unpacks like MAE's 3-tuple.

    ``x_masked, mask, ids_restore = random_masking(...)`` works as with MAE; the result also
    records, as static pytree metadata, how many prefix tokens lead ``x_masked`` and how many
    tokens were kept, so ``unshuffle(x_masked, masked, mask_token)`` (the result in place of
    ``ids_restore``) can check the token count it is given.

    Attributes:
      x_masked: [N, P + len_keep, D] the ``P`` prefix tokens (``num_prefix``), then the kept
        tokens in shuffled order.
      mask: [N, L] float32 (``mask_dtype``), 0 for kept and 1 for removed tokens, in original
        order (prefix tokens are not part of it).
      ids_restore: [N, L] int32, the inverse of the shuffle: token ``j`` of the original
        sequence sits at position ``ids_restore[:, j]`` of ``[kept tokens, removed tokens]``.
      num_prefix: static ``P`` (None when built by hand without it).
      len_keep: static number of kept tokens per sample (None when built by hand without it).
    """

    x_masked: jax.Array
    mask: jax.Array
    ids_restore: jax.Array
    num_prefix: int | None = None
    len_keep: int | None = None

    _fields = ("x_masked", "mask", "ids_restore")

    @property
    def _kept_slots(self) -> int | None:
        return self.len_keep


# ----------------------------------------------------------------------------------------------
# Argument checks (trace time, static shapes only).


def _check_method(fn: str, method: Any) -> Literal["gather", "onehot"] | None:
    if method not in _METHODS:
        raise ValueError(
            f"{fn}: unknown method {method!r}; expected 'gather', 'onehot' or None (the "
            "backend's default)."
        )
    return method


def default_method(backend: str | None = None) -> Literal["gather", "onehot"]:
    """The token-gather lowering that ``method=None`` gives on ``backend``.

    The choice is staged with ``jax.lax.platform_dependent``: it follows the platform the
    program is lowered for (also ``jax.export`` or AOT compilation for a TPU from a CPU host),
    not the host's default backend, which is what ``backend=None`` reports here.

    ``'gather'`` on CPU and GPU, where one ``lax.gather`` of whole rows moves each kept byte
    once while the one-hot product costs ``K * L * D`` multiply-adds per sample (for the
    measured comparison see ``benchmarks/masking.py`` and ``benchmarks/results/masking.json``).
    ``'onehot'`` on TPU, where the product runs on the matrix unit and FLIP (Li et al., 2023)
    reports gathers to be slow when the batch is sharded; not measured here (no TPU).
    ``'gather'`` is exact for every value; ``'onehot'`` for finite values other than ``-0.0``
    (see ``random_masking``'s ``method`` for what it does with ``-0.0``, inf and NaN).
    """
    backend = jax.default_backend() if backend is None else backend
    return "onehot" if backend == "tpu" else "gather"


def _len_keep(fn: str, mask_ratio: Any, length: int) -> int:
    ratio = _checks.static_ratio(fn, "mask_ratio", mask_ratio, what="the shape of x_masked")
    # MAE's formula, float rounding included. It may keep no token (mask_ratio=1.0, or L=16 at
    # 0.95): x_masked is then the prefix tokens only and every token is masked, as in MAE.
    return int(length * (1 - ratio))


def _check_mask_dtype(fn: str, mask_dtype: Any) -> np.dtype:
    return _checks.dtype(fn, "mask_dtype", mask_dtype, hint="default float32, as MAE's mask")


def _check_key_first(fn: str, key: Any, call: str) -> None:
    """Catches data where the key goes: MAE's order ``random_masking(x, mask_ratio)``.

    ``check_key`` would then see the tokens as a key and the ratio as ``x``, and the error would
    be about ``x``'s shape. Arrays that cannot be keys (a non-key dtype other than uint32, or a
    uint32 array that is neither one legacy key nor a batch of them) are named here.
    """
    dtype, shape = getattr(key, "dtype", None), getattr(key, "shape", None)
    if dtype is None or shape is None:
        return  # None, or not an array: check_key (or the noise= path) says what is wrong.
    if jnp.issubdtype(dtype, jax.dtypes.prng_key):
        return
    if dtype == np.uint32 and len(shape) in (1, 2):
        return  # legacy jax.random.PRNGKey data, one or a batch: check_key reads it.
    raise TypeError(
        f"{fn}: key must be a PRNG key (it comes first), got a {dtype} array of shape "
        f"{tuple(shape)}. jgather's random functions take the key first, as jax.random does: "
        f"{fn}(key, x, {call}) with key = jax.random.key(seed) (or a batch of N keys); to give "
        f"the shuffle's noise yourself (as MAE's torch.rand), {fn}(None, x, {call}, "
        "noise=noise). MAE's own random_masking(x, mask_ratio) has no key argument."
    )


def _check_noise(fn: str, noise: Any, n: int, length: int) -> jax.Array:
    """``noise`` as an [N, L] floating or integer array (one value per maskable token)."""
    noise = _checks.as_array(fn, "noise", noise, hint="pass [N, L] floats, or noise=None")
    if noise.shape != (n, length):
        raise ValueError(
            f"{fn}: noise must have shape [N, L] = {(n, length)} (one value per maskable "
            f"token), got {tuple(noise.shape)}."
        )
    if not (jnp.issubdtype(noise.dtype, jnp.floating) or jnp.issubdtype(noise.dtype, jnp.integer)):
        raise TypeError(f"{fn}: noise must be floating or integer, got {noise.dtype}.")
    return noise


def _check_x(fn: str, x: Any, name: str = "x") -> jax.Array:
    x = _checks.as_array(fn, name, x, hint="pass tokens [N, L, D]")
    if x.ndim != 3:
        raise ValueError(
            f"{fn}: {name} must have shape [N, L, D] (3 dims), got shape {tuple(x.shape)}; "
            "flatten the feature dims or add a batch dim with x[None]."
        )
    return x


def _take_rows(
    x: jax.Array,
    rows: jax.Array,
    method: str | None,
    inverse: jax.Array | None = None,
    *,
    mode: str = "promise_in_bounds",
) -> jax.Array:
    """``x[rows]`` for one sample: [L, D] and [K] -> [K, D]; ``method=None`` picks per
    platform (one-hot on TPU, a gather elsewhere).

    ``inverse`` [L]: the slot of each row of ``x`` in ``rows`` (a value outside ``[0, K)``
    for rows not taken); with it the gather's gradient is a gather (no scatter). The one-hot
    product's gradient is a matrix product.
    """

    def onehot() -> jax.Array:
        hot = jax.nn.one_hot(rows, x.shape[0], dtype=x.dtype)
        return jnp.einsum(
            "kl,ld->kd", hot, x, precision=lax.Precision.HIGHEST, preferred_element_type=x.dtype
        )

    def gather() -> jax.Array:
        # The rows come from a permutation: in range (or filled, with mode='fill') and unique.
        return index_select(x, 0, rows, mode=mode, inverse=inverse)  # type: ignore[arg-type]

    if method is None:
        return _platform.tpu_or_other(onehot, gather)
    return onehot() if method == "onehot" else gather()


def _mask_batch(
    x: jax.Array,
    perms: jax.Array,
    len_keep: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> MaskedTokens:
    """Masks [N, P + L, D] given each sample's shuffle ``perms`` [N, L] of its L tokens."""
    length = perms.shape[1]
    chex.assert_shape(x, (None, num_prefix + length, None))
    ids_restore = _inverse_permutations(perms)

    def take(x: jax.Array, perm: jax.Array, restore: jax.Array) -> jax.Array:
        rows = perm[:len_keep] + num_prefix
        # ids_restore is the slot of each token in the shuffle: the inverse of the kept rows
        # (slots from len_keep on are the removed tokens, outside x_masked).
        inverse = restore + num_prefix
        if num_prefix:  # 0..P-1 first: a pad and an add, which explicit sharding allows
            prefix = jnp.pad(lax.iota(jnp.int32, num_prefix), (0, len_keep))
            rows = jnp.pad(rows, (num_prefix, 0)) + prefix
            first = lax.iota(jnp.int32, num_prefix)
            inverse = jnp.pad(inverse, (num_prefix, 0)) + jnp.pad(first, (0, length))
        return _take_rows(x, rows, method, inverse)

    x_masked = jax.vmap(take)(x, perms, ids_restore)
    mask = (ids_restore >= len_keep).astype(mask_dtype)
    return MaskedTokens(x_masked, mask, ids_restore)


@functools.partial(jax.jit, static_argnames=("len_keep", "num_prefix", "method", "mask_dtype"))
def _random_masking_keys(
    key: jax.Array,
    x: jax.Array,
    *,
    len_keep: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> MaskedTokens:
    n, total, _ = x.shape
    length = total - num_prefix
    sharding = batch_sharding(x, key)
    x = to_batch_sharding(x, sharding)
    keys = per_sample_keys(key, n, sharding)
    perms = jax.vmap(lambda k: _random_permutation(k, length))(keys)
    return _mask_batch(x, perms, len_keep, num_prefix, method, mask_dtype)


@functools.partial(jax.jit, static_argnames=("len_keep", "num_prefix", "method", "mask_dtype"))
def _random_masking_noise(
    noise: jax.Array,
    x: jax.Array,
    *,
    len_keep: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> MaskedTokens:
    sharding = batch_sharding(x, noise)
    x, noise = (to_batch_sharding(a, sharding) for a in (x, noise))
    perms = jax.vmap(_argsort_noise)(noise)
    return _mask_batch(x, perms, len_keep, num_prefix, method, mask_dtype)


# ----------------------------------------------------------------------------------------------
# Public functions.


def random_masking(
    key: ArrayLike | None,
    x: jax.Array,
    mask_ratio: float = 0.75,
    *,
    noise: jax.Array | None = None,
    num_prefix: int = 0,
    method: Literal["gather", "onehot"] | None = None,
    mask_dtype: DTypeLike = jnp.float32,
) -> MaskedTokens:
    """Per-sample random masking by per-sample shuffling, as in MAE's ``random_masking``.

    Keeps ``len_keep = int(L * (1 - mask_ratio))`` tokens of each sample, as MAE does, and returns
    MAE's ``(x_masked, mask, ids_restore)`` (a :class:`MaskedTokens`).

    Args:
      key: a ``jax.random.key`` or legacy ``jax.random.PRNGKey``, split into one key per sample
        with ``jax.random.split(key, N)``; or a batch of ``N`` keys, one per sample. Ignored
        (may be ``None``) when ``noise`` is given.
      x: [N, P + L, D] tokens.
      mask_ratio: static Python float in ``[0, 1]``, the fraction of tokens removed.
      noise: optional [N, L] floating (or integer) values replacing the random draw; tokens with
        smaller noise are kept.
      num_prefix: static number of leading tokens that are never masked.
      method: ``'gather'`` (``lax.gather`` of whole rows, exact for every value),
        ``'onehot'`` (one-hot matrix product, exact for finite values other than ``-0.0``,
        which becomes ``+0.0``; an ``inf`` or NaN at feature ``d`` of any token of a sample,
        kept or removed, makes feature ``d`` NaN in every kept token of that sample that does
        not hold it, since ``0 * inf`` is NaN), or ``None`` for ``default_method()``:
        ``'gather'`` on CPU/GPU, ``'onehot'`` on TPU.
      mask_dtype: static dtype of ``mask``: float32 (as MAE's) whatever ``x``'s dtype, so that
        ``mask.sum()`` counts exactly (a bfloat16 mask cannot count past 256 exactly).

    Returns:
      ``MaskedTokens(x_masked, mask, ids_restore)``, with ``num_prefix`` and ``len_keep``
      recorded for ``unshuffle``: ``x_masked`` [N, P + len_keep, D] in ``x``'s dtype;
      ``mask`` [N, L] ``mask_dtype`` (0 keep, 1 remove); ``ids_restore`` [N, L] int32.

    Raises:
      TypeError: ``mask_ratio`` is traced or not a number; ``key`` is not a key (e.g. the
        tokens, in MAE's argument order); ``mask_dtype`` is not a dtype.
      ValueError: ``x`` is not 3-D; ``mask_ratio`` is outside ``[0, 1]``; ``key``/``noise``
        have the wrong shape, or both are ``None``; unknown ``method``.

    Example:
      >>> import jax, jax.numpy as jnp, jgather
      >>> x = jnp.arange(64.0).reshape(1, 16, 4)
      >>> noise = jnp.ones((1, 16)).at[0, jnp.array([10, 12, 4, 13])].set(
      ...     jnp.array([0.1, 0.2, 0.3, 0.4]))
      >>> x_masked, mask, ids_restore = jgather.random_masking(None, x, 0.75, noise=noise)
      >>> x_masked[0, :, 0]
      Array([40., 48., 16., 52.], dtype=float32)
      >>> mask[0].astype(int).tolist()
      [1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1]
      >>> jgather.random_masking(jax.random.key(0), x, 0.75).x_masked.shape
      (1, 4, 4)
      >>> jgather.random_masking(jax.random.key(0), x, 1.0).x_masked.shape  # as MAE: none kept
      (1, 0, 4)

    Mirrors MAE (He et al., 2021): ``len_keep = int(L * (1 - mask_ratio))``; each sample's
    ``L`` tokens are shuffled by the ascending order of per-sample noise, the first
    ``len_keep`` are kept (``x_masked``, in shuffled order), and ``mask`` / ``ids_restore``
    describe the shuffle in original order. With ``noise=`` the three outputs equal MAE's for
    that noise, with ties ordered as ``torch.argsort(noise, dim=1, stable=True)`` (equal noise:
    lower index first). Without it, the shuffle is a uniformly random permutation up to a
    total-variation distance of ``tie_probability_bound(L)`` (3e-13 at L=196, 1e-10 at
    L=1568): each sample's order sorts 64-bit keys of random bits and token position, and only
    a tie between two keys' random bits departs from uniform.

    The core masks one sample and is ``jax.vmap``-ed over the batch, so sample ``i`` depends on
    ``x[i]`` and its own key or noise only: with a batch of keys its mask does not change when
    the batch grows, shrinks or is sharded, and a batch-sharded input stays sharded with no
    collective communication.

    Prefix tokens: with ``num_prefix=P``, ``x`` is ``[N, P + L, D]`` (e.g. a cls token first,
    as in timm/DeiT layouts), the first ``P`` tokens are always kept and lead ``x_masked``, and
    ``mask``, ``ids_restore`` and ``noise`` cover the ``L`` patch tokens only, so that
    ``unshuffle(x, masked, mask_token)`` and ``mae_loss`` take them unchanged. (MAE itself
    masks before adding its cls token; ``num_prefix=0`` there, and ``num_prefix=1`` for
    ``unshuffle`` after the cls token is prepended.)

    Where MAE's formula keeps no token (``mask_ratio=1.0``, or ``L=16`` at 0.95), ``x_masked``
    is the ``P`` prefix tokens only, ``mask`` is all ones and ``ids_restore`` is MAE's, as MAE
    returns them; ``unshuffle`` then gives all mask tokens.

    The key comes first (as in ``jax.random``); MAE's ``random_masking(x, mask_ratio)`` order
    is a ``TypeError`` that names ``random_masking(key, x, mask_ratio)`` and the
    ``random_masking(None, x, mask_ratio, noise=noise)`` form.

    References:
      He et al., "Masked Autoencoders Are Scalable Vision Learners",
      https://arxiv.org/abs/2111.06377
    """
    fn = "random_masking"
    _check_key_first(fn, key, "mask_ratio")
    x = _check_x(fn, x)
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    len_keep = _len_keep(fn, mask_ratio, length)
    method = _check_method(fn, method)
    mask_dtype = _check_mask_dtype(fn, mask_dtype)
    static = dict(len_keep=len_keep, num_prefix=num_prefix, method=method, mask_dtype=mask_dtype)
    facts: dict[str, Any] = dict(num_prefix=num_prefix, len_keep=len_keep)
    if noise is not None:
        noise = _check_noise(fn, noise, n, length)
        return MaskedTokens(*_random_masking_noise(noise, x, **static), **facts)
    if key is None:
        raise ValueError(f"{fn}: pass a PRNG key, or noise= to choose the shuffle yourself.")
    key = check_key(fn, key, n)
    return MaskedTokens(*_random_masking_keys(key, x, **static), **facts)


@functools.partial(jax.jit, static_argnames=("num_keep", "num_prefix", "method", "mask_dtype"))
def _apply_mask(
    x: jax.Array,
    removed: jax.Array,
    *,
    num_keep: int,
    num_prefix: int,
    method: str | None,
    mask_dtype: Any,
) -> MaskedTokens:
    sharding = batch_sharding(x, removed)
    x, removed = (to_batch_sharding(a, sharding) for a in (x, removed))
    # Kept tokens first, each group in original order: a stable argsort of the 0/1 mask.
    argsort = lambda r: _packed_argsort(r.astype(jnp.uint32), key_bits=1)
    perms = jax.vmap(argsort)(removed)
    return _mask_batch(x, perms, num_keep, num_prefix, method, mask_dtype)


def apply_mask(
    x: jax.Array,
    mask: jax.Array,
    num_keep: int,
    *,
    num_prefix: int = 0,
    method: Literal["gather", "onehot"] | None = None,
    mask_dtype: DTypeLike = jnp.float32,
) -> MaskedTokens:
    """Turns a fixed-count mask into the ``(x_masked, mask, ids_restore)`` triple.

    For masks drawn by other strategies (block, tube, SimMIM, ...): the kept tokens, in
    original order, followed by the removed ones, in original order, form the shuffle; the
    result then feeds ``unshuffle`` and ``mae_loss`` exactly like ``random_masking``'s.

    Every row of ``mask`` must keep exactly ``num_keep`` tokens. This is checked (``ValueError``)
    when ``mask`` holds concrete values; under ``jax.jit`` it cannot be, and a row with a
    different count keeps its first ``num_keep`` tokens in shuffle order. The returned ``mask``
    always describes exactly the tokens in ``x_masked``, so it differs from the input then.

    Args:
      x: [N, P + L, D] tokens.
      mask: [N, L] boolean or numeric, True / nonzero = removed (masked).
      num_keep: static number of kept tokens per sample, in ``[0, L]`` (0: ``x_masked`` holds
        the prefix tokens only and every token is masked).
      num_prefix: static number of leading prefix tokens, always kept (see ``random_masking``).
      method: ``'gather'``, ``'onehot'`` or ``None`` (see ``random_masking``).
      mask_dtype: static dtype of the returned ``mask`` (float32, as MAE's).

    Returns:
      ``MaskedTokens`` (with ``num_prefix`` and ``len_keep = num_keep`` recorded for
      ``unshuffle``): ``x_masked`` [N, P + num_keep, D]; ``mask`` [N, L] ``mask_dtype`` (0 keep,
      1 remove); ``ids_restore`` [N, L] int32.

    Raises:
      ValueError: shapes disagree, ``num_keep`` is outside ``[0, L]``, or a concrete mask has a
        row that does not keep exactly ``num_keep`` tokens.
      TypeError: ``num_keep`` is not a Python int; ``mask_dtype`` is not a dtype.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> x = jnp.arange(8.0).reshape(1, 4, 2)
      >>> out = jgather.apply_mask(x, jnp.array([[True, False, True, False]]), 2)
      >>> out.x_masked[0].tolist(), out.ids_restore[0].tolist()
      ([[2.0, 3.0], [6.0, 7.0]], [2, 0, 3, 1])
    """
    fn = "apply_mask"
    x = _check_x(fn, x)
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    mask = _checks.as_array(fn, "mask", mask, hint="pass an [N, L] boolean mask, True = removed")
    if mask.shape != (n, length):
        raise ValueError(
            f"{fn}: mask must have shape [N, L] = {(n, length)} (x without its {num_prefix} "
            f"prefix tokens), got {tuple(mask.shape)}."
        )
    num_keep = _checks.static_int(
        fn, "num_keep", num_keep, minimum=0, maximum=length, what="the shape of x_masked"
    )
    removed = mask.astype(jnp.bool_) if mask.dtype != jnp.bool_ else mask
    if not _checks.is_traced(removed):
        # Read the mask on the host (an explicit transfer, which jax.transfer_guard allows)
        # and count there: no Python scalar goes to the device.
        counts = length - np.asarray(jax.device_get(removed)).sum(axis=1)
        bad = np.flatnonzero(counts != num_keep)
        if bad.size:
            raise ValueError(
                f"{fn}: every row of mask must keep num_keep={num_keep} tokens; row "
                f"{int(bad[0])} keeps {int(counts[bad[0]])}."
            )
    method = _check_method(fn, method)
    mask_dtype = _check_mask_dtype(fn, mask_dtype)
    static = dict(num_keep=num_keep, num_prefix=num_prefix, method=method, mask_dtype=mask_dtype)
    facts: dict[str, Any] = dict(num_prefix=num_prefix, len_keep=num_keep)
    return MaskedTokens(*_apply_mask(x, removed, **static), **facts)
