"""The masking the model runs: jgather's functions, or the straightforward JAX port of MAE's
code that they are measured against (two argsorts and ``take_along_axis``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

import jgather


def port_random_masking(
    key: jax.Array | None, x: jax.Array, mask_ratio: float, *, noise: jax.Array | None = None
) -> jgather.MaskedTokens:
    """MAE's random masking as a line-by-line JAX port: two argsorts and ``take_along_axis``.

    One [N, L] uniform draw (or the given ``noise``); the first argsort gives the shuffle, the
    second argsort inverts it. This is the baseline jgather is compared with in
    :func:`throughput`.
    """
    n, length, _ = x.shape
    len_keep = int(length * (1 - mask_ratio))
    if noise is None:
        noise = jax.random.uniform(key, (n, length))
    ids_shuffle = jnp.argsort(noise, axis=1)
    ids_restore = jnp.argsort(ids_shuffle, axis=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = jnp.take_along_axis(x, ids_keep[:, :, None], axis=1)
    mask = jnp.ones((n, length), x.dtype).at[:, :len_keep].set(0)
    mask = jnp.take_along_axis(mask, ids_restore, axis=1)
    return jgather.MaskedTokens(x_masked, mask, ids_restore.astype(jnp.int32))


def port_unshuffle(
    x_masked: jax.Array, ids_restore: jax.Array, mask_token: jax.Array, *, num_prefix: int = 0
) -> jax.Array:
    """The decoder's append-mask-tokens-and-unshuffle as a plain ``take_along_axis`` port.

    The ``num_prefix`` leading tokens of ``x_masked`` (the cls token) pass through in front.
    """
    prefix, kept = x_masked[:, :num_prefix], x_masked[:, num_prefix:]
    n, k, d = kept.shape
    length = ids_restore.shape[1]
    fill = jnp.broadcast_to(mask_token.astype(kept.dtype), (n, length - k, d))
    full = jnp.concatenate([kept, fill], axis=1)
    full = jnp.take_along_axis(full, ids_restore[:, :, None], axis=1)
    return jnp.concatenate([prefix, full], axis=1)


def _jgather_masking(key: jax.Array, x: jax.Array, mask_ratio: float) -> jgather.MaskedTokens:
    return jgather.random_masking(key, x, mask_ratio)


def _jgather_unshuffle(
    x_masked: jax.Array, ids_restore: jax.Array, mask_token: jax.Array, *, num_prefix: int = 0
) -> jax.Array:
    return jgather.unshuffle(x_masked, ids_restore, mask_token, num_prefix=num_prefix)


MASKINGS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "jgather": (_jgather_masking, _jgather_unshuffle),
    "port": (port_random_masking, port_unshuffle),
}
