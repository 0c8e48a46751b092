"""Argument checks of the MAE family (``random_masking`` and the functions that share its
arguments), built on ``jgather._checks``: the tokens ``x``, the key-first order, ``noise``,
``method`` and ``mask_dtype``, each checked by one function everywhere.
"""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jgather import _checks

Method = Literal["gather", "onehot"] | None

METHODS = (None, "gather", "onehot")


def check_method(fn: str, method: Any) -> Literal["gather", "onehot"] | None:
    """``method`` as given: ``'gather'``, ``'onehot'``, or ``None`` (chosen per platform when
    the program is lowered, see ``_take.take_rows``)."""
    _checks.one_of(fn, "method", method, METHODS, hint="(None: the platform's default.)")
    return method


def check_mask_dtype(fn: str, mask_dtype: Any) -> np.dtype:
    return _checks.dtype(fn, "mask_dtype", mask_dtype, hint="default float32, as MAE's mask")


def check_key_first(fn: str, key: Any, call: str) -> None:
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


def check_noise(fn: str, noise: Any, n: int, length: int) -> jax.Array:
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


def check_tokens(fn: str, x: Any, name: str = "x") -> jax.Array:
    x = _checks.as_array(fn, name, x, hint="pass tokens [N, L, D]")
    if x.ndim != 3:
        raise ValueError(
            f"{fn}: {name} must have shape [N, L, D] (3 dims), got shape {tuple(x.shape)}; "
            "flatten the feature dims or add a batch dim with x[None]."
        )
    return x
