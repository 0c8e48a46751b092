"""PRNG key handling shared by every random function (masking and its family).

Random functions take one key (split into one key per sample inside) or a batch of N keys
(sample ``i`` then depends on ``keys[i]`` alone, so its mask does not change when the batch
grows, shrinks or is sharded). Both new-style typed keys (``jax.random.key``) and legacy
``uint32`` keys (``jax.random.PRNGKey``) are accepted.

``check_key`` runs before tracing, on static dtypes and shapes; ``per_sample_keys`` runs inside
the jitted cores and decides from the (static) key shape whether to split.

With a batch ``sharding`` (from ``_placement.batch_sharding``) the keys are placed like the
batch.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.typing import ArrayLike

from jgather import _checks
from jgather.masking._placement import to_batch_sharding


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


def uniform_int(u: jax.Array, n: jax.Array | int) -> jax.Array:
    """``floor(u * n)`` for ``u`` in [0, 1): uniform on ``{0, ..., n - 1}`` (n >= 1).

    The integer draws of the block samplers (BEiT's, I-JEPA's, V-JEPA's) from one flat draw
    of uniforms (``torch.randint(0, n)``'s law).
    """
    n = jnp.maximum(n, 1)
    return jnp.minimum(jnp.floor(u * n.astype(jnp.float32)).astype(jnp.int32), n - 1)


def per_sample_keys(key: jax.Array, n: int, sharding: NamedSharding | None = None) -> jax.Array:
    """[N] typed keys: ``key`` itself when it is a batch, else ``jax.random.split(key, N)``.

    With ``sharding`` (from ``batch_sharding``) the keys are placed like the batch.
    """
    if not _is_typed(key):
        key = jax.random.wrap_key_data(key)
    keys = key if key.shape == (n,) else jax.random.split(key, n)
    return to_batch_sharding(keys, sharding)


def example_keys(base_key: ArrayLike, example_ids: ArrayLike) -> jax.Array:
    """One PRNG key per example, derived from the example's id: masks that follow the example.

    ``keys[i] = jax.random.fold_in(base_key, example_ids[i])``: passed as the ``key`` of a masking
    function, example ``i``'s mask does not depend on the batch size, its position or the sharding.

    Args:
      base_key: one PRNG key, ``jax.random.key(seed)`` or legacy ``jax.random.PRNGKey(seed)``.
      example_ids: [N] integer ids (e.g. dataset indices), folded in as 32-bit values (ids
        that differ by a multiple of ``2**32`` get the same key).

    Returns:
      [N] keys of ``base_key``'s kind: typed keys of shape (N,), or legacy uint32 (N, 2).

    Raises:
      TypeError: ``base_key`` is not a key, or ``example_ids`` is not an integer array.
      ValueError: ``base_key`` is a batch of keys, or ``example_ids`` is not 1-D.

    Example:
      >>> import jax, jax.numpy as jnp, jgather
      >>> base = jax.random.key(0)
      >>> a = jgather.example_keys(base, jnp.array([3, 7, 9]))
      >>> b = jgather.example_keys(base, jnp.array([9, 3]))
      >>> bool((jax.random.key_data(a[0]) == jax.random.key_data(b[1])).all())  # example 3
      True
      >>> x = jnp.ones((3, 16, 2))
      >>> m_a = jgather.random_masking(a, x, 0.75).mask
      >>> m_b = jgather.random_masking(b, x[:2], 0.75).mask
      >>> bool((m_a[2] == m_b[0]).all())  # example 9's mask in either batch
      True

    ``keys[i] = jax.random.fold_in(base_key, example_ids[i])``, ``jax.vmap``-ed over the ids.
    Pass the result as the ``key`` of ``random_masking``, ``random_masking_per_sample`` or any
    strategy of the family: each of them masks sample ``i`` from ``keys[i]`` alone, so an
    example gets the same mask whatever the batch size, its position in the batch, or the
    number of devices the batch is sharded over (tested on 1, 2, 4 and 8 devices). One key
    split inside the function (``jax.random.split(key, N)``) instead ties the mask to the
    slot: it changes when the batch is reordered or resized. Random values that change with
    the batch layout or the sharding are a known source of confusion (jax-ml/jax #20381,
    #40232); keys derived from what identifies the data avoid it. Use a fresh ``base_key``
    per epoch (``jax.random.fold_in(key, epoch)``) for new masks each epoch.
    """
    fn = "example_keys"
    shape = np.shape(base_key)
    if isinstance(base_key, jax.Array) and _is_typed(base_key):
        batch_dims = shape
    else:
        batch_dims = shape[:-1]
    if batch_dims != ():
        raise ValueError(
            f"{fn}: base_key must be one key, got a batch of keys of shape "
            f"{tuple(shape)}; pass jax.random.key(seed)."
        )
    base_key = check_key(fn, base_key, 1)
    example_ids = _checks.as_array(
        fn, "example_ids", example_ids, hint="pass [N] integer ids (e.g. dataset indices)"
    )
    if not jnp.issubdtype(example_ids.dtype, jnp.integer):
        raise TypeError(
            f"{fn}: example_ids must be an integer array (dataset indices), got dtype "
            f"{example_ids.dtype}."
        )
    if example_ids.ndim != 1:
        raise ValueError(
            f"{fn}: example_ids must have shape [N] (one id per example), got shape "
            f"{tuple(example_ids.shape)}; flatten it or vmap over the extra axes."
        )
    return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base_key, example_ids)
