"""jgather.segment against the NumPy re-statement of torch_scatter in reference.py.

Cases come from strategies.py.

Golden cases are torch_scatter's documented examples; differential tests draw cases with
hypothesis (src ranks 1-4, every dim, 1-D / leading / full-rank indices with broadcast axes,
empty segments, duplicates, dim_size and out=, int and float dtypes incl. bfloat16) and run each
function plain, under jax.jit and under jax.vmap. Every example compiles new programs, so the
counts are small for CI's 2-core budget (HYPOTHESIS_PROFILE=dev runs 5x more). Then: the facts
torch_scatter users trip on (sentinels, integer mean, NaN), gradients (check_grads, the argmax
rule, no NaN from empty segments or dropped entries), float32 accumulation, bad input,
checkify, retracing.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import checkify
from jax.test_util import check_grads
from reference import FLOATS, assert_matches, count_traces
from strategies import segment_scatter_cases, segment_sorted_cases

import jgather.segment as seg

_SCALE = 5 if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else 1


# --------------------------------------------------------------------------------------------
# Golden cases (torch_scatter's documentation).


def test_torch_scatter_docs_shapes():
    src = jnp.ones((10, 6, 64))
    index = jnp.array([0, 1, 0, 1, 2, 1])
    assert seg.scatter(src, index, dim=1, reduce="sum").shape == (10, 3, 64)
    indptr = jnp.array([0, 2, 5, 6]).reshape(1, -1)
    assert seg.segment_csr(src, indptr, reduce="sum").shape == (10, 3, 64)
    coo = jnp.array([0, 0, 1, 1, 1, 2]).reshape(1, -1)
    assert seg.segment_coo(src, coo, reduce="sum").shape == (10, 3, 64)


def test_scatter_max_worked_example():
    """torch_scatter README's scatter_max picture, worked by hand (no out: sentinel = 5)."""
    src = jnp.array([[2, 0, 1, 4, 3], [0, 2, 1, 3, 4]])
    index = jnp.array([[4, 5, 4, 2, 3]])
    out, argmax = seg.scatter_max(src, index, dim=-1)
    np.testing.assert_array_equal(out, [[0, 0, 4, 3, 2, 0], [0, 0, 3, 4, 1, 2]])
    np.testing.assert_array_equal(argmax, [[5, 5, 3, 4, 0, 1], [5, 5, 3, 4, 2, 1]])
    # With out=zeros, out wins the tie at segment 5 of row 0: value 0, arg the sentinel.
    out, argmax = seg.scatter_max(src, index, dim=-1, out=jnp.zeros((2, 6), src.dtype))
    np.testing.assert_array_equal(argmax, [[5, 5, 3, 4, 0, 5], [5, 5, 3, 4, 2, 1]])


# --------------------------------------------------------------------------------------------
# Differential tests.


def _variants(fn, src, index, dim, dim_size, out, **kw):
    """Plain (dim_size=None where out/index allow it), jit and vmap results of one call."""
    needed = int(index.max()) + 1 if index.size else 0
    infer = out is None and dim_size == needed  # let dim_size=None read index.max() + 1
    plain = fn(src, index, dim, out, None if infer else dim_size, **kw)
    jitted = jax.jit(lambda s, i, o: fn(s, i, dim, o, dim_size, **kw))(src, index, out)
    # vmap over a new leading axis of src (and out); dim counted from the end stays right.
    ndim = src.ndim
    vdim = dim - ndim if dim >= 0 else dim
    stack = lambda a: None if a is None else jnp.stack([a, a])
    vm = jax.vmap(lambda s, o: fn(s, index, vdim, o, dim_size, **kw))(stack(src), stack(out))
    first = jax.tree.map(lambda a: a[0], vm)
    return plain, jitted, first


@settings(max_examples=12 * _SCALE)
@given(segment_scatter_cases(), st.sampled_from(["sum", "add", "mean", "mul", "min", "max"]))
def test_scatter_matches_reference(case, reduce):
    src, index, dim, dim_size, out = case
    if reduce == "mul" and src.dtype.kind != "f" and src.dtype.name != "bfloat16":
        src = np.clip(src, -2, 2).astype(src.dtype)
    expected = ref.ts_scatter(src, index, dim, out, dim_size, reduce)
    fn = lambda s, i, d, o, n: seg.scatter(s, i, d, o, n, reduce)
    for got in _variants(fn, src, index, dim, dim_size, out):
        assert_matches(got, expected, err_msg=f"{reduce} dim={dim}")


@settings(max_examples=8 * _SCALE)
@given(segment_scatter_cases(), st.sampled_from(["max", "min"]))
def test_scatter_arg_matches_reference(case, reduce):
    src, index, dim, dim_size, out = case
    values, arg = ref.scatter_arg(src, index, dim, out, dim_size, reduce)
    fn = seg.scatter_max if reduce == "max" else seg.scatter_min
    for got_v, got_a in _variants(fn, src, index, dim, dim_size, out):
        assert_matches(got_v, values)
        np.testing.assert_array_equal(got_a, arg)


@settings(max_examples=4 * _SCALE)
@given(segment_scatter_cases(dtypes=FLOATS), st.booleans())
def test_std_and_logsumexp_match_reference(case, unbiased):
    src, index, dim, dim_size, out = case
    pos_out = None if out is None else np.abs(out)
    expected = ref.scatter_std(src, index, dim, pos_out, dim_size, unbiased)
    for got in _variants(seg.scatter_std, src, index, dim, dim_size, pos_out, unbiased=unbiased):
        assert_matches(got, expected)
    expected = ref.scatter_logsumexp(src, index, dim, out, dim_size)
    for got in _variants(seg.scatter_logsumexp, src, index, dim, dim_size, out):
        assert_matches(got, expected)


@settings(max_examples=6 * _SCALE)
@given(segment_scatter_cases(dtypes=FLOATS, allow_out=False))
def test_softmax_matches_reference(case):
    src, index, dim, dim_size, _ = case
    for log in (False, True):
        fn = seg.scatter_log_softmax if log else seg.scatter_softmax
        expected = ref.scatter_softmax(src, index, dim, dim_size, log=log)
        got = fn(src, index, dim, dim_size=dim_size)
        assert_matches(got, expected)
        got = jax.jit(lambda s, i: fn(s, i, dim, dim_size=dim_size))(src, index)  # noqa: B023
        assert_matches(got, expected)


@settings(max_examples=8 * _SCALE)
@given(segment_sorted_cases())
def test_segment_coo_and_csr_match_reference(case):
    src, index, reduce = case
    d = index.ndim - 1
    expected = ref.segment_coo(src, index, reduce=reduce)
    assert_matches(seg.segment_coo(src, index, reduce=reduce), expected)
    size = expected.shape[d]
    got = jax.jit(lambda s, i: seg.segment_coo(s, i, dim_size=size, reduce=reduce))(src, index)
    assert_matches(got, expected)
    if index.ndim == 1:  # the same segments as CSR pointers
        indptr = np.searchsorted(index, np.arange(size + 1), side="left").astype(np.int32)
        want = ref.segment_csr(src, indptr, reduce=reduce)
        got = seg.segment_csr(src, indptr, reduce=reduce)
        jitted = jax.jit(lambda s, p: seg.segment_csr(s, p, reduce=reduce))(src, indptr)
        if reduce in ("min", "max"):
            fn = seg.segment_max_csr if reduce == "max" else seg.segment_min_csr
            v, a = fn(src, indptr)
            assert_matches(v, want[0])
            np.testing.assert_array_equal(a, want[1])
            want = want[0]
        assert_matches(got, want)
        assert_matches(jitted, want)
        assert_matches(seg.gather_csr(expected, indptr), ref.gather_csr(expected, indptr))
    assert_matches(seg.gather_coo(expected, index), ref.gather_coo(expected, index))


def test_batched_indptr():
    src = jnp.arange(2 * 5 * 3, dtype=jnp.float32).reshape(2, 5, 3)
    indptr = jnp.array([[0, 2, 5], [0, 0, 5]])
    want = ref.segment_csr(np.asarray(src), np.asarray(indptr), reduce="sum")
    assert_matches(seg.segment_csr(src, indptr), want)


# --------------------------------------------------------------------------------------------
# The facts torch_scatter users ask about.


def test_empty_segments_and_sentinels():
    src = jnp.array([3.0, 1.0])
    index = jnp.array([0, 2])
    for reduce, want in [("sum", [3, 0, 1]), ("mean", [3, 0, 1]), ("mul", [3, 1, 1])]:
        assert_matches(seg.scatter(src, index, reduce=reduce), np.array(want, np.float32))
    values, arg = seg.scatter_max(src, index, dim_size=4)
    np.testing.assert_array_equal(values, [3, 0, 1, 0])
    np.testing.assert_array_equal(arg, [0, 2, 1, 2])  # sentinel = src.shape[dim] = 2
    np.testing.assert_array_equal(seg.scatter_logsumexp(src, index, dim_size=4)[1::2], [0, 0])
    np.testing.assert_array_equal(seg.scatter_std(src, index), [0, 0, 0])
    assert seg.scatter_sum(jnp.zeros((0, 3)), jnp.zeros((0,), jnp.int32), 0).shape == (0, 3)


def test_integer_mean_floors_and_nan_propagates():
    np.testing.assert_array_equal(
        seg.scatter_mean(jnp.array([-3, -4, 3, 4]), jnp.array([0, 0, 1, 1])), [-4, 3]
    )
    nan = float("nan")
    v, a = seg.scatter_max(jnp.array([1.0, nan, 5.0, nan]), jnp.array([0, 0, 0, 0]))
    assert np.isnan(v[0]) and a[0] == 1  # the first NaN wins (torch_scatter would skip NaN)
    v, a = seg.scatter_min(jnp.array([-jnp.inf, 2.0]), jnp.array([0, 0]))
    assert v[0] == -np.inf and a[0] == 0


def _c_mean(total, count):
    """C++'s integer division of torch_scatter's segment kernels: truncate towards zero."""
    q = abs(int(total)) // max(int(count), 1)
    return q if total >= 0 else -q


def test_integer_segment_means_truncate_as_torch_scatter_kernels():
    """segment_csr/segment_coo (and their _mean_ forms) divide in torch_scatter's C++ kernel,
    which truncates towards zero; scatter_mean divides with rounding_mode='floor'. With
    out=, segment_coo adds out to the sum without counting it (-4 + -1 + -2 = -7, / 2: -3)."""
    src = np.array([-1, -2, 5, 2, -7, 3, 0, -5, -4], np.int32)
    index = np.array([0, 0, 1, 1, 2, 2, 2, 4, 4])  # segment 3 empty
    indptr = np.array([0, 2, 4, 7, 7, 9])
    out = np.array([-4, 0, 1, 9, -1], np.int32)
    sums, counts = np.zeros(5, np.int64), np.zeros(5, np.int64)
    np.add.at(sums, index, src)
    np.add.at(counts, index, 1)
    want = [_c_mean(t, c) for t, c in zip(sums, counts, strict=True)]
    want_out = [_c_mean(t + o, c) for t, o, c in zip(sums, out, counts, strict=True)]
    assert want[:2] == [-1, 3] and want_out[0] == -3  # floor would give -2 and -4
    for got in (
        seg.segment_csr(src, indptr, reduce="mean"),
        seg.segment_mean_csr(src, indptr),
        seg.segment_coo(src, index, reduce="mean", dim_size=5),
        seg.segment_mean_coo(src, index, dim_size=5),
    ):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(seg.segment_mean_coo(src, index, out=out), want_out)
    floors = [t // max(c, 1) for t, c in zip(sums, counts, strict=True)]
    np.testing.assert_array_equal(seg.scatter_mean(src, index, dim_size=5), floors)


def test_out_is_the_initial_value_and_is_not_modified():
    out = jnp.array([10.0, 20.0])
    res = seg.scatter_sum(jnp.array([1.0, 2.0]), jnp.array([0, 0]), out=out)
    np.testing.assert_array_equal(res, [13, 20])
    np.testing.assert_array_equal(out, [10, 20])
    v, a = seg.scatter_max(jnp.array([1.0, 30.0]), jnp.array([0, 1]), out=out)
    np.testing.assert_array_equal(v, [10, 30])
    np.testing.assert_array_equal(a, [2, 1])  # out kept its place: the sentinel


def test_half_precision_sums_accumulate_in_float32():
    ones = jnp.ones((4096, 2), jnp.bfloat16)
    index = jnp.zeros((4096,), jnp.int32)
    # bfloat16 accumulation stalls at 256 (256 + 1 rounds to 256); float32 gives 4096.
    np.testing.assert_array_equal(
        seg.scatter_sum(ones, index, 0).astype(jnp.float32), [[4096, 4096]]
    )
    np.testing.assert_array_equal(seg.scatter_mean(ones, index, 0).astype(jnp.float32), [[1, 1]])
    assert seg.scatter_sum(ones, index, 0).dtype == jnp.bfloat16


def test_unsorted_concrete_index_raises_for_segment_coo():
    with pytest.raises(ValueError, match="sorted"):
        seg.segment_coo(jnp.ones(3), jnp.array([1, 0, 1]))


# --------------------------------------------------------------------------------------------
# Gradients.

_X = jnp.array([[0.3, -1.2], [2.1, 0.7], [-0.4, 1.5], [1.1, -0.8], [0.9, 0.2]])
_I = jnp.array([0, 2, 0, 2, 0])  # segment 1 (and 3) empty


@pytest.mark.parametrize(
    "fn",
    [
        lambda x: seg.scatter_sum(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_mean(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_mul(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_max(x, _I, 0, dim_size=4)[0],
        lambda x: seg.scatter_min(x, _I, 0, dim_size=4)[0],
        lambda x: seg.scatter_std(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_logsumexp(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_softmax(x, _I, 0, dim_size=4),
        lambda x: seg.scatter_log_softmax(x, _I, 0, dim_size=4),
        lambda x: seg.segment_csr(x, jnp.array([0, 2, 2, 5]), reduce="mean"),
        lambda x: seg.segment_coo(x, jnp.array([0, 0, 1, 1, 3]), reduce="max", dim_size=4),
        lambda x: seg.gather_coo(x, jnp.array([4, 0, 0])),
    ],
    ids=[
        "sum",
        "mean",
        "mul",
        "max",
        "min",
        "std",
        "logsumexp",
        "softmax",
        "log_softmax",
        "csr_mean",
        "coo_max",
        "gather_coo",
    ],
)
def test_gradients_check_grads(fn):
    check_grads(fn, (_X,), order=1, modes=["fwd", "rev"], atol=2e-2, rtol=2e-2, eps=1e-3)
    g = jax.grad(lambda x: jnp.sum(jnp.sin(fn(x))))(_X)
    assert np.isfinite(np.asarray(g)).all()


def test_mul_gradient_with_zeros_has_no_nan():
    x = jnp.array([0.0, 3.0, 2.0, 0.0, 0.0, 5.0])
    idx = jnp.array([0, 0, 0, 1, 1, 2])
    g = jax.grad(lambda x: jnp.sum(seg.scatter_mul(x, idx)))(x)
    np.testing.assert_allclose(g, [6, 0, 0, 0, 0, 1])


def test_mul_value_is_the_same_when_differentiated():
    """Under ``jax.jvp`` / ``jax.grad`` the value of a product is the plain forward one: a
    segment multiplying 0 by inf is NaN (torch_scatter's ``scatter_mul`` gives NaN too), not
    the 0 of the derivative rule's zero count."""
    src = jnp.array([0.0, jnp.inf, 2.0, 3.0])
    idx = jnp.array([0, 0, 1, 1])
    f = lambda s: seg.scatter_mul(s, idx, dim_size=2)
    value, _ = jax.jvp(f, (src,), (jnp.ones(4),))
    np.testing.assert_array_equal(np.asarray(value), np.asarray(f(src)))
    np.testing.assert_array_equal(np.asarray(value), [np.nan, 6.0])


def test_max_tie_gradient_goes_wholly_to_the_argmax():
    x = jnp.array([2.0, 5.0, 5.0, 1.0])
    g = jax.grad(lambda x: jnp.sum(seg.scatter_max(x, jnp.array([0, 0, 0, 1]))[0]))(x)
    np.testing.assert_array_equal(g, [0, 1, 0, 1])  # jax.ops.segment_max would give 0.5, 0.5


@pytest.mark.parametrize(
    "fn",
    [
        seg.scatter_sum,
        seg.scatter_mean,
        seg.scatter_std,
        seg.scatter_logsumexp,
        seg.scatter_softmax,
        seg.scatter_log_softmax,
        lambda s, i, d, dim_size, mode: seg.scatter_max(s, i, d, dim_size=dim_size, mode=mode)[0],
    ],
)
def test_no_nan_gradient_from_empty_segments_or_dropped_entries(fn):
    idx = jnp.array([0, 0, 7, 3])  # 7 is out of range for dim_size 5; 1, 2, 4 are empty
    x = jnp.array([1.0, 2.0, 30.0, -4.0])

    @jax.jit
    def loss(x):
        return jnp.sum(jnp.where(jnp.isfinite(y := fn(x, idx, 0, dim_size=5, mode="drop")), y, 0))

    g = jax.grad(loss)(x)
    assert np.isfinite(np.asarray(g)).all()
    assert g[2] == 0


# --------------------------------------------------------------------------------------------
# Bad input: exception type and key words.

_S = jnp.ones((4, 3))
_IDX = jnp.array([0, 1, 0, 2])

BAD = [
    (
        "index rank > src",
        lambda: seg.scatter_sum(_S, jnp.zeros((4, 3, 1), jnp.int32), 0),
        ValueError,
        "at most",
    ),
    ("not broadcastable", lambda: seg.scatter_sum(_S, _IDX), ValueError, "dim=0"),
    (
        "not broadcastable 2-D",
        lambda: seg.scatter_sum(_S, jnp.zeros((4, 2), jnp.int32), 0),
        ValueError,
        "broadcast",
    ),
    (
        "unknown reduce",
        lambda: seg.scatter(_S, _IDX, 0, reduce="prod"),
        ValueError,
        "unknown reduce",
    ),
    (
        "unknown reduce coo",
        lambda: seg.segment_coo(_S, _IDX, reduce="mul"),
        ValueError,
        "unknown reduce",
    ),
    (
        "int softmax",
        lambda: seg.scatter_softmax(jnp.ones(4, jnp.int32), _IDX),
        ValueError,
        "floating",
    ),
    (
        "int log_softmax",
        lambda: seg.scatter_log_softmax(jnp.ones(4, jnp.int32), _IDX),
        ValueError,
        "floating",
    ),
    (
        "int logsumexp",
        lambda: seg.scatter_logsumexp(jnp.ones(4, jnp.int32), _IDX),
        ValueError,
        "floating",
    ),
    ("int std", lambda: seg.scatter_std(jnp.ones(4, jnp.int32), _IDX), ValueError, "floating"),
    ("dim out of range", lambda: seg.scatter_sum(_S, _IDX, 2), IndexError, "out of range"),
    ("dim not int", lambda: seg.scatter_sum(_S, _IDX, 0.0), TypeError, "dim"),
    (
        "dim_size too small",
        lambda: seg.scatter_sum(_S, _IDX, 0, dim_size=2),
        IndexError,
        "dim_size",
    ),
    ("negative index", lambda: seg.scatter_sum(_S, -_IDX - 1, 0), IndexError, "out of range"),
    ("dim_size not int", lambda: seg.scatter_sum(_S, _IDX, 0, dim_size=3.0), TypeError, "dim_size"),
    ("float index", lambda: seg.scatter_sum(_S, jnp.zeros(4), 0), TypeError, "integer"),
    ("bool src", lambda: seg.scatter_sum(jnp.ones(4, bool), _IDX), TypeError, "bool"),
    ("0-d src", lambda: seg.scatter_sum(jnp.float32(1), jnp.int32(0)), ValueError, "0-dimensional"),
    (
        "out dtype",
        lambda: seg.scatter_sum(_S, _IDX, 0, out=jnp.zeros((3, 3), jnp.int32)),
        TypeError,
        "dtype",
    ),
    ("out shape", lambda: seg.scatter_sum(_S, _IDX, 0, out=jnp.zeros((3, 2))), ValueError, "shape"),
    (
        "out vs dim_size",
        lambda: seg.scatter_sum(_S, _IDX, 0, out=jnp.zeros((3, 3)), dim_size=4),
        ValueError,
        "dim_size",
    ),
    ("unknown mode", lambda: seg.scatter_sum(_S, _IDX, 0, mode="fill"), ValueError, "mode"),
    (
        "traced without dim_size",
        lambda: jax.jit(lambda i: seg.scatter_sum(_S, i, 0))(_IDX),
        ValueError,
        "dim_size",
    ),
    (
        "vmap without dim_size",
        lambda: jax.vmap(lambda i: seg.scatter_softmax(jnp.ones(4), i))(_IDX[None]),
        ValueError,
        "dim_size",
    ),
    (
        "csr decreasing",
        lambda: seg.segment_csr(_S, jnp.array([0, 3, 2])),
        ValueError,
        "non-decreasing",
    ),
    ("csr past end", lambda: seg.segment_csr(_S, jnp.array([0, 3, 9])), IndexError, "[0, 4]"),
    (
        "csr out shape",
        lambda: seg.segment_csr(_S, jnp.array([0, 3, 4]), out=jnp.zeros((3, 3))),
        ValueError,
        "segments",
    ),
    (
        "gather_csr traced",
        lambda: jax.jit(lambda p: seg.gather_csr(_S, p))(jnp.array([0, 1, 2, 3, 4])),
        ValueError,
        "out=",
    ),
    ("gather_coo range", lambda: seg.gather_coo(_S, jnp.array([0, 4])), IndexError, "out of range"),
    ("coo 0-d index", lambda: seg.segment_coo(_S, jnp.int32(0)), ValueError, "0-dimensional"),
]


@pytest.mark.parametrize("name,call,exc,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input(name, call, exc, words):
    with pytest.raises(exc) as info:
        call()
    assert words in str(info.value), str(info.value)
    assert str(info.value).split(":")[0].strip() != ""


# --------------------------------------------------------------------------------------------
# Modes, checkify, retracing, the lowering.


def test_modes_under_jit_and_checkify():
    src, idx = jnp.array([1.0, 2.0, 4.0]), jnp.array([0, 5, 1])
    f = jax.jit(lambda s, i: seg.scatter_sum(s, i, dim_size=2))
    np.testing.assert_array_equal(f(src, idx), [1, 4])  # dropped
    clip = seg.scatter_sum(src, idx, dim_size=2, mode="clip")
    np.testing.assert_array_equal(clip, [1, 6])
    err, _ = checkify.checkify(f, errors=checkify.index_checks)(src, idx)
    assert err.get() is not None and "out-of-bounds" in err.get()
    err, _ = checkify.checkify(f, errors=checkify.index_checks)(src, jnp.array([0, 1, 1]))
    assert err.get() is None
    for g in (
        lambda s, i: seg.scatter_softmax(s, i, dim_size=2),
        lambda s, i: seg.scatter_max(s, i, dim_size=2),
        lambda s, i: seg.segment_coo(s, jnp.sort(i), dim_size=2),
        lambda s, i: seg.gather_coo(s, i),
    ):
        err, _ = checkify.checkify(jax.jit(g), errors=checkify.index_checks)(src, idx)
        assert err.get() is not None


def test_no_retrace_on_second_call():
    src, idx = jnp.ones((6, 2)), jnp.array([0, 1, 1, 2, 2, 2])
    seg.scatter_max(src, idx, 0, dim_size=3)
    src2 = src + 1
    with count_traces() as traces:
        seg.scatter_max(src2, idx, 0, dim_size=3)
        seg.scatter_max(src, idx, 0, dim_size=3)
    assert traces == []


def test_sorted_path_passes_indices_are_sorted():
    jaxpr = jax.make_jaxpr(lambda s, i: seg.segment_coo(s, i, dim_size=3))(
        jnp.ones((4, 2)), jnp.array([0, 0, 1, 2])
    )
    assert "indices_are_sorted=True" in str(jaxpr)
    jaxpr = jax.make_jaxpr(lambda s, i: seg.scatter_sum(s, i, 0, dim_size=3))(
        jnp.ones((4, 2)), jnp.array([0, 0, 1, 2])
    )
    assert "indices_are_sorted=False" in str(jaxpr)


@pytest.mark.parametrize("mode", ["drop", "clip", "promise_in_bounds"])
def test_every_mode_runs_every_function(mode):
    src, idx = jnp.array([[1.0], [2.0], [4.0], [8.0]]), jnp.array([0, 1, 1, 2])
    kw = dict(dim_size=3, mode=mode)
    for fn in (
        seg.scatter_sum,
        seg.scatter_mean,
        seg.scatter_mul,
        seg.scatter_std,
        seg.scatter_logsumexp,
    ):
        assert fn(src, idx, 0, **kw).shape == (3, 1)
    assert seg.scatter_max(src, idx, 0, **kw)[1].shape == (3, 1)
    assert seg.scatter_softmax(src, idx, 0, **kw).shape == (4, 1)
    np.testing.assert_allclose(
        seg.scatter_softmax(src, idx, 0, **kw)[:, 0], [1, 0.11920292, 0.88079708, 1], rtol=1e-6
    )
    assert seg.segment_coo(src, idx, **kw).shape == (3, 1)
    np.testing.assert_array_equal(seg.gather_coo(src, idx, mode=mode), src[idx])


def test_dropped_entries_in_gathers_and_softmax():
    src = jnp.array([10.0, 20.0])
    np.testing.assert_array_equal(
        seg.gather_coo(src, jnp.array([1, 5, 0]), mode="drop"), [20, 0, 10]
    )
    np.testing.assert_array_equal(
        seg.gather_coo(src, jnp.array([1, 5, 0]), mode="clip"), [20, 20, 10]
    )
    soft = seg.scatter_softmax(
        jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 9, 0]), dim_size=2, mode="drop"
    )
    assert soft[1] == 0 and np.isclose(soft[0] + soft[2], 1)
    log = seg.scatter_log_softmax(
        jnp.array([1.0, 2.0, 3.0]), jnp.array([0, 9, 0]), dim_size=2, mode="drop"
    )
    assert log[1] == -np.inf
    np.testing.assert_array_equal(seg.gather_csr(src, jnp.array([1, 2, 4])), [0, 10, 20, 20])


def test_graph_attention_notebook_is_built_from_its_source():
    """notebooks/05_graph_attention.ipynb is generated from its percent-format source."""
    import importlib.util
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    folder = Path(__file__).resolve().parents[1] / "notebooks"
    spec = importlib.util.spec_from_file_location("_build_percent", folder / "_build_percent.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    fresh = build.read_percent((folder / "05_graph_attention.py").read_text())
    committed = nbformat.read(folder / "05_graph_attention.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in fresh.cells] == [
        (c.cell_type, c.source) for c in committed.cells
    ], "rebuild it: python notebooks/_build_percent.py 05_graph_attention.py --execute"


def test_vmap_over_batched_index_and_grad_under_vmap():
    rng = np.random.default_rng(1)
    src = jnp.asarray(rng.normal(size=(3, 7, 2)).astype(np.float32))
    idx = jnp.asarray(rng.integers(0, 4, size=(3, 7)).astype(np.int32))
    got_v, got_a = jax.vmap(lambda s, i: seg.scatter_max(s, i, 0, dim_size=4))(src, idx)
    soft = jax.vmap(lambda s, i: seg.scatter_softmax(s, i, 0, dim_size=4))(src, idx)
    for b in range(3):
        v, a = ref.scatter_arg(np.asarray(src[b]), np.asarray(idx[b]), 0, None, 4, "max")
        assert_matches(got_v[b], v)
        np.testing.assert_array_equal(got_a[b], a)
        want = ref.scatter_softmax(np.asarray(src[b]), np.asarray(idx[b]), 0, 4)
        assert_matches(soft[b], want)
    grads = jax.vmap(jax.grad(lambda s, i: seg.scatter_logsumexp(s, i, 0, dim_size=4).sum()))(
        src, idx
    )
    # d/dx sum_segments logsumexp = the segment softmax of each entry
    np.testing.assert_allclose(grads, soft, rtol=1e-5, atol=1e-6)


def test_min_tie_gradient_and_out_gradient():
    x = jnp.array([1.0, 1.0, 3.0])
    g = jax.grad(lambda x: seg.scatter_min(x, jnp.array([0, 0, 0]))[0].sum())(x)
    np.testing.assert_array_equal(g, [1, 0, 0])
    # out wins segment 0 (5 > 1, 2) and loses segment 1 (0 < 4): gradient to out only at 0.
    out = jnp.array([5.0, 0.0])
    g = jax.grad(
        lambda o: seg.scatter_max(jnp.array([1.0, 2.0, 4.0]), jnp.array([0, 0, 1]), out=o)[0].sum()
    )(out)
    np.testing.assert_array_equal(g, [1, 0])
