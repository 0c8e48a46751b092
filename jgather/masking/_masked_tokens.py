"""The masked (removed) tokens in original order: VideoMAE's ``patches[mask]`` in fixed shapes.

MAE's decoder predicts every token and its loss weights the removed ones; VideoMAE's decoder
predicts the removed tokens only, and takes its targets as ``labels = patches[mask]`` (and the
decoder's positions as ``pos[mask]``), which lists each sample's removed tokens in ascending
token order. With a fixed count of removed tokens per sample that is a static shape:
``masked_ids`` gives the ids, ``take_masked`` the rows.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax import lax

from jgather import _checks
from jgather.masking._arguments import check_method, check_tokens
from jgather.masking._mae import MaskedTokens
from jgather.masking._permutation import packed_argsort
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.masking._take import take_rows


def removed_rows(removed: jax.Array, count: int) -> jax.Array:
    """[count] int32: the first ``count`` removed positions of one [L] bool row, ascending.

    A stable argsort of ``not removed`` puts the removed tokens first, each group in original
    order; a row with fewer than ``count`` removed tokens continues with its kept ones.
    """
    order = packed_argsort(jnp.logical_not(removed).astype(jnp.uint32), key_bits=1)
    return order[:count]


def _removed_slots(removed: jax.Array) -> jax.Array:
    """[L] int32: each token's position in the order of ``removed_rows`` (its inverse).

    Removed tokens count the removed ones before them; kept ones follow all removed ones, in
    order. Two cumulative sums, no scatter: the gradient of ``take_masked`` gathers by it.
    """
    r = removed.astype(jnp.int32)
    before = jnp.cumsum(r) - r  # removed tokens before each token
    return jnp.where(removed, before, jnp.sum(r) + lax.iota(jnp.int32, r.shape[0]) - before)


def _check_masked(fn: str, masked: Any) -> tuple[jax.Array, int]:
    """``masked``'s ``ids_restore`` [N, L] and its static kept count ``len_keep``."""
    if not isinstance(masked, MaskedTokens):
        raise TypeError(
            f"{fn}: masked must be the MaskedTokens of random_masking or apply_mask (it "
            f"records the kept count), got {type(masked).__name__}; for a boolean mask with a "
            "fixed count, pass apply_mask(x, mask, num_keep) first."
        )
    ids_restore = _checks.as_array(fn, "masked.ids_restore", masked.ids_restore)
    if ids_restore.ndim != 2:
        raise ValueError(
            f"{fn}: masked.ids_restore must be [N, L], got shape {tuple(ids_restore.shape)}."
        )
    if masked.len_keep is None:
        raise ValueError(
            f"{fn}: masked does not record its kept count (len_keep is None, built by hand); "
            "build it as MaskedTokens(x_masked, mask, ids_restore, len_keep=K)."
        )
    return ids_restore, masked.len_keep


@functools.partial(jax.jit, static_argnames=("len_keep",))
def _masked_ids(ids_restore: jax.Array, *, len_keep: int) -> jax.Array:
    count = ids_restore.shape[1] - len_keep
    return jax.vmap(lambda r: removed_rows(r >= len_keep, count))(ids_restore)


def masked_ids(masked: MaskedTokens) -> jax.Array:
    """The ids of each sample's removed tokens, in original (ascending) order.

    ``masked_ids(out)[i]`` is ``np.flatnonzero(out.mask[i])`` (the positions of VideoMAE's
    ``patches[mask]``), in a static shape.

    Args:
      masked: the ``MaskedTokens`` of ``random_masking`` / ``apply_mask`` (its
        ``ids_restore`` [N, L] and static ``len_keep``).

    Returns:
      [N, L - len_keep] int32, each row ascending.

    Raises:
      TypeError: ``masked`` is not a ``MaskedTokens``.
      ValueError: ``masked`` does not record ``len_keep``, or ``ids_restore`` is not 2-D.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> x = jnp.arange(6.0).reshape(1, 6, 1)
      >>> out = jgather.apply_mask(x, jnp.array([[False, True, False, True, True, False]]), 3)
      >>> jgather.masked_ids(out).tolist()
      [[1, 3, 4]]

    VideoMAE's ``patches[mask]`` lists the masked tokens of each sample in token order; these
    are their ids: ``masked_ids(out)[i]`` is ``np.flatnonzero(out.mask[i])``, for the
    ``MaskedTokens`` of ``random_masking`` or ``apply_mask`` (which remove the same number
    of tokens from every sample, so the shape is static). It is what one would write by hand
    as ``jnp.sort(jnp.argsort(ids_restore)[:, len_keep:])``, without the two sorts. Use it for
    the decoder's positions, e.g. ``jnp.take(pos_embed, masked_ids(out), axis=0)`` for a
    shared ``[L, D]`` table (VideoMAE's ``pos[mask]``); ``take_masked`` gathers the rows of a
    per-sample array. Written for one sample and ``jax.vmap``-ed over the batch, so a
    batch-sharded input stays sharded without collectives.
    """
    fn = "masked_ids"
    ids_restore, len_keep = _check_masked(fn, masked)
    return _masked_ids(ids_restore, len_keep=len_keep)


@functools.partial(jax.jit, static_argnames=("len_keep", "method"))
def _take_masked(
    x: jax.Array, ids_restore: jax.Array, *, len_keep: int, method: str | None
) -> jax.Array:
    sharding = batch_sharding(x, ids_restore)
    x, ids_restore = (to_batch_sharding(a, sharding) for a in (x, ids_restore))
    count = ids_restore.shape[1] - len_keep

    def one(x: jax.Array, r: jax.Array) -> jax.Array:
        removed = r >= len_keep
        return take_rows(x, removed_rows(removed, count), method, _removed_slots(removed))

    return jax.vmap(one)(x, ids_restore)


def take_masked(
    x: jax.Array, masked: MaskedTokens, *, method: Literal["gather", "onehot"] | None = None
) -> jax.Array:
    """The rows of ``x`` at each sample's removed tokens, in original order: ``x[mask]``.

    VideoMAE's ``patches[mask].reshape(N, -1, D)`` in a static shape, for the :class:`MaskedTokens`
    of ``random_masking`` or ``apply_mask``.

    Args:
      x: [N, L, D], e.g. ``patchify(videos, p, tubelet_size=2)``.
      masked: the ``MaskedTokens`` of ``random_masking`` / ``apply_mask``.
      method: ``'gather'``, ``'onehot'`` or ``None`` (see ``random_masking``).

    Returns:
      [N, L - len_keep, D] in ``x``'s dtype.

    Raises:
      TypeError: ``masked`` is not a ``MaskedTokens``.
      ValueError: ``x`` is not [N, L, D] for ``masked``'s ``[N, L]``, ``masked`` does not
        record ``len_keep``, or an unknown ``method``.

    Example:
      >>> import jax.numpy as jnp, jgather
      >>> x = jnp.arange(12.0).reshape(1, 6, 2)
      >>> out = jgather.apply_mask(x, jnp.array([[False, True, False, True, True, False]]), 3)
      >>> jgather.take_masked(x, out)[0].tolist()  # tokens 1, 3 and 4
      [[2.0, 3.0], [6.0, 7.0], [8.0, 9.0]]

    VideoMAE's targets for a decoder that predicts the masked tokens only: ``labels =
    patches[mask].reshape(N, -1, D)``, the masked tokens of each sample in ascending token
    order, here in a static shape from the ``MaskedTokens`` of ``random_masking`` or
    ``apply_mask``: ``take_masked(patches, out)``. ``x`` holds the ``L`` maskable tokens
    (no prefix tokens: take ``x[:, P:]`` first). The rows are ``masked_ids(out)``, gathered
    per sample (written for one sample and ``jax.vmap``-ed; a batch-sharded input stays
    sharded). ``mae_loss`` takes such targets' predictions directly (a ``pred`` of ``L -
    len_keep`` tokens).

    References:
      Tong et al., "VideoMAE: Masked Autoencoders are Data-Efficient Learners for
      Self-Supervised Video Pre-Training",
      https://arxiv.org/abs/2203.12602
    """
    fn = "take_masked"
    ids_restore, len_keep = _check_masked(fn, masked)
    x = check_tokens(fn, x)
    if x.shape[:2] != ids_restore.shape:
        raise ValueError(
            f"{fn}: x must be [N, L, D] with [N, L] = {tuple(ids_restore.shape)} (masked's "
            f"tokens), got {tuple(x.shape)}; drop prefix tokens first (x[:, num_prefix:])."
        )
    method = check_method(fn, method)
    return _take_masked(x, ids_restore, len_keep=len_keep, method=method)
