"""The programs GPU and TPU would run: every public function exported for ``cuda`` and ``tpu``.

``jax.export`` lowers for a platform this CPU-only machine does not have, so the structure of
the accelerator programs is checked here, next to the CPU HLO tests: no ``while`` loop and no
conditional on device data (a loop of small scatters serialises kernel launches on a GPU; a
conditional on index contents costs a host synchronisation per call), and a fixed number of
scatters, gathers and sorts. The per-platform choice itself is staged with
``jax.lax.platform_dependent``; what it leaves in a single-platform program is a ``case`` on a
constant selector, which is not a conditional on data and is not counted.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest
from jax import export

import jgather
from jgather import segment, tokens

ACCELERATORS = ("cuda", "tpu")
F32 = jnp.float32
I32 = jnp.int32


def S(shape, dtype=F32):
    return jax.ShapeDtypeStruct(shape, dtype)


_CONSTANT = re.compile(r"(%[\w]+) = stablehlo\.constant")
_CASE = re.compile(r"(%[\w]+)(?::\d+)? = \"stablehlo\.case\"\((%[\w]+)(?:#\d+)?\)")


_SCATTER = re.compile(r"\"stablehlo\.scatter\"\(")


def _scatter_facts(text: str, start: int) -> tuple[str, bool]:
    """The element type of the scatter at ``start`` and whether it is marked unique_indices."""
    attributes = text[start : text.index("}>", start)]
    result = re.compile(r"\) -> tensor<(?:[\d?]+x)*([a-z]+\d*)>").search(text, start)
    assert result is not None
    return result.group(1), "unique_indices = true" in attributes


def structure(fn, *avals, platform: str) -> dict[str, int]:
    """Counts of the instructions that matter in ``fn``'s exported program for ``platform``."""
    text = export.export(jax.jit(fn), platforms=(platform,))(*avals).mlir_module()
    static = set(_CONSTANT.findall(text))
    data_cases = 0
    for result, selector in _CASE.findall(text):  # in program order: selectors come first
        if selector in static:
            static.add(result)  # a case on a constant (the platform choice) is static too
        else:
            data_cases += 1
    scatters = [_scatter_facts(text, m.start()) for m in _SCATTER.finditer(text)]
    return {
        "scatter": len(scatters),
        # scatters of floating-point values (a gradient's scatter-add), and scatters that XLA
        # may not lower without atomics (not marked unique_indices)
        "float scatter": sum(not kind.startswith(("i", "ui")) for kind, _ in scatters),
        "atomic scatter": sum(not unique for _, unique in scatters),
        "gather": len(re.findall(r"\"stablehlo\.(?:dynamic_)?gather\"\(", text)),
        "sort": len(re.findall(r"\"stablehlo\.sort\"\(", text)),
        "while": len(re.findall(r"stablehlo\.while\(", text)),
        "conditional": data_cases + len(re.findall(r"\"stablehlo\.if\"\(", text)),
    }


def test_the_counter_sees_loops_and_conditionals_on_cpu():
    """Guards the counter itself: the CPU program of a large per-element scatter keeps its
    cache-chunking loop and the run-time whole-rows test."""
    args = S((10000, 64)), S((200000, 64), I32), S((200000, 64))
    got = structure(lambda x, i, s: jgather.scatter_add(x, 0, i, s), *args, platform="cpu")
    assert got["while"] >= 1 and got["conditional"] >= 2, got


# name -> (function, abstract arguments, expected counts on GPU and TPU). Sizes are those
# where the CPU program uses its loop or its run-time test.
X, IDX, SRC = S((10000, 64)), S((200000, 64), I32), S((200000, 64))
SQ, SQI = S((4096, 4096)), S((4096, 1024), I32)
ONE = dict(scatter=1, gather=0, sort=0)
NONE = dict(scatter=0, gather=0, sort=0)
BOOL = jnp.bool_
OPS = {
    "gather": (lambda x, i: jgather.gather(x, 1, i), (S((64, 128)), S((64, 32), I32)), {}),
    "take_along_dim": (
        lambda x, i: jgather.take_along_dim(x, i, 1),
        (S((64, 128)), S((64, 32), I32)),
        {},
    ),
    "index_select": (lambda x, i: jgather.index_select(x, 1, i), (S((64, 128)), S((9,), I32)), {}),
    "scatter_add per element": (
        lambda x, i, s: jgather.scatter_add(x, 0, i, s),
        (X, IDX, SRC),
        ONE,
    ),
    "scatter_add last axis": (
        lambda x, i, s: jgather.scatter_add(x, 1, i, s),
        (SQ, SQI, S((4096, 1024))),
        ONE,
    ),
    "scatter_reduce amax": (
        lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "amax"),
        (X, IDX, SRC),
        ONE,
    ),
    "scatter_reduce sum include_self=False": (
        lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "sum", include_self=False),
        (X, IDX, SRC),
        dict(scatter=2, sort=0),
    ),
    "scatter_reduce prod": (
        lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "prod"),
        (X, IDX, SRC),
        ONE,
    ),
    "scatter_reduce mean": (
        lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "mean"),
        (S((64, 8)), S((128, 8), I32), S((128, 8))),
        {},
    ),
    "scatter": (lambda x, i, s: jgather.scatter(x, 0, i, s), (X, IDX, SRC), {}),
    # torch's index family: whole rows, or positions flattened into one scatter.
    "index_add": (
        lambda x, i, s: jgather.index_add(x, 0, i, s),
        (X, S((200000,), I32), SRC),
        ONE,
    ),
    "index_copy": (lambda x, i, s: jgather.index_copy(x, 0, i, s), (X, S((200000,), I32), SRC), {}),
    "index_fill": (lambda x, i: jgather.index_fill(x, 1, i, 0.0), (X, S((9,), I32)), {}),
    "index_reduce amax": (
        lambda x, i, s: jgather.index_reduce(x, 0, i, s, "amax"),
        (X, S((200000,), I32), SRC),
        ONE,
    ),
    "index_put accumulate": (
        lambda x, i, j, v: jgather.index_put(x, (i, j), v, True),
        (SQ, S((1 << 20,), I32), S((1 << 20,), I32), S((1 << 20,))),
        ONE,
    ),
    "put accumulate": (
        lambda x, i, s: jgather.put(x, i, s, True),
        (X, S((200000,), I32), S((200000,))),
        ONE,
    ),
    "take": (lambda x, i: jgather.take(x, i), (S((64, 128)), S((64, 32), I32)), {}),
    # The masked family and the view scatters write nothing through a scatter: a select, a
    # gather by the mask's running count, static slices. masked_select's positions come from
    # jnp.flatnonzero (one int32 scatter-add, its bincount).
    "masked_fill": (lambda x, m: jgather.masked_fill(x, m, -1.0), (SQ, S((4096,), BOOL)), NONE),
    "masked_scatter": (
        lambda x, m, s: jgather.masked_scatter(x, m, s),
        (S((64, 128)), S((64, 128), BOOL), S((8192,))),
        dict(scatter=0, gather=1, sort=0),
    ),
    "masked_select": (
        lambda x, m: jgather.masked_select(x, m, size=4096),
        (S((64, 128)), S((64, 128), BOOL)),
        {"scatter": 1, "float scatter": 0, "gather": 1, "sort": 0},
    ),
    "select_scatter": (lambda x, s: jgather.select_scatter(x, s, 1, -3), (SQ, S((4096,))), NONE),
    "slice_scatter": (
        lambda x, s: jgather.slice_scatter(x, s, 1, 1, None, 2),
        (SQ, S((4096, 2048))),
        NONE,
    ),
    "slice_scatter contiguous": (
        lambda x, s: jgather.slice_scatter(x, s, 0, 8, 72),
        (SQ, S((64, 4096))),
        NONE,
    ),
    "diagonal_scatter": (lambda x, s: jgather.diagonal_scatter(x, s, 1), (SQ, S((4095,))), NONE),
    "embedding": (
        lambda i, w: jgather.embedding(i, w, padding_idx=0),
        (S((64, 32), I32), S((1000, 64))),
        dict(scatter=0, gather=1, sort=0),
    ),
    # Bag starts (an int32 scatter), the row sums, the bag sizes; max: the maximum, the
    # first maximal entry, the first entry, then one gather of the chosen rows.
    "embedding_bag mean": (
        lambda i, w, o: jgather.embedding_bag(i, w, o),
        (S((4096,), I32), S((1000, 64)), S((128,), I32)),
        dict(scatter=3, gather=1, sort=0),
    ),
    "embedding_bag max": (
        lambda i, w, o: jgather.embedding_bag(i, w, o, mode="max"),
        (S((4096,), I32), S((1000, 64)), S((128,), I32)),
        dict(scatter=4, sort=0),
    ),
    "scatter bf16 add": (
        lambda x, i, s: jgather.scatter_add(x, 0, i, s),
        (S((64, 8), jnp.bfloat16), S((128, 8), I32), S((128, 8), jnp.bfloat16)),
        {},
    ),
}

E, V, FEAT = 4096, 512, 16
MSG, DST = S((E, FEAT)), S((E,), I32)


def _rows(f):
    return lambda s, i: f(s, i, dim=0, dim_size=V)


def _coo(f):
    return lambda s, i: f(s, i, dim_size=V)


def _csr(f):
    return lambda s, p: f(s, p)


SEGMENT = {
    name: (_rows(getattr(segment, name)), (MSG, DST), {})
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
    )
}
SEGMENT["scatter_sum"] = (SEGMENT["scatter_sum"][0], (MSG, DST), ONE)
SEGMENT["scatter"] = (
    lambda s, i: segment.scatter(s, i, dim=0, dim_size=V, reduce="max"),
    (MSG, DST),
    {},
)
for _name in (
    "segment_coo",
    "segment_sum_coo",
    "segment_add_coo",
    "segment_mean_coo",
    "segment_max_coo",
    "segment_min_coo",
):
    SEGMENT[_name] = (
        _coo(getattr(segment, _name)),
        (MSG, DST),
        {},
    )
for _name in (
    "segment_csr",
    "segment_sum_csr",
    "segment_add_csr",
    "segment_mean_csr",
    "segment_max_csr",
    "segment_min_csr",
):
    SEGMENT[_name] = (
        _csr(getattr(segment, _name)),
        (MSG, S((V + 1,), I32)),
        {},
    )
SEGMENT["gather_coo"] = (lambda s, i: segment.gather_coo(s, i), (S((V, FEAT)), DST), {})
SEGMENT["gather_csr"] = (
    lambda s, p, o: segment.gather_csr(s, p, out=o),
    (S((V, FEAT)), S((V + 1,), I32), MSG),
    {},
)

KEY = jax.ShapeDtypeStruct((), jax.random.key(0).dtype)
TOKENS = S((8, 196, 32))
MASKING = {
    "random_masking": (lambda k, x: jgather.random_masking(k, x, 0.75), (KEY, TOKENS), {}),
    "random_masking_per_sample": (
        lambda k, x: jgather.random_masking_per_sample(k, x, 0.5, capacity=128),
        (KEY, TOKENS),
        {},
    ),
    "unshuffle": (
        lambda x, r, t: jgather.unshuffle(x, r, t, num_prefix=0),
        (S((8, 49, 32)), S((8, 196), I32), S((32,))),
        {},
    ),
    "apply_mask": (
        lambda x, m: jgather.apply_mask(x, m, 49),
        (TOKENS, S((8, 196), jnp.bool_)),
        {},
    ),
    "tube_masking": (lambda k: jgather.tube_masking(k, 8, (8, 14, 14), 0.9), (KEY,), {}),
    "running_cell_masking": (
        lambda k: jgather.running_cell_masking(k, 8, (8, 14, 14), 0.5),
        (KEY,),
        {},
    ),
    # BEiT's sampler places blocks one after another, each depending on the mask so far: one
    # bounded while loop, inherent to the algorithm, not a lowering choice.
    "block_masking": (lambda k: jgather.block_masking(k, 8), (KEY,), {"while": 1}),
    "simmim_masking": (lambda k: jgather.simmim_masking(k, 8), (KEY,), {}),
    "inverse_block_masking": (
        lambda k: jgather.inverse_block_masking(k, 8, (14, 14), 0.8, num_masks=4),
        (KEY,),
        {},
    ),
    "masked_ids": (
        lambda r: jgather.masked_ids(jgather.MaskedTokens(None, None, r, len_keep=49)),
        (S((8, 196), I32),),
        {},
    ),
    "take_masked": (
        lambda x, r: jgather.take_masked(x, jgather.MaskedTokens(None, None, r, len_keep=49)),
        (TOKENS, S((8, 196), I32)),
        {},
    ),
    # The JEPA samplers' retries are drawn at once (every attempt the reference could make, or
    # a fixed number of rounds), so no loop remains.
    "multiblock_masking ijepa": (lambda k: jgather.multiblock_masking(k, 8, (16, 16)), (KEY,), {}),
    "multiblock_masking vjepa": (
        lambda k: jgather.multiblock_masking(k, 8, (8, 14, 14), preset="vjepa"),
        (KEY,),
        {},
    ),
    "box_masks": (lambda b: jgather.box_masks(b, (16, 16)), (S((8, 4, 4), I32),), {}),
    "apply_masks": (lambda x, i: jgather.apply_masks(x, i), (TOKENS, S((4, 8, 49), I32)), {}),
    "unapply_masks": (
        lambda y, i, v: jgather.unapply_masks(y, i, 196, valid=v),
        (S((32, 49, 32)), S((4, 8, 49), I32), S((4, 8, 49), jnp.bool_)),
        {},
    ),
    "patch_dropout": (lambda k, x: jgather.patch_dropout(k, x, 0.5), (KEY, TOKENS), {}),
    "variable_ratio_masking": (
        lambda k: jgather.variable_ratio_masking(k, 8, 196),
        (KEY,),
        {},
    ),
    "sample_mask_ratios": (
        lambda k: jgather.sample_mask_ratios(k, 8, schedule="cosine", num_tokens=196),
        (KEY,),
        {},
    ),
    "mae_loss": (
        lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=True),
        (TOKENS, TOKENS, S((8, 196))),
        {},
    ),
    "mae_loss masked-only videomae": (
        lambda p, t, m: jgather.mae_loss(
            pred=p, target=t, mask=m, norm_pix_loss="videomae", channels=2
        ),
        (S((8, 147, 32)), TOKENS, S((8, 196))),
        {},
    ),
    "patchify": (lambda im: jgather.patchify(im, 16), (S((2, 224, 224, 3)),), {}),
}

# ToMe at ViT-B/16's token count (197 with the class token), r = 16.
VIT, VIT_M = S((8, 197, 96)), S((8, 197, 64))
MERGE = (S((8, 181), I32), S((8, 16), I32), S((8, 16), I32), S((8, 197), I32))  # Merge's arrays


def _tome(mt):
    return tokens.bipartite_soft_matching(mt, 16, class_token=True)


TOKEN_REDUCTION = {
    "bipartite_soft_matching": (_tome, (VIT_M,), {}),
    "kth_bipartite_soft_matching": (
        lambda mt: tokens.kth_bipartite_soft_matching(mt, 4),
        (VIT_M,),
        {},
    ),
    "random_bipartite_soft_matching": (
        lambda k, mt: tokens.random_bipartite_soft_matching(k, mt, 16),
        (KEY, VIT_M),
        {},
    ),
    # merge_wavg's 'sum': one gather of the output tokens, one of the merged ones, one
    # scatter of whole rows. ('mean' groups equal targets first, as torch's mean needs.)
    "merge sum": (
        lambda m, x: tokens.merge(tokens.Merge(*m, r=16, num_tokens=197), x, "sum"),
        (MERGE, VIT),
        {"scatter": 1, "gather": 2, "sort": 0},
    ),
    "merge mean": (
        lambda m, x: tokens.merge(tokens.Merge(*m, r=16, num_tokens=197), x),
        (MERGE, VIT),
        {},
    ),
    "unmerge": (
        lambda m, x: tokens.unmerge(tokens.Merge(*m, r=16, num_tokens=197), x),
        (MERGE, S((8, 181, 96))),
        {"gather": 1, "scatter": 0, "sort": 0},
    ),
    "merge_wavg": (lambda mt, x: tokens.merge_wavg(_tome(mt), x), (VIT_M, VIT), {}),
    "merge_source": (lambda mt, x: tokens.merge_source(_tome(mt), x), (VIT_M, VIT), {}),
    "proportional_attention_bias": (
        tokens.proportional_attention_bias,
        (S((8, 181, 1)),),
        {"gather": 0, "scatter": 0},
    ),
    "keep_topk": (
        lambda x, s: tokens.keep_topk(x, s, 98, fuse=True, num_prefix=1),
        (VIT, S((8, 196))),
        {},
    ),
    "batch_index_select": (
        tokens.batch_index_select,
        (VIT, S((8, 98), I32)),
        {"scatter": 0},
    ),
    "complement_idx": (lambda i: tokens.complement_idx(i, 196), (S((8, 98), I32),), {}),
    "score_masking": (
        lambda k, x, s: tokens.score_masking(k, x, s, 0.75, gumbel=True),
        (KEY, TOKENS, S((8, 196))),
        {},
    ),
}

CASES = {
    **{f"ops/{k}": v for k, v in OPS.items()},
    **{f"tokens/{k}": v for k, v in TOKEN_REDUCTION.items()},
    **{f"segment/{k}": v for k, v in SEGMENT.items()},
    **{f"masking/{k}": v for k, v in MASKING.items()},
}


@pytest.mark.parametrize("platform", ACCELERATORS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_accelerator_program_has_no_loop_and_no_conditional(name, platform):
    fn, avals, expected = CASES[name]
    got = structure(fn, *avals, platform=platform)
    expected = {"while": 0, "conditional": 0, **expected}
    for what, count in expected.items():
        assert got[what] == count, (what, got)


def test_every_public_function_is_exported_for_the_accelerators():
    """The tables above name every public function of jgather and jgather.segment."""
    covered = {name.split("/")[1].split(" ")[0] for name in CASES}
    public = {
        n
        for n in jgather.__all__
        if callable(getattr(jgather, n)) and not isinstance(getattr(jgather, n), type)
    }
    # explain/infer_gather print and read values on the host; example_keys and
    # mask_schedule are tested through the maskers that call them; unpatchify is patchify's
    # reshape back.
    host_side = {"explain", "infer_gather", "example_keys", "mask_schedule", "unpatchify"}
    assert public - host_side <= covered, sorted(public - host_side - covered)
    assert set(segment.__all__) <= covered, sorted(set(segment.__all__) - covered)
    # r_schedule is a Python list of ints (the model's shapes), computed before tracing.
    functions = {n for n in tokens.__all__ if not isinstance(getattr(tokens, n), type)}
    assert functions - {"r_schedule"} <= covered, sorted(functions - {"r_schedule"} - covered)


@pytest.mark.parametrize("name", ["random_masking", "unshuffle", "take_masked"])
@pytest.mark.parametrize("platform", ACCELERATORS)
def test_random_masking_method_follows_the_lowering_platform(platform, name):
    """``method=None`` is a one-hot product on TPU and a gather elsewhere, chosen for the
    platform the program is lowered for (not the host's default backend), in every function
    that moves tokens with ``method``."""
    fn, avals, _ = MASKING[name]
    text = export.export(jax.jit(fn), platforms=(platform,))(*avals).mlir_module()
    has_dot = "stablehlo.dot_general" in text
    assert has_dot == (platform == "tpu")


# Gradients: the masking's gathers are permutations (or parts of one), so their gradients
# gather the cotangent by the inverse permutation; no scatter of floating-point values is
# left. What remains are int32 scatters of slot numbers (the inverse of an index, which no
# gather can compute without it), marked unique_indices where the slots are unique.
# name -> (function of the differentiated arguments and the others, argnums, avals, expected)
def _grad(fn, argnums=0):
    return jax.grad(lambda *a: jnp.sum(jnp.square(fn(*a))), argnums=argnums)


def _masked(r):
    return jgather.MaskedTokens(None, None, r, len_keep=49)


SETS = S((4, 8, 49), I32)
GRADIENTS = {
    "random_masking": (
        _grad(lambda x, k: jgather.random_masking(k, x, 0.75, num_prefix=1).x_masked),
        (TOKENS, KEY),
        {},
    ),
    "random_masking noise": (
        _grad(lambda x, n: jgather.random_masking(None, x, 0.75, noise=n).x_masked),
        (TOKENS, S((8, 196))),
        {},
    ),
    "apply_mask": (
        _grad(lambda x, m: jgather.apply_mask(x, m, 49).x_masked),
        (TOKENS, S((8, 196), jnp.bool_)),
        {},
    ),
    "unshuffle": (
        _grad(lambda x, t, r: jgather.unshuffle(x, r, t, num_prefix=0), (0, 1)),
        (S((8, 49, 32)), S((32,)), S((8, 196), I32)),
        {"atomic scatter": 0},
    ),
    "take_masked": (
        _grad(lambda x, r: jgather.take_masked(x, _masked(r))),
        (TOKENS, S((8, 196), I32)),
        {"scatter": 0},
    ),
    "patch_dropout": (
        _grad(lambda x, k: jgather.patch_dropout(k, x, 0.5).tokens),
        (TOKENS, KEY),
        {},
    ),
    "patch_dropout ordered": (
        _grad(lambda x, k: jgather.patch_dropout(k, x, 0.5, ordered=True).tokens),
        (TOKENS, KEY),
        {},
    ),
    "apply_masks unique_indices": (
        _grad(lambda x, i: jgather.apply_masks(x, i, unique_indices=True)),
        (TOKENS, SETS),
        {"scatter": 1, "atomic scatter": 0},
    ),
    "apply_masks NMK unique_indices": (
        _grad(lambda x, i: jgather.apply_masks(x, i, layout="NMK", unique_indices=True)),
        (TOKENS, S((8, 4, 49), I32)),
        {"scatter": 1, "atomic scatter": 0},
    ),
    "unapply_masks": (
        _grad(lambda y, i, v: jgather.unapply_masks(y, i, 196, valid=v)),
        (S((32, 49, 32)), SETS, S((4, 8, 49), jnp.bool_)),
        {"scatter": 1},
    ),
    "gather inverse": (
        _grad(lambda x, i, v: jgather.gather(x, 1, i, inverse=v)),
        (S((64, 128)), S((64, 32), I32), S((64, 128), I32)),
        {"scatter": 0},
    ),
    "take_along_dim inverse": (
        _grad(lambda x, i, v: jgather.take_along_dim(x, i, 1, inverse=v)),
        (S((64, 128)), S((64, 32), I32), S((64, 128), I32)),
        {"scatter": 0},
    ),
    "index_select inverse": (
        _grad(lambda x, i, v: jgather.index_select(x, 1, i, inverse=v)),
        (S((64, 128)), S((9,), I32), S((128,), I32)),
        {"scatter": 0},
    ),
    # Without an inverse the gradient is a scatter-add, marked unique_indices.
    "gather unique_indices": (
        _grad(lambda x, i: jgather.gather(x, 1, i, unique_indices=True)),
        (S((64, 128)), S((64, 32), I32)),
        {"scatter": 1, "float scatter": 1, "atomic scatter": 0},
    ),
    "index_select unique_indices": (
        _grad(lambda x, i: jgather.index_select(x, 1, i, unique_indices=True)),
        (S((64, 128)), S((9,), I32)),
        {"scatter": 1, "float scatter": 1, "atomic scatter": 0},
    ),
}


@pytest.mark.parametrize("platform", ACCELERATORS)
@pytest.mark.parametrize("name", sorted(GRADIENTS))
def test_gradient_program_scatters_no_floats(name, platform):
    fn, avals, expected = GRADIENTS[name]
    got = structure(fn, *avals, platform=platform)
    # Conditionals are not counted here: the backward pass of the per-platform choice is a
    # case in a function of its own, whose selector (the forward's constant) arrives as an
    # argument, which the counter cannot follow.
    expected = {"while": 0, "float scatter": 0, **expected}
    for what, count in expected.items():
        assert got[what] == count, (what, got)


def test_the_scatter_facts_tell_floats_and_unique_marks():
    """Guards the counter: a plain gather's gradient is one float scatter-add, unmarked."""
    fn = _grad(lambda x, i: jgather.gather(x, 1, i))
    got = structure(fn, S((64, 128)), S((64, 32), I32), platform="cuda")
    assert (got["scatter"], got["float scatter"], got["atomic scatter"]) == (1, 1, 1), got
