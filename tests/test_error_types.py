"""One rule for exception types, for every public function (jgather/_checks.py).

A wrong type is a ``TypeError``, a wrong value a ``ValueError``, an out-of-range dim or index an
``IndexError``; every message starts with the function's name. The table holds at least one
wrong-type and one wrong-value call for each public function of ``jgather`` and
``jgather.segment``; ``test_the_table_covers_every_public_function`` keeps it complete.
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather
from jgather import segment as seg

K = jax.random.key(0)
X = jnp.arange(24.0).reshape(2, 3, 4)
IX = jnp.zeros((2, 3, 4), jnp.int32)
IXF = jnp.zeros((2, 3, 4), jnp.float32)
T = jnp.ones((2, 16, 4))  # tokens [N, L, D]
IMGS = jnp.ones((1, 8, 8, 3))
SRC = jnp.ones((4, 2))
IDX = jnp.array([0, 0, 1, 2])
IDXF = jnp.array([0.0, 0.0, 1.0, 2.0])
PTR = jnp.array([0, 2, 4])
PTRF = jnp.array([0.0, 2.0, 4.0])
MASKED = jgather.random_masking(K, T, 0.75)

# (function name, call, exception type)
CASES = [
    ("gather", lambda: jgather.gather(X, 1, IXF), TypeError),
    ("gather", lambda: jgather.gather(X, 1, IX, mode="wrap"), ValueError),
    ("gather", lambda: jgather.gather(X, 3, IX), IndexError),
    ("gather", lambda: jgather.gather(X, 1, IX.at[0, 0, 0].set(3)), IndexError),
    ("index_select", lambda: jgather.index_select(X, 1, IXF[0, 0]), TypeError),
    ("index_select", lambda: jgather.index_select(X, 1, IX[0, 0], mode="wrap"), ValueError),
    ("take_along_dim", lambda: jgather.take_along_dim(X, IXF, 1), TypeError),
    ("take_along_dim", lambda: jgather.take_along_dim(X, IX, 1, mode="wrap"), ValueError),
    ("scatter", lambda: jgather.scatter(X, 1, IXF, X), TypeError),
    ("scatter", lambda: jgather.scatter(X, 1, IX, X, mode="wrap"), ValueError),
    ("scatter_add", lambda: jgather.scatter_add(X, 1, IXF, X), TypeError),
    ("scatter_add", lambda: jgather.scatter_add(X, 1, IX, X, mode="wrap"), ValueError),
    ("scatter_reduce", lambda: jgather.scatter_reduce(X, 1, IXF, X, "sum"), TypeError),
    ("scatter_reduce", lambda: jgather.scatter_reduce(X, 1, IX, X, "median"), ValueError),
    ("index_add", lambda: jgather.index_add(X, 1, IDXF[:3], X), TypeError),
    ("index_add", lambda: jgather.index_add(X, 1, IDX[:3], X[:, :2]), ValueError),
    ("index_add", lambda: jgather.index_add(X, 1, IDX.at[0].set(3)[:3], X), IndexError),
    ("index_copy", lambda: jgather.index_copy(X, 1, IDX[:3], IX), TypeError),
    ("index_copy", lambda: jgather.index_copy(X, 1, IX, X), ValueError),
    ("index_fill", lambda: jgather.index_fill(X, 1, IDXF, 1.0), TypeError),
    ("index_fill", lambda: jgather.index_fill(X, 1, IDX, X), ValueError),
    ("index_fill", lambda: jgather.index_fill(X, 1, IDX - 4, 1.0), IndexError),
    ("index_reduce", lambda: jgather.index_reduce(X > 0, 1, IDX[:3], X > 0, "amax"), TypeError),
    ("index_reduce", lambda: jgather.index_reduce(X, 1, IDX[:3], X, "sum"), ValueError),
    ("index_put", lambda: jgather.index_put(X, IDX, 1.0), TypeError),
    ("index_put", lambda: jgather.index_put(X, (IDX, IDX[:3]), 1.0), ValueError),
    ("index_put", lambda: jgather.index_put(X, (IDX, IDX, IDX, IDX), 1.0), IndexError),
    ("put", lambda: jgather.put(X, IDXF, SRC[:, 0]), TypeError),
    ("put", lambda: jgather.put(X, IDX, SRC), ValueError),
    ("put", lambda: jgather.put(X, IDX + 24, SRC[:, 0]), IndexError),
    ("take", lambda: jgather.take(X, IDXF), TypeError),
    ("take", lambda: jgather.take(X, IDX, mode="wrap"), ValueError),
    ("take", lambda: jgather.take(X, IDX - 25), IndexError),
    ("masked_fill", lambda: jgather.masked_fill(X, IX, 0.0), TypeError),
    ("masked_fill", lambda: jgather.masked_fill(X, IX[0, :2] > 0, 0.0), ValueError),
    ("masked_scatter", lambda: jgather.masked_scatter(X, X > 0, IX), TypeError),
    ("masked_scatter", lambda: jgather.masked_scatter(X, X > 0, X[0]), ValueError),
    ("masked_select", lambda: jgather.masked_select(X, X > 0, size=1.0), TypeError),
    ("masked_select", lambda: jgather.masked_select(X, X > 0, size=3), ValueError),
    ("select_scatter", lambda: jgather.select_scatter(X, X[:, 0], 1, 0.0), TypeError),
    ("select_scatter", lambda: jgather.select_scatter(X, X[:, 0, :2], 1, 0), ValueError),
    ("select_scatter", lambda: jgather.select_scatter(X, X[:, 0], 1, 3), IndexError),
    ("slice_scatter", lambda: jgather.slice_scatter(X, X, 1, None, 2.0), TypeError),
    ("slice_scatter", lambda: jgather.slice_scatter(X, X, 1, step=0), ValueError),
    ("slice_scatter", lambda: jgather.slice_scatter(X, X, 3), IndexError),
    ("diagonal_scatter", lambda: jgather.diagonal_scatter(X, X[0, :, 0], 0.5), TypeError),
    ("diagonal_scatter", lambda: jgather.diagonal_scatter(X, X[0], 0, 1, -2), ValueError),
    ("embedding", lambda: jgather.embedding(IDXF, X[0]), TypeError),
    ("embedding", lambda: jgather.embedding(IDX, X), ValueError),
    ("embedding", lambda: jgather.embedding(IDX + 3, X[0]), IndexError),
    ("embedding_bag", lambda: jgather.embedding_bag(IDXF, X[0], IDX[:1]), TypeError),
    ("embedding_bag", lambda: jgather.embedding_bag(IDX, X[0], IDX[:1] + 1), ValueError),
    ("embedding_bag", lambda: jgather.embedding_bag(IDX + 3, X[0], IDX[:1]), IndexError),
    ("diagonal_scatter", lambda: jgather.diagonal_scatter(X, X[0], 0, 1, 3), IndexError),
    ("explain", lambda: jgather.explain(X, 1.0, IX, (0, 0, 0)), TypeError),
    ("explain", lambda: jgather.explain(X, 1, IX[:, :, :2, None], (0, 0, 0)), ValueError),
    ("infer_gather", lambda: jgather.infer_gather(X, "output"), TypeError),
    ("infer_gather", lambda: jgather.infer_gather(X, X[0]), ValueError),
    ("example_keys", lambda: jgather.example_keys(K, jnp.array([0.0, 1.0])), TypeError),
    ("example_keys", lambda: jgather.example_keys(K, jnp.zeros((2, 2), jnp.int32)), ValueError),
    ("mae_loss", lambda: jgather.mae_loss(pred=None, target=T, mask=T[..., 0]), TypeError),
    ("mae_loss", lambda: jgather.mae_loss(pred=T, target=T[:1], mask=T[..., 0]), ValueError),
    ("mask_schedule", lambda: jgather.mask_schedule(1, 0.5), TypeError),
    ("mask_schedule", lambda: jgather.mask_schedule("bogus", 0.5), ValueError),
    ("patch_dropout", lambda: jgather.patch_dropout(K, T, "0.5"), TypeError),
    ("patch_dropout", lambda: jgather.patch_dropout(K, T, 1.0), ValueError),
    ("patch_dropout", lambda: jgather.patch_dropout(K, T, 0.5, num_prefix=16), ValueError),
    ("patch_dropout", lambda: jgather.patch_dropout(K, None, 0.5), TypeError),
    ("patchify", lambda: jgather.patchify(IMGS, 4.0), TypeError),
    ("patchify", lambda: jgather.patchify(IMGS, 5), ValueError),
    ("patchify", lambda: jgather.patchify(IMGS, 4, tubelet_size=2.0), TypeError),
    ("unpatchify", lambda: jgather.unpatchify(jnp.ones((1, 4, 48)), 4, 3.0), TypeError),
    ("unpatchify", lambda: jgather.unpatchify(jnp.ones((1, 4, 48)), 4, 0), ValueError),
    ("random_masking", lambda: jgather.random_masking(K, T, "0.75"), TypeError),
    ("random_masking", lambda: jgather.random_masking(K, T, 1.5), ValueError),
    ("random_masking", lambda: jgather.random_masking(K, T, 0.5, num_prefix=1.0), TypeError),
    ("random_masking", lambda: jgather.random_masking(K, T, 0.5, num_prefix=16), ValueError),
    ("random_masking", lambda: jgather.random_masking(K, T, 0.5, mask_dtype="bogus"), TypeError),
    ("random_masking", lambda: jgather.random_masking(T, 0.75), TypeError),
    (
        "random_masking_per_sample",
        lambda: jgather.random_masking_per_sample(K, T, 0.5, capacity=2.0),
        TypeError,
    ),
    (
        "random_masking_per_sample",
        lambda: jgather.random_masking_per_sample(K, T, 0.5, capacity=0),
        ValueError,
    ),
    ("running_cell_masking", lambda: jgather.running_cell_masking(K, 2.0, (2, 4, 4)), TypeError),
    ("running_cell_masking", lambda: jgather.running_cell_masking(K, 2, (2, 3, 4)), ValueError),
    ("sample_mask_ratios", lambda: jgather.sample_mask_ratios(K, 2.0), TypeError),
    ("sample_mask_ratios", lambda: jgather.sample_mask_ratios(K, 0), ValueError),
    ("sample_mask_ratios", lambda: jgather.sample_mask_ratios(K, 2, low=1.5), ValueError),
    ("simmim_masking", lambda: jgather.simmim_masking(K, 2, 64, mask_ratio="x"), TypeError),
    ("simmim_masking", lambda: jgather.simmim_masking(K, 2, 64, mask_ratio=1.5), ValueError),
    ("tube_masking", lambda: jgather.tube_masking(K, 2, (2, 4, 4), "0.5"), TypeError),
    ("tube_masking", lambda: jgather.tube_masking(K, 2, (2, 4, 4), 1.5), ValueError),
    ("tube_masking", lambda: jgather.tube_masking(K, 2, "grid", 0.5), TypeError),
    ("tube_masking", lambda: jgather.tube_masking(K, 2, (4, 4), 0.5), ValueError),
    ("inverse_block_masking", lambda: jgather.inverse_block_masking(K, 2.0), TypeError),
    ("inverse_block_masking", lambda: jgather.inverse_block_masking(K, 2, (4, 4), 1.5), ValueError),
    ("masked_ids", lambda: jgather.masked_ids(MASKED.mask), TypeError),
    ("masked_ids", lambda: jgather.masked_ids(MASKED._replace(len_keep=None)), ValueError),
    ("apply_masks", lambda: jgather.apply_masks(T, jnp.zeros((1, 2, 3))), TypeError),
    ("apply_masks", lambda: jgather.apply_masks(T, jnp.zeros((3, 3), jnp.int32)), ValueError),
    (
        "unapply_masks",
        lambda: jgather.unapply_masks(jnp.ones((2, 3, 4)), jnp.zeros((1, 2, 3)), 16),
        TypeError,
    ),
    (
        "unapply_masks",
        lambda: jgather.unapply_masks(jnp.ones((2, 3, 4)), jnp.zeros((1, 2, 3), jnp.int32), 0),
        ValueError,
    ),
    ("box_masks", lambda: jgather.box_masks(jnp.zeros((2, 4)), (4, 4)), TypeError),
    ("box_masks", lambda: jgather.box_masks(jnp.zeros((2, 5), jnp.int32), (4, 4)), ValueError),
    ("multiblock_masking", lambda: jgather.multiblock_masking(K, 2.0, (14, 14)), TypeError),
    (
        "multiblock_masking",
        lambda: jgather.multiblock_masking(K, 2, (14, 14), preset="nope"),
        ValueError,
    ),
    ("take_masked", lambda: jgather.take_masked(T, None), TypeError),
    ("take_masked", lambda: jgather.take_masked(T[:, 1:], MASKED), ValueError),
    ("block_masking", lambda: jgather.block_masking(K, 2.0), TypeError),
    ("block_masking", lambda: jgather.block_masking(K, 2, (4, 4), 17), ValueError),
    (
        "variable_ratio_masking",
        lambda: jgather.variable_ratio_masking(K, 2.0, 8),
        TypeError,
    ),
    (
        "variable_ratio_masking",
        lambda: jgather.variable_ratio_masking(K, 2, 8, schedule="bogus"),
        ValueError,
    ),
    (
        "unshuffle",
        lambda: jgather.unshuffle(MASKED.x_masked, MASKED.ids_restore * 1.0, T[0, 0], num_prefix=0),
        TypeError,
    ),
    (
        "unshuffle",
        lambda: jgather.unshuffle(MASKED.x_masked, MASKED.ids_restore, T[0, 0]),
        ValueError,
    ),
    ("apply_mask", lambda: jgather.apply_mask(T, T[..., 0] > 0, 2.0), TypeError),
    ("apply_mask", lambda: jgather.apply_mask(T, T[..., 0] > 0, 99), ValueError),
]

_COO = [n for n in seg.__all__ if n.startswith("scatter") or n.endswith("_coo")]
_CSR = [n for n in seg.__all__ if n.endswith("_csr")]
for _name in _COO:
    _fn = getattr(seg, _name)
    CASES.append((_name, lambda f=_fn: f(SRC, IDXF), TypeError))
    CASES.append((_name, lambda f=_fn: f(SRC, IDX, mode="wrap"), ValueError))
for _name in _CSR:
    _fn = getattr(seg, _name)
    CASES.append((_name, lambda f=_fn: f(SRC, PTRF), TypeError))
    CASES.append((_name, lambda f=_fn: f(SRC, PTR, out=jnp.ones((3, 5))), ValueError))
for _name in ("scatter_sum", "scatter_mean"):
    _fn = getattr(seg, _name)
    CASES.append((_name, lambda f=_fn: f(SRC, IDX, 0, dim_size=2.0), TypeError))
    CASES.append((_name, lambda f=_fn: f(SRC, IDX, 0, dim_size=-1), ValueError))
CASES.append(("segment_coo", lambda: seg.segment_coo(SRC, IDX, dim_size=2.0), TypeError))
CASES.append(("segment_coo", lambda: seg.segment_coo(SRC, IDX, dim_size=-1), ValueError))
CASES.append(("scatter_sum", lambda: seg.scatter_sum(SRC, IDX, dim=2), IndexError))
CASES.append(("scatter_sum", lambda: seg.scatter_sum(SRC, IDX, dim=0, dim_size=2), IndexError))


@pytest.mark.parametrize(
    ("name", "call", "exc"),
    CASES,
    ids=[f"{name}-{exc.__name__}-{i}" for i, (name, _, exc) in enumerate(CASES)],
)
def test_exception_type_and_function_name(name, call, exc):
    with pytest.raises(exc) as info:
        call()
    assert type(info.value) is exc  # not a subclass (e.g. jax's own errors)
    assert str(info.value).startswith(f"{name}: "), str(info.value)


def _public_functions():
    for module, names in ((jgather, jgather.__all__), (seg, seg.__all__)):
        for name in names:
            if inspect.isfunction(getattr(module, name)):
                yield name


def test_the_table_covers_every_public_function():
    kinds = {}
    for name, _, exc in CASES:
        kinds.setdefault(name, set()).add(exc)
    for name in _public_functions():
        assert {TypeError, ValueError} <= kinds.get(name, set()), name


def test_traced_where_static_is_a_type_error_naming_the_function():
    with pytest.raises(TypeError, match=r"^random_masking: mask_ratio fixes"):
        jax.jit(lambda r: jgather.random_masking(K, T, r))(0.5)
    with pytest.raises(TypeError, match=r"^apply_mask: num_keep fixes"):
        jax.jit(lambda k: jgather.apply_mask(T, T[..., 0] > 0, k))(2)
    with pytest.raises(TypeError, match=r"^random_masking: num_prefix fixes"):
        jax.jit(lambda p: jgather.random_masking(K, T, 0.5, num_prefix=p))(np.int32(1))


_C = jnp.ones((4, 2), jnp.complex64)
_COMPLEX_ORDER_CASES = [
    ("scatter_reduce", lambda s, i: jgather.scatter_reduce(s, 0, i[:, None] * 0, s, "amax")),
    ("scatter_reduce", lambda s, i: jgather.scatter_reduce(s, 0, i[:, None] * 0, s, "min")),
    ("scatter_max", lambda s, i: seg.scatter_max(s, i, 0, dim_size=3)),
    ("scatter_min", lambda s, i: seg.scatter_min(s, i, 0, dim_size=3)),
    ("scatter", lambda s, i: seg.scatter(s, i, 0, dim_size=3, reduce="max")),
    ("segment_coo", lambda s, i: seg.segment_coo(s, i, dim_size=3, reduce="min")),
    ("segment_max_coo", lambda s, i: seg.segment_max_coo(s, i, dim_size=3)),
    ("segment_min_coo", lambda s, i: seg.segment_min_coo(s, i, dim_size=3)),
    ("segment_csr", lambda s, i: seg.segment_csr(s, i[:3], reduce="max")),
    ("segment_max_csr", lambda s, i: seg.segment_max_csr(s, i[:3])),
    ("segment_min_csr", lambda s, i: seg.segment_min_csr(s, i[:3])),
]


@pytest.mark.parametrize(
    ("name", "call"),
    _COMPLEX_ORDER_CASES,
    ids=[f"{n}-{k}" for k, (n, _) in enumerate(_COMPLEX_ORDER_CASES)],
)
def test_complex_max_and_min_are_type_errors_at_trace_time(name, call):
    """Complex numbers have no order: torch raises for complex amax/amin and torch_scatter's
    max/min kernels take no complex dtype; jgather raises while tracing (under jit too)
    instead of ordering them lexicographically, and says what to reduce instead."""
    with pytest.raises(TypeError, match=rf"^{name}: reduce='\w+' needs ordered values") as info:
        jax.jit(call)(_C, jnp.array([0, 0, 2, 2]))
    assert "complex64" in str(info.value) and "jnp.abs" in str(info.value)
