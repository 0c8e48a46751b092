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
from typing import Any, Literal

import chex  # type: ignore[import-untyped]  # chex ships no py.typed marker
import jax
import jax.numpy as jnp
import numpy as np
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
from jgather.masking._permutation import (
    argsort_noise,
    inverse_permutations,
    packed_argsort,
    random_permutation,
)
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.masking._results import TokenTuple
from jgather.masking._take import after_prefix, take_rows


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["x_masked", "mask", "ids_restore"],
    meta_fields=["num_prefix", "len_keep"],
)
@dataclasses.dataclass(frozen=True, eq=False)
class MaskedTokens(TokenTuple):
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
# Argument checks (trace time, static shapes only) beyond the family's (``_arguments``).


def _len_keep(fn: str, mask_ratio: Any, length: int) -> int:
    ratio = _checks.static_ratio(fn, "mask_ratio", mask_ratio, what="the shape of x_masked")
    # MAE's formula, float rounding included. It may keep no token (mask_ratio=1.0, or L=16 at
    # 0.95): x_masked is then the prefix tokens only and every token is masked, as in MAE.
    return int(length * (1 - ratio))


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
    ids_restore = inverse_permutations(perms)

    def take(x: jax.Array, perm: jax.Array, restore: jax.Array) -> jax.Array:
        # ids_restore is the slot of each token in the shuffle: the inverse of the kept rows
        # (slots from len_keep on are the removed tokens, outside x_masked).
        rows = after_prefix(perm[:len_keep], num_prefix)
        return take_rows(x, rows, method, after_prefix(restore, num_prefix))

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
    perms = jax.vmap(lambda k: random_permutation(k, length))(keys)
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
    perms = jax.vmap(argsort_noise)(noise)
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
        not hold it, since ``0 * inf`` is NaN), or ``None``, chosen for the platform the
        program is lowered for (also by ``jax.export``): ``'gather'`` on CPU/GPU,
        ``'onehot'`` on TPU.
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
    check_key_first(fn, key, "mask_ratio")
    x = check_tokens(fn, x)
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    len_keep = _len_keep(fn, mask_ratio, length)
    method = check_method(fn, method)
    mask_dtype = check_mask_dtype(fn, mask_dtype)
    static = dict(len_keep=len_keep, num_prefix=num_prefix, method=method, mask_dtype=mask_dtype)
    facts: dict[str, Any] = dict(num_prefix=num_prefix, len_keep=len_keep)
    if noise is not None:
        noise = check_noise(fn, noise, n, length)
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
    argsort = lambda r: packed_argsort(r.astype(jnp.uint32), key_bits=1)
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
    x = check_tokens(fn, x)
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    hint = "pass an [N, L] boolean mask, True = removed"
    mask = _checks.per_token(fn, "mask", mask, n, length, num_prefix, hint=hint)
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
    method = check_method(fn, method)
    mask_dtype = check_mask_dtype(fn, mask_dtype)
    static = dict(num_keep=num_keep, num_prefix=num_prefix, method=method, mask_dtype=mask_dtype)
    facts: dict[str, Any] = dict(num_prefix=num_prefix, len_keep=num_keep)
    return MaskedTokens(*_apply_mask(x, removed, **static), **facts)
