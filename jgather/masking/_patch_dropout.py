"""Patch dropout (timm's PatchDropout, FLIP's token dropping): keep a random subset of tokens."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks
from jgather._gather import index_select
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._permutation import inverse_permutation
from jgather.masking._placement import batch_sharding, to_batch_sharding

# --------------------------------------------------------------------------------------------
# Patch dropout (timm PatchDropout / FLIP token dropping).
# --------------------------------------------------------------------------------------------


class PatchDropoutOutput(NamedTuple):
    """Result of :func:`patch_dropout`.

    Attributes:
      tokens: [N, P + K, ...] the ``P`` prefix tokens followed by the ``K`` kept body tokens.
      indices: [N, P + K] int32 positions in ``x``'s token axis of each output token, so that
        ``tokens[n, i] == x[n, indices[n, i]]``; ``indices[:, :P]`` is ``0..P-1``, and
        ``indices[:, P:] - P`` are timm's body-relative ``keep_indices``.
    """

    tokens: jax.Array
    indices: jax.Array


@functools.partial(jax.jit, static_argnames=("num_prefix", "num_keep", "ordered"))
def _patch_dropout(
    key: jax.Array, x: jax.Array, num_prefix: int, num_keep: int, ordered: bool
) -> PatchDropoutOutput:
    n, length = x.shape[:2]
    body = length - num_prefix
    prefix_pad = jnp.pad(jnp.arange(num_prefix, dtype=jnp.int32), (0, num_keep))
    prefix_slots = jnp.pad(jnp.arange(num_prefix, dtype=jnp.int32), (0, body))

    def one(k: jax.Array, xi: jax.Array) -> tuple[jax.Array, jax.Array]:
        perm = jax.random.permutation(k, body).astype(jnp.int32)
        keep = perm[:num_keep]
        # Each body token's slot among the kept ones (num_keep or more: dropped), the
        # inverse that makes the gradient a gather.
        slot = inverse_permutation(perm)
        if ordered:
            keep = jnp.sort(keep)
            kept = (slot < num_keep).astype(jnp.int32)
            slot = jnp.where(slot < num_keep, jnp.cumsum(kept) - 1, num_keep)
        # The prefix positions 0..P-1, then the kept ones (a pad and an add rather than a
        # concatenation with an unbatched array, which explicit sharding rejects under vmap).
        idx = jnp.pad(keep + num_prefix, (num_prefix, 0)) + prefix_pad
        inverse = jnp.pad(slot + num_prefix, (num_prefix, 0)) + prefix_slots
        # Indices are in range and unique by construction: no bounds handling, and a
        # gradient that gathers by the inverse.
        out = index_select(xi, 0, idx, mode="promise_in_bounds", inverse=inverse)
        return out, idx

    sharding = batch_sharding(x, key)
    x = to_batch_sharding(x, sharding)
    out, idx = jax.vmap(one)(per_sample_keys(key, n, sharding), x)
    return PatchDropoutOutput(out, idx)


def patch_dropout(
    key: ArrayLike,
    x: ArrayLike,
    prob: float = 0.5,
    *,
    num_prefix: int = 1,
    ordered: bool = False,
) -> PatchDropoutOutput:
    """Patch dropout: keep the prefix tokens and a random subset of the others (timm, FLIP).

    Mirrors timm's ``PatchDropout``: the first ``num_prefix`` tokens stay, and ``max(1, int(L_body *
    (1 - prob)))`` of the others are kept, chosen uniformly per sample.

    Args:
      key: one PRNG key (split into ``N`` keys) or a batch of ``N`` keys.
      x: tokens [N, L, ...], typically [N, L, D].
      prob: drop probability in ``[0, 1)`` (static), timm's ``prob``.
      num_prefix: leading tokens always kept (static; 1 for a cls token, 0 for none).
      ordered: keep the kept body tokens in their original order (static).

    Returns:
      A :class:`PatchDropoutOutput` ``(tokens, indices)``: ``tokens`` [N, P + num_keep, ...]
      and ``indices`` [N, P + num_keep] int32 into ``x``'s token axis, with
      ``tokens[n, i] == x[n, indices[n, i]]``.

    Raises:
      TypeError: for a traced or non-numeric ``prob``/``num_prefix``, a non-bool
        ``ordered``, a non-array ``x`` or a bad key.
      ValueError: for ``prob`` outside ``[0, 1)``, ``x`` with fewer than 2 dims, no body token
        after the prefix, or a key batch whose length is not ``N``.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jgather import patch_dropout
      >>> x = jnp.arange(2 * 197 * 4, dtype=jnp.float32).reshape(2, 197, 4)
      >>> out = patch_dropout(jax.random.key(0), x, 0.5, num_prefix=1, ordered=True)
      >>> out.tokens.shape, out.indices.shape  # cls + int(196 * 0.5) = 98 patches
      ((2, 99, 4), (2, 99))
      >>> out.indices[:, 0].tolist()  # the cls token is always kept, first
      [0, 0]
      >>> bool((jnp.diff(out.indices, axis=1) > 0).all())
      True

    Mirrors timm's ``PatchDropout`` (with ``return_indices``), the token dropping of
    "PatchDropout" (arXiv 2208.07220) and FLIP (arXiv 2212.00794). The first
    ``num_prefix`` tokens (cls / register tokens) are always kept, in place, first. Of
    the ``L_body = L - num_prefix`` others, exactly ``num_keep = max(1, int(L_body *
    (1.0 - prob)))`` are kept (timm's formula: the float ``1 - prob`` times ``L_body``, truncated,
    at least one), chosen uniformly at random per sample. With ``ordered=False`` they come in
    random order (as timm's ``argsort(randn)[:num_keep]``); with ``ordered=True`` in increasing
    original position. As in timm, ``prob == 0`` returns ``x`` unchanged (all tokens, in order).

    The gather is :func:`jgather.index_select` on each sample, ``jax.vmap``-ed over the batch;
    gradients flow to the kept tokens of ``x``.

    References:
      Li et al., "Scaling Language-Image Pre-training via Masking" (FLIP),
      https://arxiv.org/abs/2212.00794
    """
    fn = "patch_dropout"
    p = _checks.static_ratio(fn, "`prob`", prob, closed=False)
    ordered = _checks.static_bool(fn, "`ordered`", ordered)
    x = _checks.as_array(fn, "`x`", x, hint="pass tokens [N, L, D]")
    if x.ndim < 2:
        raise ValueError(
            f"{fn}: `x` must have a batch and a token axis, [N, L, ...]; got shape {x.shape}."
        )
    n, length = x.shape[:2]
    num_prefix = _checks.num_prefix(fn, num_prefix, length)
    body = length - num_prefix
    key = check_key(fn, key, n)
    if p == 0.0:  # timm returns its input untouched when nothing is dropped
        return PatchDropoutOutput(
            x, jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (n, length))
        )
    num_keep = max(1, int(body * (1.0 - p)))
    return _patch_dropout(key, x, num_prefix, num_keep, bool(ordered))
