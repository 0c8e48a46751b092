"""One call of every public function that takes arrays, for the cross-cutting tables.

``CALLS`` maps a name to a :class:`Call`: a function of arrays only (static arguments bound)
and a builder of its arguments for a batch of ``b`` examples, the batch on the leading axis of
every argument in ``batched`` (positions). ``test_public_api`` runs each call under JAX's
strict configuration flags and a transfer guard, and exports it with a symbolic batch.

``STATIC_BATCH`` lists the functions whose batch size is a static argument (it fixes their
output shapes): they take a key, not a batch of arrays, and export with a fixed batch.
``NOT_CALLS`` lists the public names that are not functions of arrays under jit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jgather
from jgather import segment, tokens


class Call(NamedTuple):
    fn: Callable[..., Any]
    args: Callable[[int], tuple[Any, ...]]  # b -> the arguments, NumPy or JAX arrays
    batched: tuple[int, ...]  # positions of the arguments whose leading axis is the batch


def _rng(b: int) -> np.random.Generator:
    return np.random.default_rng(b)


def _x(b: int, *shape: int, dtype: Any = np.float32) -> np.ndarray:
    return _rng(b).normal(size=(b, *shape)).astype(dtype)


def _idx(b: int, *shape: int, high: int) -> np.ndarray:
    return _rng(b + 1).integers(0, high, size=(b, *shape)).astype(np.int32)


def _sorted_ids(b: int, n: int, high: int) -> np.ndarray:
    return np.sort(_idx(b, n, high=high), axis=-1)


def _indptr(b: int) -> np.ndarray:  # [b, 4]: three segments over six entries
    return np.tile(np.array([0, 2, 2, 6], np.int32), (b, 1))


KEY = jax.random.key(0)


def _key(b: int) -> jax.Array:
    return KEY


def _keys(b: int) -> jax.Array:
    return jax.random.split(KEY, b)


def _fixed_mask(b: int) -> np.ndarray:  # [b, 16] bool, exactly 12 True per row
    noise = _rng(b).random((b, 16))
    ranks = np.argsort(np.argsort(noise, axis=1), axis=1)
    return ranks >= 4


def _ids_restore(b: int) -> np.ndarray:
    noise = _rng(b).random((b, 16))
    return np.argsort(np.argsort(noise, axis=1), axis=1).astype(np.int32)


def _ops() -> dict[str, Call]:
    calls = {
        "gather": Call(
            lambda x, i: jgather.gather(x, 1, i),
            lambda b: (_x(b, 6, 3), _idx(b, 4, 3, high=6)),
            (0, 1),
        ),
        "take_along_dim": Call(
            lambda x, i: jgather.take_along_dim(x, i, 1),
            lambda b: (_x(b, 6, 3), _idx(b, 4, 1, high=6)),
            (0, 1),
        ),
        "index_select": Call(
            lambda x, i: jgather.index_select(x, 1, i),
            lambda b: (_x(b, 6, 3), np.array([5, 0, 0, 2], np.int32)),
            (0,),
        ),
        # embedding's weight is 2-D, as torch's: a batch of tables goes through jax.vmap.
        "embedding": Call(
            jax.vmap(lambda i, w: jgather.embedding(i, w, padding_idx=0, scale_grad_by_freq=True)),
            lambda b: (_idx(b, 5, 2, high=6), _x(b, 6, 3)),
            (0, 1),
        ),
        "embedding_bag": Call(
            jax.vmap(lambda i, w, o: jgather.embedding_bag(i, w, o, padding_idx=1)),
            lambda b: (_idx(b, 8, high=6), _x(b, 6, 3), _indptr(b)[:, :3]),
            (0, 1, 2),
        ),
        "embedding_bag max 2-D": Call(
            jax.vmap(lambda i, w: jgather.embedding_bag(i, w, mode="max")),
            lambda b: (_idx(b, 4, 3, high=6), _x(b, 6, 3)),
            (0, 1),
        ),
        "embedding_bag sum per_sample_weights": Call(
            jax.vmap(lambda i, w, p: jgather.embedding_bag(i, w, mode="sum", per_sample_weights=p)),
            lambda b: (_idx(b, 4, 3, high=6), _x(b, 6, 3), _x(b, 4, 3)),
            (0, 1, 2),
        ),
        "scatter": Call(
            lambda x, i, s: jgather.scatter(x, 1, i, s),
            lambda b: (_x(b, 6, 3), _idx(b, 8, 3, high=6), _x(b, 8, 3)),
            (0, 1, 2),
        ),
        "scatter_add": Call(
            lambda x, i, s: jgather.scatter_add(x, 1, i, s),
            lambda b: (_x(b, 6, 3), _idx(b, 8, 3, high=6), _x(b, 8, 3)),
            (0, 1, 2),
        ),
    }
    cols = lambda b: np.array([5, 0, 5, 2], np.int32)
    calls["index_add"] = Call(
        lambda x, i, s: jgather.index_add(x, 1, i, s, alpha=2.0),
        lambda b: (_x(b, 6, 3), cols(b), _x(b, 4, 3)),
        (0, 2),
    )
    calls["index_copy"] = Call(
        lambda x, i, s: jgather.index_copy(x, 1, i, s),
        lambda b: (_x(b, 6, 3), cols(b), _x(b, 4, 3)),
        (0, 2),
    )
    calls["index_fill"] = Call(
        lambda x, i: jgather.index_fill(x, 1, i, -1.0),
        lambda b: (_x(b, 6, 3), np.array([5, -1, 0], np.int32)),
        (0,),
    )
    for reduce, include_self in (("prod", True), ("mean", False), ("amax", False)):
        calls[f"index_reduce {reduce} include_self={include_self}"] = Call(
            lambda x, i, s, r=reduce, inc=include_self: jgather.index_reduce(
                x, 1, i, s, r, include_self=inc
            ),
            lambda b: (_x(b, 6, 3), cols(b), _x(b, 4, 3)),
            (0, 2),
        )
    # The flat positions of index_put, put and take address the whole input, so the batch
    # is on the indices and values (a symbolic batch in the input would make the scattered
    # axis symbolic).
    for accumulate in (False, True):
        calls[f"index_put accumulate={accumulate}"] = Call(
            lambda x, r, c, v, a=accumulate: jgather.index_put(x, (r, c), v, a),
            lambda b: (_x(1, 6, 3)[0], _idx(b, 4, high=6), _idx(b, 1, high=3), _x(b, 4)),
            (1, 2, 3),
        )
        calls[f"put accumulate={accumulate}"] = Call(
            lambda x, i, s, a=accumulate: jgather.put(x, i, s, a),
            lambda b: (_x(1, 6, 3)[0], _idx(b, 5, high=18), _x(b, 5)),
            (1, 2),
        )
    calls["take"] = Call(
        lambda x, i: jgather.take(x, i),
        lambda b: (_x(1, 6, 3)[0], _idx(b, 4, high=18)),
        (1,),
    )
    half = lambda b, *shape: _rng(b + 2).random((b, *shape)) < 0.5
    calls["masked_fill"] = Call(
        lambda x, m: jgather.masked_fill(x, m, -1.0), lambda b: (_x(b, 6, 3), half(b, 6, 3)), (0, 1)
    )
    calls["masked_scatter"] = Call(
        jgather.masked_scatter, lambda b: (_x(b, 6, 3), half(b, 1, 3), _x(b, 18)), (0, 1, 2)
    )
    calls["masked_select"] = Call(
        lambda x, m: jgather.masked_select(x, m, size=9, fill_value=2.0),
        lambda b: (_x(b, 6, 3), half(b, 6, 3)),
        (0, 1),
    )
    calls["select_scatter"] = Call(
        lambda x, s: jgather.select_scatter(x, s, 1, -2), lambda b: (_x(b, 6, 3), _x(b, 3)), (0, 1)
    )
    calls["slice_scatter"] = Call(
        lambda x, s: jgather.slice_scatter(x, s, 1, 1, None, 2),
        lambda b: (_x(b, 6, 3), _x(b, 3, 3)),
        (0, 1),
    )
    calls["diagonal_scatter"] = Call(
        lambda x, s: jgather.diagonal_scatter(x, s, 1, 1, 2),
        lambda b: (_x(b, 4, 5), _x(b, 4)),
        (0, 1),
    )
    for reduce in ("sum", "prod", "mean", "amax", "amin"):
        for include_self in (True, False):
            calls[f"scatter_reduce {reduce} include_self={include_self}"] = Call(
                lambda x, i, s, r=reduce, inc=include_self: jgather.scatter_reduce(
                    x, 1, i, s, r, include_self=inc
                ),
                lambda b: (_x(b, 6, 3), _idx(b, 8, 3, high=6), _x(b, 8, 3)),
                (0, 1, 2),
            )
    return calls


def _segment() -> dict[str, Call]:
    calls: dict[str, Call] = {}
    along = lambda b: (_x(b, 8, 3), np.array([0, 2, 2, 1, 4, 0, 3, 3], np.int32))
    for name in (
        "scatter_sum",
        "scatter_add",
        "scatter_mean",
        "scatter_mul",
        "scatter_max",
        "scatter_min",
        "scatter_std",
        "scatter_logsumexp",
        "scatter_softmax",
        "scatter_log_softmax",
    ):
        fn = getattr(segment, name)
        calls[f"segment.{name}"] = Call(lambda s, i, f=fn: f(s, i, 1, dim_size=5), along, (0,))
    calls["segment.scatter"] = Call(
        lambda s, i: segment.scatter(s, i, 1, dim_size=5, reduce="max"), along, (0,)
    )
    calls["segment.scatter out="] = Call(
        lambda s, i, o: segment.scatter_mean(s, i, 1, out=o),
        lambda b: (*along(b), _x(b, 5, 3)),
        (0, 2),
    )
    coo = lambda b: (_x(b, 6, 3), _sorted_ids(b, 6, 4))
    for name in (
        "segment_coo",
        "segment_sum_coo",
        "segment_add_coo",
        "segment_mean_coo",
        "segment_max_coo",
        "segment_min_coo",
    ):
        fn = getattr(segment, name)
        calls[f"segment.{name}"] = Call(lambda s, i, f=fn: f(s, i, dim_size=4), coo, (0, 1))
    csr = lambda b: (_x(b, 6, 3), _indptr(b))
    for name in (
        "segment_csr",
        "segment_sum_csr",
        "segment_add_csr",
        "segment_mean_csr",
        "segment_max_csr",
        "segment_min_csr",
    ):
        fn = getattr(segment, name)
        calls[f"segment.{name}"] = Call(lambda s, p, f=fn: f(s, p), csr, (0, 1))
    calls["segment.gather_coo"] = Call(
        lambda s, i: segment.gather_coo(s, i),
        lambda b: (_x(b, 4, 3), _sorted_ids(b, 6, 4)),
        (0, 1),
    )
    calls["segment.gather_csr"] = Call(
        lambda s, p, o: segment.gather_csr(s, p, out=o),
        lambda b: (_x(b, 3, 3), _indptr(b), _x(b, 6, 3)),
        (0, 1, 2),
    )
    return calls


def _masking() -> dict[str, Call]:
    tokens = lambda b: (_key(b), _x(b, 16, 4))
    return {
        "random_masking": Call(lambda k, x: jgather.random_masking(k, x, 0.75), tokens, (1,)),
        "random_masking keys": Call(
            lambda k, x: jgather.random_masking(k, x, 0.75),
            lambda b: (_keys(b), _x(b, 16, 4)),
            (0, 1),
        ),
        "random_masking_per_sample": Call(
            lambda k, x, r: jgather.random_masking_per_sample(k, x, r, capacity=12),
            lambda b: (_key(b), _x(b, 16, 4), np.linspace(0.25, 0.75, b).astype(np.float32)),
            (1, 2),
        ),
        "apply_mask": Call(
            lambda x, m: jgather.apply_mask(x, m, 4),
            lambda b: (_x(b, 16, 4), _fixed_mask(b)),
            (0, 1),
        ),
        "unshuffle": Call(
            lambda x, r, t: jgather.unshuffle(x, r, t, num_prefix=0),
            lambda b: (_x(b, 4, 4), _ids_restore(b), np.zeros((4,), np.float32)),
            (0, 1),
        ),
        "patchify": Call(lambda im: jgather.patchify(im, 4), lambda b: (_x(b, 8, 8, 3),), (0,)),
        "patchify video": Call(
            lambda v: jgather.patchify(v, 4, tubelet_size=2), lambda b: (_x(b, 4, 8, 8, 3),), (0,)
        ),
        "unpatchify": Call(lambda p: jgather.unpatchify(p, 4, 3), lambda b: (_x(b, 4, 48),), (0,)),
        "mae_loss": Call(
            lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=True),
            lambda b: (_x(b, 16, 4), _x(b, 16, 4), _fixed_mask(b).astype(np.float32)),
            (0, 1, 2),
        ),
        # Predictions for the 12 removed tokens only, with a bool mask (the masked-only path
        # reads the mask as bool), and bf16 predictions against float32 targets (promoted).
        "mae_loss removed-only": Call(
            lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=True),
            lambda b: (_x(b, 12, 4), _x(b, 16, 4), _fixed_mask(b)),
            (0, 1, 2),
        ),
        "mae_loss bf16 pred": Call(
            lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m),
            lambda b: (_x(b, 16, 4, dtype=jnp.bfloat16), _x(b, 16, 4), _fixed_mask(b)),
            (0, 1, 2),
        ),
        "patch_dropout": Call(
            lambda k, x: jgather.patch_dropout(k, x, 0.5), lambda b: (_key(b), _x(b, 17, 4)), (1,)
        ),
        "example_keys": Call(
            lambda k, i: jax.random.key_data(jgather.example_keys(k, i)),
            lambda b: (_key(b), np.arange(b, dtype=np.int32)),
            (1,),
        ),
        "masked_ids": Call(
            lambda k, x: jgather.masked_ids(jgather.random_masking(k, x, 0.75)), tokens, (1,)
        ),
        "take_masked": Call(
            lambda k, x: jgather.take_masked(x, jgather.random_masking(k, x, 0.75)), tokens, (1,)
        ),
        "box_masks": Call(
            lambda boxes: jgather.box_masks(boxes, (6, 7)),
            lambda b: (_idx(b, 3, 4, high=5),),
            (0,),
        ),
        "box_masks video": Call(
            lambda boxes: jgather.box_masks(boxes, (3, 6, 7)),
            lambda b: (_idx(b, 2, 6, high=4),),
            (0,),
        ),
        # Narrow boxes are widened to int32 positions in the wrapper (under the strict flags).
        "box_masks int8": Call(
            lambda boxes: jgather.box_masks(boxes, (6, 7)),
            lambda b: (_idx(b, 3, 4, high=5).astype(np.int8),),
            (0,),
        ),
        # apply_masks / unapply_masks take [M, N, K] index sets: the batch N is their axis 1,
        # so these calls take [N, M, K] and move it.
        "apply_masks": Call(
            lambda x, ids: jgather.apply_masks(x, jnp.swapaxes(ids, 0, 1)),
            lambda b: (_x(b, 16, 4), _idx(b, 2, 5, high=16)),
            (0, 1),
        ),
        "unapply_masks": Call(
            lambda y, ids, v: jgather.unapply_masks(
                jnp.swapaxes(y, 0, 1).reshape(-1, *y.shape[2:]),
                jnp.swapaxes(ids, 0, 1),
                16,
                valid=jnp.swapaxes(v, 0, 1),
            ),
            lambda b: (_x(b, 2, 5, 4), _idx(b, 2, 5, high=16), _idx(b, 2, 5, high=2) > 0),
            (0, 1, 2),
        ),
        "mask_schedule": Call(
            lambda r: jgather.mask_schedule("cosine", r),
            lambda b: (np.linspace(0.0, 1.0, b).astype(np.float32),),
            (0,),
        ),
    }


def _distinct(b: int, k: int, high: int) -> np.ndarray:  # [b, k] distinct positions per row
    return np.argsort(_rng(b).random((b, high)), axis=1)[:, :k].astype(np.int32)


def _tokens() -> dict[str, Call]:
    metric = lambda b: (_x(b, 12, 4),)
    with_x = lambda b: (_x(b, 12, 4), _x(b, 12, 3))
    match = lambda mt: tokens.bipartite_soft_matching(mt, 3, class_token=True)
    return {
        "tokens.bipartite_soft_matching": Call(match, metric, (0,)),
        "tokens.bipartite_soft_matching distill": Call(
            lambda mt: tokens.bipartite_soft_matching(mt, 3, class_token=True, distill_token=True),
            metric,
            (0,),
        ),
        "tokens.kth_bipartite_soft_matching": Call(
            lambda mt: tokens.kth_bipartite_soft_matching(mt, 3), metric, (0,)
        ),
        "tokens.random_bipartite_soft_matching": Call(
            lambda k, mt: tokens.random_bipartite_soft_matching(k, mt, 3),
            lambda b: (_key(b), _x(b, 12, 4)),
            (1,),
        ),
        "tokens.merge": Call(lambda mt, x: tokens.merge(match(mt), x), with_x, (0, 1)),
        "tokens.unmerge": Call(
            lambda mt, x: tokens.unmerge(match(mt), tokens.merge(match(mt), x, "amax")),
            with_x,
            (0, 1),
        ),
        "tokens.merge_wavg": Call(lambda mt, x: tokens.merge_wavg(match(mt), x), with_x, (0, 1)),
        "tokens.merge_source": Call(
            lambda mt, x: tokens.merge_source(match(mt), x), with_x, (0, 1)
        ),
        "tokens.proportional_attention_bias": Call(
            tokens.proportional_attention_bias, lambda b: (np.abs(_x(b, 12, 1)) + 1,), (0,)
        ),
        "tokens.keep_topk": Call(
            lambda x, s: tokens.keep_topk(x, s, 4, fuse=True, num_prefix=1),
            lambda b: (_x(b, 13, 4), _x(b, 12)),
            (0, 1),
        ),
        "tokens.batch_index_select": Call(
            tokens.batch_index_select, lambda b: (_x(b, 12, 4), _idx(b, 5, high=12)), (0, 1)
        ),
        "tokens.complement_idx": Call(
            lambda i: tokens.complement_idx(i, 12), lambda b: (_distinct(b, 5, 12),), (0,)
        ),
        "tokens.score_masking": Call(
            lambda k, x, s: tokens.score_masking(k, x, s, 0.5, gumbel=True, num_prefix=1),
            lambda b: (_key(b), _x(b, 17, 4), _x(b, 16)),
            (1, 2),
        ),
    }


STATIC_BATCH = {
    "block_masking": lambda k: jgather.block_masking(k, 4),
    "simmim_masking": lambda k: jgather.simmim_masking(k, 4),
    "tube_masking": lambda k: jgather.tube_masking(k, 4, (4, 6, 6)),
    "running_cell_masking": lambda k: jgather.running_cell_masking(k, 4, (4, 6, 6)),
    "sample_mask_ratios": lambda k: jgather.sample_mask_ratios(k, 4, low=0.5, high=0.9),
    "variable_ratio_masking": lambda k: jgather.variable_ratio_masking(k, 4, 16),
    "multiblock_masking": lambda k: jgather.multiblock_masking(k, 4, (14, 14)),
    "multiblock_masking vjepa": lambda k: jgather.multiblock_masking(
        k, 2, (4, 8, 8), preset="vjepa"
    ),
    "inverse_block_masking": lambda k: jgather.inverse_block_masking(
        k, 2, (8, 8), 0.75, num_masks=2
    ),
}

# Exploration helpers: they print or search over concrete values, by design outside jit.
NOT_CALLS = {"explain", "infer_gather"}
# ToMe's per-layer schedule: Python ints that fix the model's shapes, computed before tracing.
NOT_CALLS |= {"tokens.r_schedule"}

CALLS: dict[str, Call] = {**_ops(), **_segment(), **_masking(), **_tokens()}


def public_functions() -> set[str]:
    """Every public function name of ``jgather``, ``jgather.segment`` and ``jgather.tokens``
    (classes excluded)."""
    names = set()
    for module, prefix in ((jgather, ""), (segment, "segment."), (tokens, "tokens.")):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type) and not hasattr(obj, "__path__"):
                names.add(prefix + name)
    return names


def covered() -> set[str]:
    """The public names ``CALLS``, ``STATIC_BATCH`` and ``NOT_CALLS`` account for."""
    return {n.split(" ")[0] for n in (*CALLS, *STATIC_BATCH)} | NOT_CALLS


def as_jax(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a if isinstance(a, jax.Array) else jnp.asarray(a) for a in args)
