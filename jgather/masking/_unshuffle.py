"""MAE's decoder input: ``unshuffle`` puts mask tokens back and undoes the shuffle."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks, _permute
from jgather.masking._arguments import check_method, check_tokens
from jgather.masking._mae import MaskedTokens
from jgather.masking._per_sample import PaddedMaskedTokens
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.masking._results import TokenTuple
from jgather.masking._take import take_rows

if TYPE_CHECKING:  # the result types that unshuffle reads, named in its signature
    from jgather.masking._mae import MaskedTokens
    from jgather.masking._per_sample import PaddedMaskedTokens

__all__ = ["unshuffle"]


@functools.partial(jax.jit, static_argnames=("num_prefix", "method"))
def _unshuffle(
    x_masked: jax.Array,
    ids_restore: jax.Array,
    mask_token: jax.Array,
    *,
    num_prefix: int,
    method: str | None,
) -> jax.Array:
    len_keep = x_masked.shape[1] - num_prefix
    sharding = batch_sharding(x_masked, ids_restore)
    x_masked, ids_restore = (to_batch_sharding(a, sharding) for a in (x_masked, ids_restore))

    def one(x: jax.Array, ids: jax.Array) -> jax.Array:
        kept = x[num_prefix:]
        removed = (ids >= len_keep)[:, None]
        if len_keep == 0:  # nothing was kept (MAE's formula at high ratios): all mask tokens
            body = jnp.broadcast_to(mask_token, (ids.shape[0], x.shape[-1]))
            return jnp.concatenate([x[:num_prefix], body]) if num_prefix else body

        # Output token j reads kept slot ids[j]; a removed token (ids[j] >= len_keep) reads a
        # row that the mask token replaces below, so no gradient reaches the kept tokens from
        # it. Kept token k sits at output position perm[k] (perm: the shuffle, the inverse of
        # ids), so the gather's gradient gathers there.
        rows = take_rows(kept, ids, method, partial=True)
        body = jnp.where(removed, mask_token, rows)
        return jnp.concatenate([x[:num_prefix], body]) if num_prefix else body

    return jax.vmap(one)(x_masked, ids_restore)


def unshuffle(
    x_masked: jax.Array,
    ids_restore: jax.Array | MaskedTokens | PaddedMaskedTokens,
    mask_token: jax.Array,
    *,
    num_prefix: int | None = None,
    method: Literal["gather", "onehot"] | None = None,
) -> jax.Array:
    """Appends mask tokens and undoes the shuffle: MAE's decoder input.

    Mirrors MAE's ``forward_decoder``: ``cat([x[:, P:], mask_tokens])`` gathered by
    ``ids_restore`` along the token axis, with the ``P`` prefix tokens passed through in front.
    Written without building the concatenation: output token ``j`` is kept token
    ``ids_restore[j]`` when that is below ``len_keep`` and ``mask_token`` otherwise, for one
    sample, ``jax.vmap``-ed over the batch.

    Args:
      x_masked: [N, P + len_keep, D] (e.g. the encoder output after the decoder embedding;
        ``D`` need not equal the width ``random_masking`` saw).
      ids_restore: the ``MaskedTokens`` (or ``PaddedMaskedTokens``) from ``random_masking``,
        ``apply_mask`` or ``random_masking_per_sample``; or its [N, L] integer ``ids_restore``
        array, then with ``num_prefix``.
      mask_token: [D] (or [1, D], [1, 1, D] as MAE stores it); cast to ``x_masked``'s dtype.
      num_prefix: static number of leading prefix tokens in ``x_masked`` (passed through).
        Required with an array ``ids_restore`` (0 for MAE's encoder output without its cls
        token, 1 with it); defaults to the recorded count with a ``MaskedTokens``.
      method: ``'gather'``, ``'onehot'`` or ``None`` (see ``random_masking``).

    Returns:
      [N, P + L, D]: prefix tokens, then every token in original order, removed ones replaced
      by ``mask_token`` (all of them when nothing was kept).

    Raises:
      ValueError: ``num_prefix`` missing with an array ``ids_restore``; ``x_masked``'s token
        count disagrees with the ``MaskedTokens`` (e.g. a prepended cls token without
        ``num_prefix``); shapes disagree (batch, width, ``len_keep > L``); unknown ``method``;
        a concrete ``ids_restore`` that repeats a kept slot in a row.
      TypeError: ``ids_restore`` is not an integer array.

    Example:
      >>> import jax, jax.numpy as jnp, jgather
      >>> x = jnp.arange(12.0).reshape(1, 6, 2)
      >>> out = jgather.random_masking(jax.random.key(1), x, 0.5)
      >>> full = jgather.unshuffle(out.x_masked, out, jnp.full((2,), -1.0))
      >>> bool(jnp.all(jnp.where(out.mask[..., None] == 1, -1.0, x) == full))
      True
      >>> cls = jnp.zeros((1, 1, 2))  # MAE prepends its cls token after masking
      >>> with_cls = jnp.concatenate([cls, out.x_masked], axis=1)
      >>> jgather.unshuffle(with_cls, out, jnp.full((2,), -1.0), num_prefix=1).shape
      (1, 7, 2)
      >>> jgather.unshuffle(with_cls, out.ids_restore, jnp.full((2,), -1.0), num_prefix=1).shape
      (1, 7, 2)

    The prefix count cannot be read from an ``ids_restore`` array, and a wrong one is silent in
    MAE (a cls token lands among the kept tokens, the last kept token is dropped). So pass the
    masking's result itself in place of ``ids_restore`` (``unshuffle(x, masked, token)``): it
    records ``num_prefix`` and the kept count, and ``x_masked`` must then hold exactly
    ``num_prefix + len_keep`` tokens (``num_prefix=`` overrides the recorded count, e.g. after
    prepending a cls token to MAE-style ``num_prefix=0`` masking); with a raw array,
    ``num_prefix`` is required.

    No two tokens may read the same kept slot (``ids_restore`` below ``len_keep`` is unique
    per row, as every masking returns it): the gradient gathers each kept slot's cotangent at
    the one token that reads it (no scatter), so a repeat would lose one. A concrete
    ``ids_restore`` is checked (``ValueError``); under ``jax.jit`` it is taken as given.
    """
    fn = "unshuffle"
    x_masked = check_tokens(fn, x_masked, "x_masked")
    n, kept_total, d = x_masked.shape
    slots = None
    if isinstance(ids_restore, TokenTuple):
        slots = ids_restore._kept_slots
        if num_prefix is None:
            num_prefix = ids_restore.num_prefix
        ids_restore = ids_restore.ids_restore
    if num_prefix is None:
        raise ValueError(
            f"{fn}: pass the masking result in place of ids_restore (unshuffle(x_masked, "
            "masked, mask_token), which records the prefix and kept counts), or say how many "
            "prefix tokens lead x_masked: num_prefix=0 for MAE's encoder output without a cls "
            "token, num_prefix=1 with one. An ids_restore array cannot tell, and a wrong count "
            "misplaces every token silently."
        )
    # Nothing may be kept (MAE's formula at high ratios), so the prefix may be all of x_masked.
    num_prefix = _checks.num_prefix(fn, num_prefix, kept_total, maskable=False)
    if slots is not None and kept_total != num_prefix + slots:
        extra = kept_total - num_prefix - slots
        if extra > 0:
            hint = (
                f"x_masked has {extra} more tokens than the masking kept ({num_prefix} prefix + "
                f"{slots} kept = {num_prefix + slots}, got {kept_total}): did you prepend "
                f"{extra} cls token(s)? pass num_prefix={num_prefix + extra}."
            )
        elif kept_total >= slots:
            hint = (
                f"x_masked has {-extra} fewer tokens than {num_prefix} prefix + {slots} kept = "
                f"{num_prefix + slots} (got {kept_total}): did you drop prefix tokens? pass "
                f"num_prefix={kept_total - slots}."
            )
        else:
            hint = (
                f"x_masked has {kept_total} tokens but the masking kept {slots}; pass the "
                "x_masked of this masking (after the encoder)."
            )
        raise ValueError(f"{fn}: {hint}")
    ids_restore = _checks.as_array(
        fn, "ids_restore", ids_restore, hint="pass the masking result or its ids_restore"
    )
    if not jnp.issubdtype(ids_restore.dtype, jnp.integer):
        raise TypeError(f"{fn}: ids_restore must be an integer array, got {ids_restore.dtype}.")
    if ids_restore.ndim != 2 or ids_restore.shape[0] != n:
        raise ValueError(
            f"{fn}: ids_restore must have shape [N, L] with N={n} (x_masked's batch), got "
            f"{tuple(ids_restore.shape)}."
        )
    length = ids_restore.shape[1]
    len_keep = kept_total - num_prefix
    if len_keep > length:
        raise ValueError(
            f"{fn}: x_masked holds {len_keep} kept tokens (after {num_prefix} prefix tokens) "
            f"but ids_restore covers only L={length}; did you pass num_prefix?"
        )
    mask_token = _checks.as_array(
        fn, "mask_token", mask_token, hint=f"pass the [D] = [{d}] token that fills removed places"
    )
    if mask_token.size != d or any(s != 1 for s in mask_token.shape[:-1]):
        raise ValueError(
            f"{fn}: mask_token must have shape [D] = [{d}] (or [1, 1, {d}]), got "
            f"{tuple(mask_token.shape)}."
        )
    method = check_method(fn, method)
    if not _checks.is_traced(ids_restore):
        ids = np.asarray(jax.device_get(ids_restore)).astype(np.int64)
        beyond = len_keep + np.arange(length)  # removed tokens may share a slot: distinct here
        _permute.check_unique(
            fn,
            np.where(ids < len_keep, ids, beyond),
            1,
            "a row of ids_restore",
            f"each of the {len_keep} kept slots is read by at most one token; pass the "
            "ids_restore of a masking (its kept slots are a permutation's)",
        )
    token = mask_token.reshape(d).astype(x_masked.dtype)
    return _unshuffle(
        x_masked, ids_restore.astype(jnp.int32), token, num_prefix=num_prefix, method=method
    )
