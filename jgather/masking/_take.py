"""Moving token rows for the MAE family: the gather or one-hot product, and the prefix rows.

``take_rows`` is the one place the family's ``method`` takes effect: ``random_masking``,
``apply_mask``, ``random_masking_per_sample``, ``take_masked``, ``mae_loss`` and ``unshuffle``
move their tokens through it. ``after_prefix`` places the never-masked prefix tokens first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jgather import _platform
from jgather._gather import index_select
from jgather.masking._permutation import slots_inverse


def take_rows(
    x: jax.Array,
    rows: jax.Array,
    method: str | None,
    inverse: jax.Array | None = None,
    *,
    partial: bool = False,
) -> jax.Array:
    """``x[rows]`` for one sample: [L, D] and [K] -> [K, D], by ``method``.

    ``'gather'``: one ``lax.gather`` of whole rows, exact for every value. ``'onehot'``: a
    one-hot matrix product, exact for finite values other than ``-0.0`` (see
    ``random_masking``'s ``method`` for ``-0.0``, inf and NaN). ``None``: chosen for the
    platform the program is lowered for (``_platform.tpu_or_other``; also under
    ``jax.export`` or AOT compilation for another platform, never the host's backend):
    ``'gather'`` on CPU and GPU, where one gather of whole rows moves each kept byte once
    while the one-hot product costs ``K * L * D`` multiply-adds per sample (for the measured
    comparison see ``benchmarks/masking.py`` and ``benchmarks/results/masking.json``);
    ``'onehot'`` on TPU, where the product runs on the matrix unit and FLIP (Li et al., 2023)
    reports gathers to be slow when the batch is sharded; not measured here (no TPU).

    ``inverse`` [L]: the slot of each row of ``x`` in ``rows`` (a value outside ``[0, K)``
    for rows not taken); with it the gather's gradient is a gather (no scatter). The one-hot
    product's gradient is a matrix product.

    ``partial``: ``rows`` may hold values at or above ``L`` (``unshuffle``'s removed tokens;
    each value below ``L`` at most once). Those read a zero row in the one-hot product and the
    last row in the gather, and the caller replaces them. The gather's ``inverse`` is then
    computed from ``rows``, in the gather's branch only.
    """

    def onehot() -> jax.Array:
        hot = jax.nn.one_hot(rows, x.shape[0], dtype=x.dtype)
        return jnp.einsum(
            "kl,ld->kd", hot, x, precision=lax.Precision.HIGHEST, preferred_element_type=x.dtype
        )

    def gather() -> jax.Array:
        # The rows come from a permutation (or part of one): in range and unique.
        taken, back = rows, inverse
        if partial:
            back = slots_inverse(rows, x.shape[0])
            taken = jnp.minimum(rows, x.shape[0] - 1)
        return index_select(x, 0, taken, mode="promise_in_bounds", inverse=back)

    if method is None:
        return _platform.tpu_or_other(onehot, gather)
    return onehot() if method == "onehot" else gather()


def after_prefix(positions: jax.Array, num_prefix: int) -> jax.Array:
    """[P + K]: the prefix positions ``0 .. P - 1``, then ``positions + P`` ([K] positions
    counted after the prefix).

    A pad and an add, which explicit sharding allows under ``jax.vmap`` (a concatenation with
    an unbatched array it does not).
    """
    positions = positions + num_prefix
    if not num_prefix:
        return positions
    first = jnp.pad(lax.iota(jnp.int32, num_prefix), (0, positions.shape[0]))
    return jnp.pad(positions, (num_prefix, 0)) + first
