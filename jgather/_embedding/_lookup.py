"""``embedding``: torch's ``F.embedding``, one gather of rows."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from jgather import _checks, _indexing, _sharding
from jgather._embedding import _table

__all__ = ["embedding"]


@functools.partial(jax.jit, static_argnames=("padding_idx", "renorm", "scale_grad_by_freq"))
def _embedding_core(
    input: jax.Array,
    weight: jax.Array,
    *,
    padding_idx: int | None,
    renorm: tuple[float, float] | None,
    scale_grad_by_freq: bool,
) -> jax.Array:
    flat = _indexing.widen_index(input.reshape(-1))
    rows = _table.torch_rows(weight, flat, padding_idx, renorm, scale_grad_by_freq)
    return rows.reshape(*input.shape, weight.shape[1])


def embedding(
    input: ArrayLike,
    weight: ArrayLike,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> jax.Array:
    """Looks up rows of ``weight``: ``out[..., :] = weight[input[...], :]``.

    Mirrors ``torch.nn.functional.embedding`` (same positional order): one gather of whole
    rows; the gradient w.r.t. ``weight`` is the scatter-add of the output's cotangent rows
    (in float32 for bfloat16 and float16, rounded once).

    Args:
      input: integer array of any shape (int32 or int64 as in torch; narrower integers are
        accepted), values in ``[0, num_embeddings)``.
      weight: array ``[num_embeddings, embedding_dim]``, any dtype.
      padding_idx: a row that gets no gradient (its value is read as usual); negative values
        count from the end. Static.
      max_norm: if given, each row read whose ``norm_type``-norm exceeds ``max_norm`` is
        scaled to norm ``max_norm`` (by ``max_norm / (norm + 1e-7)``, as torch) in the
        output. torch also writes the scaled rows back into ``weight``; ``weight`` here is
        not modified (arrays are immutable). The gradient is torch's: that of the plain
        lookup, not through the scale. Static.
      norm_type: the ``p`` of the norm for ``max_norm`` (``inf`` is the largest absolute
        value). Static.
      scale_grad_by_freq: scale each row's gradient by the inverse of how often its index
        occurs in ``input``, as torch. Static.
      sparse: accepted for torch compatibility and ignored: JAX has no sparse gradients, so
        the gradient is always a dense ``weight``-shaped array.

    Returns:
      Array ``input.shape + [embedding_dim]`` of ``weight``'s dtype.

    Raises:
      TypeError: ``input`` is not of integer dtype, or a static argument has a wrong type.
      ValueError: ``weight`` is not 2-D, or ``max_norm`` is not finite.
      IndexError: ``padding_idx`` is out of range, or a concrete ``input`` value is outside
        ``[0, num_embeddings)``.

    Example:
      >>> import jax.numpy as jnp
      >>> from jgather import embedding
      >>> weight = jnp.arange(6.0).reshape(3, 2)
      >>> embedding(jnp.array([[2, 0]]), weight)
      Array([[[4., 5.],
              [0., 1.]]], dtype=float32)

    Under ``jax.jit`` index values are not checked: ``checkify.index_checks`` reports an
    out-of-range value, whose row then reads NaN for floating weights (lax's fill value for
    other dtypes). ``max_norm``'s norm is XLA's reduction of the row (torch's CPU kernel adds
    in order), so a renormalised row may differ from torch's in the last bit.
    """
    fn = "embedding"
    index, wide = _table.index_of(fn, input)
    weight = _table.weight_of(fn, weight, floating=False)
    padding = _table.padding_index(fn, padding_idx, weight.shape[0])
    renorm = _table.renorm_of(fn, max_norm, norm_type)
    if renorm is not None and not jnp.issubdtype(weight.dtype, jnp.inexact):
        raise TypeError(
            f"{fn}: max_norm needs a floating or complex weight (a norm), got {weight.dtype}; "
            "cast weight to a float dtype, or leave max_norm None."
        )
    by_freq = _checks.static_bool(fn, "scale_grad_by_freq", scale_grad_by_freq)
    _checks.static_bool(fn, "sparse", sparse)
    _table.check_values(fn, wide, weight.shape[0])
    core = functools.partial(
        _embedding_core, padding_idx=padding, renorm=renorm, scale_grad_by_freq=by_freq
    )
    if index.ndim == 0:
        return core(index, weight)
    return _sharding.per_shard_of_index(lambda i, w, _: core(i, w), index, weight, None, index.ndim)


# --------------------------------------------------------------------------------------------
# embedding_bag
