"""The token-and-score arguments shared by the score-driven functions (pruning, selection)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jgather import _checks


def check_scores(
    fn: str, x: Any, scores: Any, num_prefix: int, feature: str = "D"
) -> tuple[jax.Array, jax.Array, int]:
    """``x`` as [N, P + L, feature], ``scores`` as floating [N, L]; returns them and ``P``."""
    x = _checks.as_array(fn, "x", x, hint=f"pass tokens [N, P + L, {feature}]")
    if x.ndim != 3:
        raise ValueError(
            f"{fn}: x must have shape [N, P + L, {feature}] (3 dims), got {tuple(x.shape)}."
        )
    n, total, _ = x.shape
    num_prefix = _checks.num_prefix(fn, num_prefix, total)
    length = total - num_prefix
    scores = _checks.per_token(
        fn, "scores", scores, n, length, num_prefix, hint="pass [N, L] scores"
    )
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        raise TypeError(f"{fn}: scores must be floating, got {scores.dtype}.")
    return x, scores, num_prefix
