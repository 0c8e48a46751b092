"""What a merged token stands for: ToMe's size-weighted merge, source map and size term."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jgather import _checks, _dtypes
from jgather._scatter import Reduction
from jgather.tokens._merge import Merge, check_tokens, merge


def _apply(
    fn: str, m: Merge | Callable[..., jax.Array]
) -> Callable[[jax.Array, Reduction], jax.Array]:
    if isinstance(m, Merge):
        return lambda x, mode: merge(m, x, mode)
    if callable(m):  # a ToMe-style merge function, e.g. ``m.merge`` or one's own
        return lambda x, mode: m(x, mode=mode)
    raise TypeError(f"{fn}: expected a Merge or a merge function, got {type(m).__name__}.")


def merge_wavg(
    m: Merge | Callable[..., jax.Array], x: jax.Array, size: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """Merges ``x`` by its size-weighted average and returns the new sizes (ToMe's ``merge_wavg``).

    ``x = merge(x * size, 'sum') / merge(size, 'sum')``, ``size = merge(size, 'sum')``: a
    merged token is the average of the original tokens it stands for. ``size`` starts as
    ones (each token one patch).

    Args:
      m: a :class:`Merge`, or a ToMe-style function ``merge(x, mode=...)`` (``m.merge``).
      x: [N, T, C] tokens.
      size: optional [N, T, 1] token sizes (``None``: ones of ``x``'s dtype).

    Returns:
      ``(x, size)``: [N, T_out, C] and [N, T_out, 1].

    Raises:
      TypeError: ``m`` is neither a :class:`Merge` nor callable.
      ValueError: shapes do not fit ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> x = jnp.array([[[1.0], [2.0], [1.1], [5.0]]])
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> y, size = tokens.merge_wavg(m, x, jnp.array([[[3.0], [1.0], [1.0], [1.0]]]))
      >>> y[0, :, 0].tolist(), size[0, :, 0].tolist()
      ([1.100000023841858, 1.25, 5.0], [1.0, 4.0, 1.0])
    """
    apply = _apply("merge_wavg", m)
    if size is None:
        size = jnp.ones_like(x[..., :1])
    x = apply(x * size, "sum")
    size = apply(size, "sum")
    # ``x / size`` as torch divides (XLA would multiply by the broadcast reciprocal).
    return _dtypes.mean(x, size, x.dtype), size


def merge_source(
    m: Merge | Callable[..., jax.Array], x: jax.Array, source: jax.Array | None = None
) -> jax.Array:
    """Tracks which original tokens each merged token holds (ToMe's ``merge_source``).

    ``source`` is [N, T, T0], 1 where the current token ``t`` holds original token ``t0``;
    merging takes the maximum (``'amax'``). ``None`` starts from the identity over ``x``'s
    ``T`` tokens (float32, as ToMe's ``torch.eye``).

    Args:
      m: a :class:`Merge` or a ToMe-style merge function.
      x: [N, T, C] tokens (only their shape is read when ``source`` is ``None``).
      source: optional [N, T, T0] map from a previous layer.

    Returns:
      [N, T_out, T0] map.

    Raises:
      TypeError: ``m`` is neither a :class:`Merge` nor callable.
      ValueError: shapes do not fit ``m``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> m = tokens.bipartite_soft_matching(jnp.ones((1, 4, 1)), 1)
      >>> tokens.merge_source(m, jnp.zeros((1, 4, 1)))[0].astype(int).tolist()
      [[0, 0, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]]
    """
    apply = _apply("merge_source", m)
    if source is None:
        x = check_tokens("merge_source", "x", x)
        n, t, _ = x.shape
        source = jnp.broadcast_to(jnp.eye(t, dtype=jnp.float32), (n, t, t))
    return apply(source, "amax")


def proportional_attention_bias(size: jax.Array) -> jax.Array:
    """ToMe's proportional attention term: ``log(size)`` shaped to add to attention logits.

    ToMe's attention adds ``size.log()[:, None, None, :, 0]`` to the logits ``q @ k^T *
    scale`` of shape [N, H, T, T], so a merged token counts as many keys as it holds.

    Args:
      size: [N, T, 1] token sizes (from :func:`merge_wavg`).

    Returns:
      [N, 1, 1, T], ``log(size)``.

    Raises:
      ValueError: ``size`` is not [N, T, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import tokens
      >>> tokens.proportional_attention_bias(jnp.array([[[1.0], [4.0]]])).shape
      (1, 1, 1, 2)
    """
    fn = "proportional_attention_bias"
    size = _checks.as_array(fn, "size", size, hint="pass the [N, T, 1] sizes from merge_wavg")
    if size.ndim != 3 or size.shape[-1] != 1:
        raise ValueError(f"{fn}: size must have shape [N, T, 1], got {tuple(size.shape)}.")
    return jnp.log(size)[:, None, None, :, 0]
