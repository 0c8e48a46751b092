"""Score-guided masking: the visible tokens chosen by a score (AttMask, AdaMAE), as MAE's triple."""

from __future__ import annotations

from typing import Any, Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike, DTypeLike

from jgather import _checks
from jgather.masking import MaskedTokens, random_masking
from jgather.masking._arguments import check_mask_dtype, check_method
from jgather.masking._keys import check_key, per_sample_keys
from jgather.masking._placement import batch_sharding, to_batch_sharding
from jgather.tokens._scores import check_scores


@jax.jit
def _gumbel_noise(key: jax.Array, scores: jax.Array) -> jax.Array:
    """``-(scores + Gumbel(0, 1))`` per sample, at least float32: the shuffle's noise."""
    sharding = batch_sharding(scores, key)
    scores = to_batch_sharding(scores, sharding)
    keys = per_sample_keys(key, scores.shape[0], sharding)
    dtype = jnp.promote_types(scores.dtype, jnp.float32)
    gumbel = jax.vmap(lambda k: jax.random.gumbel(k, scores.shape[1:], dtype))(keys)
    return -(scores.astype(dtype) + gumbel)


def score_masking(
    key: ArrayLike | None,
    x: jax.Array,
    scores: jax.Array,
    mask_ratio: float = 0.75,
    *,
    gumbel: bool = False,
    num_prefix: int = 0,
    method: Literal["gather", "onehot"] | None = None,
    mask_dtype: DTypeLike = jnp.float32,
) -> MaskedTokens:
    """Masks the tokens with the lowest scores: ``random_masking`` with the shuffle set by a score.

    The ``len_keep = int(L * (1 - mask_ratio))`` tokens with the largest ``scores`` are kept
    (visible), in descending order of score (equal scores: lower position first), the others
    are masked; the result is the :class:`~jgather.masking.MaskedTokens` of
    ``random_masking`` (it is ``random_masking(None, x, mask_ratio, noise=-scores)``), so
    ``unshuffle`` and ``mae_loss`` take it unchanged. For AttMask's "mask the most attended
    tokens" pass ``-attention`` as ``scores``.

    Args:
      key: a PRNG key or a batch of ``N`` keys; used only with ``gumbel`` (may be ``None``
        otherwise).
      x: [N, P + L, D] tokens.
      scores: [N, L] floating, one score per token after the prefix; larger is kept first.
      mask_ratio: static fraction of tokens masked, in ``[0, 1]`` (MAE's rounding).
      gumbel: static; perturb the scores with Gumbel noise from ``key``.
      num_prefix: static number of leading tokens never masked (see ``random_masking``).
      method: ``'gather'``, ``'onehot'`` or ``None``, as in ``random_masking``.
      mask_dtype: dtype of the returned ``mask`` (float32, as MAE's).

    Returns:
      ``MaskedTokens``: ``x_masked`` [N, P + len_keep, D], ``mask`` [N, L] (1 = masked),
      ``ids_restore`` [N, L] int32.

    Raises:
      TypeError: ``scores`` is not floating; ``key`` is not a key (with ``gumbel``); a static
        argument is traced or of the wrong type.
      ValueError: shapes disagree; ``mask_ratio`` is outside ``[0, 1]``; ``gumbel`` without
        a key.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.arange(4.0)[None, :, None]
      >>> out = tokens.score_masking(None, x, jnp.array([[0.1, 0.9, 0.5, 0.2]]), 0.5)
      >>> out.x_masked[0, :, 0].tolist(), out.mask[0].tolist()
      ([1.0, 2.0], [1.0, 0.0, 0.0, 1.0])

    With ``gumbel=True`` the scores are perturbed with Gumbel(0, 1) noise from ``key``
    before the top-k: the kept tokens are then a sample without replacement from
    ``softmax(scores)`` (the Gumbel-top-k trick, Kool et al., 2019), as AdaMAE draws its
    visible tokens from the categorical distribution of its sampling network (pass the log
    probabilities). The noise is drawn per sample (one key split, or a batch of ``N``
    keys), in float32 (float64 for float64 scores).

    A NaN score counts as the lowest (masked first); ``-0.0`` and ``0.0`` are equal.
    """
    fn = "score_masking"
    x, scores, num_prefix = check_scores(fn, x, scores, num_prefix, "D")
    n = scores.shape[0]
    _checks.static_ratio(fn, "mask_ratio", mask_ratio, what="the shape of x_masked")
    gumbel = _checks.static_bool(fn, "gumbel", gumbel)
    method = check_method(fn, method)
    mask_dtype = check_mask_dtype(fn, mask_dtype)
    noise: Any
    if gumbel:
        if key is None:
            raise ValueError(f"{fn}: gumbel=True draws noise: pass a PRNG key.")
        noise = _gumbel_noise(check_key(fn, key, n), scores)
    else:
        noise = -scores
    return random_masking(
        None,
        x,
        mask_ratio,
        noise=noise,
        num_prefix=num_prefix,
        method=method,
        mask_dtype=mask_dtype,
    )
