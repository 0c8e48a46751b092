"""PRNG key handling shared by every random function (masking and its family).

Random functions take one key (split into one key per sample inside) or a batch of N keys
(sample ``i`` then depends on ``keys[i]`` alone, so its mask does not change when the batch
grows, shrinks or is sharded). Both new-style typed keys (``jax.random.key``) and legacy
``uint32`` keys (``jax.random.PRNGKey``) are accepted.

``check_key`` runs before tracing, on static dtypes and shapes; ``per_sample_keys`` runs inside
the jitted cores and decides from the (static) key shape whether to split.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def _is_typed(key: jax.Array) -> bool:
    return jnp.issubdtype(key.dtype, jax.dtypes.prng_key)


def check_key(fn: str, key: Any, n: int) -> jax.Array:
    """Validates ``key`` as one PRNG key or a batch of ``n`` keys; returns it as an array.

    Raises:
      TypeError: ``key`` is not a typed key array or a legacy uint32 key array.
      ValueError: a batch of keys whose length is not ``n``, or legacy key data that the
        default PRNG implementation cannot read.
    """
    if key is None or isinstance(key, str | bytes):
        raise TypeError(
            f"{fn}: key must be a PRNG key from jax.random.key(seed) or jax.random.PRNGKey(seed) "
            f"(or a batch of N of them), got {type(key).__name__}."
        )
    if not isinstance(key, jax.Array):
        try:
            key = jnp.asarray(key)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"{fn}: key must be a jax.random.key or PRNGKey, got {type(key).__name__}"
            ) from e
    if _is_typed(key):
        shape = key.shape
    else:
        if key.dtype != jnp.uint32 or key.ndim not in (1, 2):
            raise TypeError(
                f"{fn}: key must be a PRNG key: a new-style key (jax.random.key) of shape () or "
                f"(N,), or a legacy uint32 key (jax.random.PRNGKey) of shape (2,) or (N, 2); "
                f"got dtype {key.dtype} and shape {tuple(key.shape)}."
            )
        try:
            jax.eval_shape(jax.random.wrap_key_data, key)
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"{fn}: could not read the uint32 array of shape {tuple(key.shape)} as legacy "
                f"PRNG key data for the default PRNG implementation: {e}"
            ) from e
        shape = key.shape[:-1]
    if len(shape) == 1 and shape != (n,):
        raise ValueError(
            f"{fn}: got a batch of {shape[0]} keys for batch size {n}; pass one key (split "
            f"inside) or a batch of N={n} keys (one per sample)."
        )
    if shape not in ((), (n,)):
        raise ValueError(
            f"{fn}: key must be one key or a batch of N={n} keys (one per sample), got a key "
            f"array of shape {tuple(key.shape)}; pass one key (split inside) or exactly one key "
            "per sample."
        )
    return key


def per_sample_keys(key: jax.Array, n: int) -> jax.Array:
    """[N] typed keys: ``key`` itself when it is a batch, else ``jax.random.split(key, N)``."""
    if not _is_typed(key):
        key = jax.random.wrap_key_data(key)
    return key if key.shape == (n,) else jax.random.split(key, n)
