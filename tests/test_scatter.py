"""scatter, scatter_add and scatter_reduce: golden cases and differential tests.

Golden cases are the examples of the torch documentation with the outputs it states. The
differential tests draw random cases with hypothesis (ranks 0-4, sizes 0-6, every dim including
negative ones, every dtype, duplicate indices, index smaller than input and src off dim, src
larger than index) and compare jgather with the NumPy loop reference in reference.py (cases from strategies.py): plain,
under jax.jit and under jax.vmap. Retracing and x64 on/off are checked at the end.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import DTYPES, REDUCES, assert_matches, count_traces, np_dtype, scatter_targets
from reference import scatter as ref_scatter
from reference import scatter_add as ref_scatter_add
from reference import scatter_reduce as ref_scatter_reduce
from strategies import batched_scatter_cases, scatter_cases

import jgather

# --------------------------------------------------------------------------------------------
# Golden cases (torch documentation).


def test_scatter_torch_docs_examples():
    """torch.Tensor.scatter_ docs: src = arange(1, 11).reshape(2, 5) into zeros(3, 5)."""
    src = jnp.arange(1, 11).reshape(2, 5)
    zeros = jnp.zeros((3, 5), dtype=src.dtype)
    out = jgather.scatter(zeros, 0, jnp.array([[0, 1, 2, 0]]), src)
    expected = [[1, 0, 0, 4, 0], [0, 2, 0, 0, 0], [0, 0, 3, 0, 0]]
    assert_matches(out, np.array(expected, dtype=src.dtype))
    out = jgather.scatter(zeros, 1, jnp.array([[0, 1, 2], [0, 1, 4]]), src)
    expected = [[1, 2, 3, 0, 0], [6, 7, 0, 0, 8], [0, 0, 0, 0, 0]]
    assert_matches(out, np.array(expected, dtype=src.dtype))
    # The input is not modified: JAX arrays are immutable, scatter returns a new array.
    np.testing.assert_array_equal(zeros, np.zeros((3, 5)))


def test_scatter_torch_docs_scalar_reduce_examples():
    """torch docs: full((2, 4), 2.).scatter_(1, [[2], [3]], 1.23, reduce='multiply' / 'add')."""
    twos = jnp.full((2, 4), 2.0, dtype=jnp.float32)
    index = jnp.array([[2], [3]])
    out = jgather.scatter(twos, 1, index, 1.23, reduce="multiply")
    expected = np.array([[2.0, 2.0, 2.46, 2.0], [2.0, 2.0, 2.0, 2.46]], np.float32)
    assert_matches(out, expected)
    out = jgather.scatter(twos, 1, index, 1.23, reduce="add")
    expected = np.array([[2.0, 2.0, 3.23, 2.0], [2.0, 2.0, 2.0, 3.23]], np.float32)
    assert_matches(out, expected)


def test_scatter_add_torch_docs_examples():
    """torch.Tensor.scatter_add_ docs: ones(2, 5) into zeros(3, 5), duplicates accumulate."""
    src = jnp.ones((2, 5), dtype=jnp.float32)
    zeros = jnp.zeros((3, 5), dtype=jnp.float32)
    out = jgather.scatter_add(zeros, 0, jnp.array([[0, 1, 2, 0, 0]]), src)
    expected = [[1, 0, 0, 1, 1], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0]]
    assert_matches(out, np.array(expected, np.float32), exact=True)
    out = jgather.scatter_add(zeros, 0, jnp.array([[0, 1, 2, 0, 0], [0, 1, 2, 2, 2]]), src)
    expected = [[2, 0, 0, 1, 1], [0, 2, 0, 0, 0], [0, 0, 2, 1, 1]]
    assert_matches(out, np.array(expected, np.float32), exact=True)


def test_scatter_reduce_torch_docs_examples():
    """torch.Tensor.scatter_reduce_ docs: sum and amax, with and without include_self."""
    src = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    index = jnp.array([0, 1, 0, 1, 2, 1])
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    f32 = lambda v: np.array(v, np.float32)
    assert_matches(jgather.scatter_reduce(x, 0, index, src, "sum"), f32([5, 14, 8, 4]), exact=True)
    out = jgather.scatter_reduce(x, 0, index, src, "sum", include_self=False)
    assert_matches(out, f32([4, 12, 5, 4]), exact=True)
    x2 = jnp.array([5.0, 4.0, 3.0, 2.0])
    assert_matches(jgather.scatter_reduce(x2, 0, index, src, "amax"), f32([5, 6, 5, 2]), exact=True)
    out = jgather.scatter_reduce(x2, 0, index, src, "amax", include_self=False)
    assert_matches(out, f32([3, 6, 5, 2]), exact=True)


def test_scatter_reduce_edge_values_follow_torch():
    """Facts measured with torch 2.14 (CPU), each stated next to its call."""
    ints = lambda v: np.array(v, np.int32)  # jnp.array of Python ints is int32 (x64 off)
    # Integer mean floors (rounds toward -inf): (0 - 3 - 4) / 3 -> -3, (0 + 3 + 4) / 3 -> 2.
    x = jnp.array([0, 0])
    index, src = jnp.array([0, 0, 1, 1]), jnp.array([-3, -4, 3, 4])
    assert_matches(jgather.scatter_reduce(x, 0, index, src, "mean"), ints([-3, 2]))
    # Without self: -7 / 2 -> -4, 7 / 2 -> 3; an untouched position keeps its input.
    out = jgather.scatter_reduce(jnp.array([0, 0, 9]), 0, index, src, "mean", include_self=False)
    assert_matches(out, ints([-4, 3, 9]))
    # Float mean without self: (3 + 4) / 2 at 0; 2 and 5 untouched.
    out = jgather.scatter_reduce(
        jnp.array([1.0, 2.0, 5.0]),
        0,
        jnp.array([0, 0]),
        jnp.array([3.0, 4.0]),
        "mean",
        include_self=False,
    )
    assert_matches(out, np.array([3.5, 2.0, 5.0], np.float32), exact=True)
    # amax/amin propagate NaN (from src or from self) and keep infinities.
    nan, inf = float("nan"), float("inf")
    out = jgather.scatter_reduce(
        jnp.array([1.0, 2.0]), 0, jnp.array([0, 0, 1]), jnp.array([nan, 4.0, inf]), "amax"
    )
    assert_matches(out, np.array([nan, inf], np.float32), exact=True)
    out = jgather.scatter_reduce(
        jnp.array([nan, 2.0]), 0, jnp.array([0, 0, 1]), jnp.array([3.0, 4.0, -inf]), "amin"
    )
    assert_matches(out, np.array([nan, -inf], np.float32), exact=True)
    # ... but not the NaN of self when include_self=False.
    out = jgather.scatter_reduce(
        jnp.array([nan, 2.0]),
        0,
        jnp.array([0, 0, 1]),
        jnp.array([3.0, 4.0, -inf]),
        "amin",
        include_self=False,
    )
    assert_matches(out, np.array([3.0, -inf], np.float32), exact=True)
    # prod without self and amax without self on ints: [3 * -4, 5], 9 untouched.
    out = jgather.scatter_reduce(
        jnp.array([2, 3, 9]),
        0,
        jnp.array([0, 0, 1]),
        jnp.array([3, -4, 5]),
        "prod",
        include_self=False,
    )
    assert_matches(out, ints([-12, 5, 9]))
    out = jgather.scatter_reduce(
        jnp.array([2, 3, 9]),
        0,
        jnp.array([0, 0, 1]),
        jnp.array([3, -4, -5]),
        "amax",
        include_self=False,
    )
    assert_matches(out, ints([3, -5, 9]))
    # Integer overflow wraps as in torch: int8 100 + 100 + 100 -> 44; uint8 200 + 100 + 100 -> 144.
    out = jgather.scatter_add(
        jnp.array([100, 0], jnp.int8), 0, jnp.array([0, 0]), jnp.array([100, 100], jnp.int8)
    )
    assert_matches(out, np.array([44, 0], np.int8))
    out = jgather.scatter_add(
        jnp.array([200, 0], jnp.uint8), 0, jnp.array([0, 0]), jnp.array([100, 100], jnp.uint8)
    )
    assert_matches(out, np.array([144, 0], np.uint8))
    # bool adds as "or": False + True + True -> True.
    out = jgather.scatter_add(
        jnp.array([False, False]), 0, jnp.array([1, 1]), jnp.array([True, True])
    )
    assert_matches(out, np.array([False, True]))


def test_scatter_zero_dim_empty_and_src_larger_than_index():
    """0-d operands work; an empty index returns the input unchanged; extra src is ignored."""
    one = jnp.float32(1.0)
    assert_matches(jgather.scatter(one, 0, jnp.array(0), jnp.float32(5.0)), np.float32(5.0))
    assert_matches(jgather.scatter_add(one, 0, jnp.array(0), jnp.float32(5.0)), np.float32(6.0))
    out = jgather.scatter_reduce(jnp.float32(2.0), 0, jnp.array(0), jnp.float32(3.0), "amax")
    assert_matches(out, np.float32(3.0))
    # torch pairs 0-d and 1-D operands (a 0-d tensor acts as shape [1]), measured with torch:
    # scatter(tensor(0.), 0, [0, 0], [5., 6.]) -> 6. (last wins); scatter_add(zeros(3), 0,
    # tensor(2), [5., 6.]) -> [0, 0, 5]; scatter_reduce(tensor(1.), 0, [0, 0], [5., 6.], 'sum')
    # -> 12.
    zero, two = jnp.float32(0.0), jnp.array(2)
    pair = jnp.array([5.0, 6.0])
    assert_matches(jgather.scatter(zero, 0, jnp.array([0, 0]), pair), np.float32(6.0))
    assert_matches(jgather.scatter_add(jnp.zeros(3), 0, two, pair), np.array([0, 0, 5], np.float32))
    out = jgather.scatter_reduce(one, 0, jnp.array([0, 0]), pair, "sum")
    assert_matches(out, np.float32(12.0))
    x = jnp.arange(6.0).reshape(3, 2)
    empty = jnp.zeros((3, 0), jnp.int32)
    assert_matches(jgather.scatter(x, 1, empty, jnp.ones((3, 3))), np.asarray(x))
    assert_matches(jgather.scatter_add(x, 1, empty, jnp.ones((3, 3))), np.asarray(x))
    for reduce in REDUCES:
        out = jgather.scatter_reduce(x, 1, empty, jnp.ones((3, 3)), reduce, include_self=False)
        assert_matches(out, np.asarray(x))
    # torch.scatter_reduce(zeros(2, 2), 1, [[1]], ones(3, 3), 'sum') -> [[0, 1], [0, 0]].
    out = jgather.scatter_reduce(jnp.zeros((2, 2)), 1, jnp.array([[1]]), jnp.ones((3, 3)), "sum")
    assert_matches(out, np.array([[0.0, 1.0], [0.0, 0.0]], np.float32), exact=True)
    # The index may be longer than input along dim: [[1, 1, 1, 1]] adds 4 ones at [0, 1].
    out = jgather.scatter_reduce(
        jnp.zeros((2, 2)), 1, jnp.array([[1, 1, 1, 1]]), jnp.ones((3, 4)), "sum"
    )
    assert_matches(out, np.array([[0.0, 4.0], [0.0, 0.0]], np.float32), exact=True)


def test_scatter_duplicates_last_along_dim_wins():
    """torch leaves duplicate-target scatter undefined; jgather documents that the last writer
    along ``dim`` (largest position in ``index`` along ``dim``) wins, on every backend."""
    x = jnp.zeros((2, 4), jnp.float32)
    index = jnp.array([[1, 1, 1], [3, 0, 3]])
    src = jnp.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]])
    out = np.asarray(jgather.scatter(x, 1, index, src))
    np.testing.assert_array_equal(out, [[0.0, 30.0, 0.0, 0.0], [50.0, 0.0, 0.0, 60.0]])
    # Along dim 0: rows 0, 1 and 2 of the index all write row 1 of column 0; row 2 wins.
    out = jgather.scatter(
        jnp.zeros((2, 2)), 0, jnp.array([[1, 0], [1, 0], [1, 1]]), jnp.arange(6.0).reshape(3, 2)
    )
    np.testing.assert_array_equal(out, [[0.0, 3.0], [4.0, 5.0]])
    jitted = jax.jit(lambda a, i, s: jgather.scatter(a, 0, i, s))
    out = jitted(
        jnp.zeros((2, 2)), jnp.array([[1, 0], [1, 0], [1, 1]]), jnp.arange(6.0).reshape(3, 2)
    )
    np.testing.assert_array_equal(out, [[0.0, 3.0], [4.0, 5.0]])


# --------------------------------------------------------------------------------------------
# Random cases.


def _check_scatter_set(out, x, dim, index, src):
    """Untouched positions keep x; a position written once holds its src value; a position
    written several times holds one of its src values (torch: undefined which) -- and, as
    jgather documents, the last one along dim."""
    out = np.asarray(out)
    expected = ref_scatter(x, dim, index, src)
    # jgather documents "last writer along dim wins", which is the reference's row-major order.
    assert_matches(out, expected, exact=True)
    targets = scatter_targets(x.shape, dim, index)
    flat_src = src.reshape(1) if src.ndim == 0 else src
    for pos in np.ndindex(*x.shape):
        writers = targets.get(pos, [])
        if len(writers) <= 1:
            assert out[pos] == expected[pos], (pos, out[pos], expected[pos])
        else:
            candidates = [flat_src[w if index.ndim else (0,)] for w in writers]
            assert out[pos] in candidates, (pos, out[pos], candidates)


@settings(max_examples=20)
@given(scatter_cases())
def test_scatter_matches_reference(case):
    x, dim, index, src = case
    out = jgather.scatter(jnp.asarray(x), dim, jnp.asarray(index), jnp.asarray(src))
    _check_scatter_set(out, x, dim, index, src)
    jitted = jax.jit(lambda a, i, s: jgather.scatter(a, dim, i, s))
    _check_scatter_set(
        jitted(jnp.asarray(x), jnp.asarray(index), jnp.asarray(src)), x, dim, index, src
    )


@settings(max_examples=20)
@given(scatter_cases(lo=-2, hi=2), st.sampled_from(["add", "multiply"]))
def test_scatter_with_reduce_matches_reference(case, reduce):
    """reduce='add' / 'multiply' (values in [-2, 2] so products stay exact in bfloat16)."""
    x, dim, index, src = case
    expected = ref_scatter(x, dim, index, src, reduce=reduce)
    out = jgather.scatter(jnp.asarray(x), dim, jnp.asarray(index), jnp.asarray(src), reduce=reduce)
    assert_matches(out, expected)
    jitted = jax.jit(lambda a, i, s: jgather.scatter(a, dim, i, s, reduce=reduce))
    assert_matches(jitted(jnp.asarray(x), jnp.asarray(index), jnp.asarray(src)), expected)


_SCALARS = {"bool": True, "uint8": 3, "int8": -3, "int32": 7, "float32": 1.5}


@settings(max_examples=15)
@given(
    scatter_cases(max_rank=3, dtypes=(*_SCALARS, "float16", "bfloat16")),
    st.sampled_from([None, "add", "multiply"]),
)
def test_scatter_scalar_src_matches_reference(case, reduce):
    """A Python scalar src fills every indexed position (cast to input's dtype, as torch)."""
    x, dim, index, _ = case
    value = _SCALARS.get(x.dtype.name, 0.5)
    expected = ref_scatter(x, dim, index, value, reduce=reduce)
    out = jgather.scatter(jnp.asarray(x), dim, jnp.asarray(index), value, reduce=reduce)
    assert_matches(out, expected)
    jitted = jax.jit(lambda a, i: jgather.scatter(a, dim, i, value, reduce=reduce))
    assert_matches(jitted(jnp.asarray(x), jnp.asarray(index)), expected)


@settings(max_examples=25)
@given(scatter_cases())
def test_scatter_add_matches_reference(case):
    x, dim, index, src = case
    expected = ref_scatter_add(x, dim, index, src)
    out = jgather.scatter_add(jnp.asarray(x), dim, jnp.asarray(index), jnp.asarray(src))
    assert_matches(out, expected, exact=True)
    jitted = jax.jit(lambda a, i, s: jgather.scatter_add(a, dim, i, s))
    out = jitted(jnp.asarray(x), jnp.asarray(index), jnp.asarray(src))
    assert_matches(out, expected, exact=True)


@pytest.mark.parametrize("reduce", REDUCES)
@settings(max_examples=12)
@given(case=scatter_cases(lo=-3, hi=3), include_self=st.booleans())
def test_scatter_reduce_matches_reference(reduce, case, include_self):
    """Every reduction with and without self (values in [-3, 3]: sums and products exact)."""
    x, dim, index, src = case
    if reduce == "mean" and x.dtype == np.bool_:
        x, src = x.astype(np.int8), src.astype(np.int8)  # torch has no bool mean
    if reduce == "prod" and x.dtype.name in ("float16", "bfloat16"):
        x, src = np.clip(x, -2, 2), np.clip(src, -2, 2)  # 2**7 is exact in bfloat16
    expected = ref_scatter_reduce(x, dim, index, src, reduce, include_self=include_self)
    args = (jnp.asarray(x), jnp.asarray(index), jnp.asarray(src))
    out = jgather.scatter_reduce(args[0], dim, args[1], args[2], reduce, include_self=include_self)
    assert_matches(out, expected)
    jitted = jax.jit(
        lambda a, i, s: jgather.scatter_reduce(a, dim, i, s, reduce, include_self=include_self)
    )
    assert_matches(jitted(*args), expected)


@settings(max_examples=12)
@given(batched_scatter_cases(), st.sampled_from(REDUCES), st.booleans())
def test_scatters_under_vmap_match_reference(case, reduce, include_self):
    xs, dim, indices, srcs = case
    if reduce == "mean" and xs.dtype == np.bool_:
        xs, srcs = xs.astype(np.int8), srcs.astype(np.int8)
    if reduce == "prod" and xs.dtype.name in ("float16", "bfloat16"):
        xs, srcs = np.clip(xs, -2, 2), np.clip(srcs, -2, 2)
    args = (jnp.asarray(xs), jnp.asarray(indices), jnp.asarray(srcs))
    samples = list(zip(xs, indices, srcs, strict=True))
    expected = np.stack([ref_scatter_add(x, dim, i, s) for x, i, s in samples])
    out = jax.vmap(lambda a, i, s: jgather.scatter_add(a, dim, i, s))(*args)
    assert_matches(out, expected, exact=True)
    expected = np.stack(
        [ref_scatter_reduce(x, dim, i, s, reduce, include_self) for x, i, s in samples]
    )
    out = jax.vmap(
        lambda a, i, s: jgather.scatter_reduce(a, dim, i, s, reduce, include_self=include_self)
    )(*args)
    assert_matches(out, expected)
    out = jax.vmap(lambda a, i, s: jgather.scatter(a, dim, i, s))(*args)
    for k in range(2):
        _check_scatter_set(out[k], xs[k], dim, indices[k], srcs[k])
    # Only the input batched (index and src shared): in_axes=(0, None, None).
    out = jax.vmap(lambda a: jgather.scatter_add(a, dim, args[1][0], args[2][0]))(args[0])
    expected = np.stack([ref_scatter_add(x, dim, indices[0], srcs[0]) for x in xs])
    assert_matches(out, expected, exact=True)


# --------------------------------------------------------------------------------------------
# Transforms: no retrace, x64.


@pytest.mark.parametrize(
    "call",
    [
        lambda x, i, s: jgather.scatter(x, 1, i, s),
        lambda x, i, s: jgather.scatter(x, 1, i, 2.0, reduce="multiply"),
        lambda x, i, s: jgather.scatter_add(x, -1, i, s),
        lambda x, i, s: jgather.scatter_add(x, 1, i, s, mode="drop"),
        lambda x, i, s: jgather.scatter_reduce(x, 1, i, s, "mean", include_self=False),
        lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "amax"),
    ],
    ids=["scatter", "scatter-scalar", "scatter_add", "scatter_add-drop", "mean", "amax"],
)
def test_second_call_with_same_shapes_does_not_retrace(call):
    x = jnp.arange(12.0).reshape(3, 4)
    i = jnp.array([[0, 2, 1], [2, 2, 0], [1, 1, 1]], dtype=jnp.int32)
    s = jnp.ones((3, 3), jnp.float32)
    x2, i2, s2 = x + 1.0, i[::-1], s * 2.0  # built before counting
    first = call(x, i, s)
    with count_traces() as traced:
        second = call(x, i, s)
        call(x2, i2, s2)
    assert traced == [], f"retraced on a second call with the same shapes: {traced}"
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_scatter_family_with_x64_on_and_off(x64, index_dtype):
    """int32 and int64 indices give the same answers with x64 on and off (conftest's x64
    fixture restores the config and checks it)."""
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    index = np.array([[0, 3, 3], [1, 1, 0], [2, 0, 2]]).astype(index_dtype)
    src = np.arange(1, 10, dtype=np.float32).reshape(3, 3)
    args = (jnp.asarray(x), jnp.asarray(index), jnp.asarray(src))
    out = jgather.scatter_add(args[0], 1, args[1], args[2])
    assert_matches(out, ref_scatter_add(x, 1, index, src), exact=True)
    for reduce in REDUCES:
        out = jgather.scatter_reduce(args[0], 1, args[1], args[2], reduce, include_self=False)
        assert_matches(out, ref_scatter_reduce(x, 1, index, src, reduce, include_self=False))
    unique = np.array([[0, 3, 1], [1, 2, 0], [2, 0, 3]]).astype(index_dtype)
    out = jax.jit(lambda a, i, s: jgather.scatter(a, 1, i, s))(x, unique, src)
    assert_matches(out, ref_scatter(x, 1, unique, src), exact=True)
    if x64:
        x_i64 = x.astype(np.int64)
        src_i64 = src.astype(np.int64)
        out = jgather.scatter_reduce(
            jnp.asarray(x_i64), 1, jnp.asarray(index), jnp.asarray(src_i64), "mean"
        )
        assert_matches(out, ref_scatter_reduce(x_i64, 1, index, src_i64, "mean"))


@pytest.mark.parametrize("index_dtype", ["int8", "uint8", "int16"])
def test_narrow_index_dtypes_give_the_int32_result(index_dtype):
    """A documented extension (torch takes only int32/int64 indices): narrower integer indices
    work and give the int32 result, eagerly and under jit."""
    x = np.arange(2 * 201, dtype=np.float32).reshape(2, 201)
    wide = np.array([[0, 100, 127, 100], [5, 127, 1, 5]], dtype=np.int32)
    if index_dtype == "uint8":
        wide[1, 1] = 200
    narrow = wide.astype(index_dtype)
    src = np.arange(1, 9, dtype=np.float32).reshape(2, 4)
    for run in (lambda f: f, jax.jit):
        f = run(lambda a, i, s: jgather.scatter_add(a, 1, i, s))
        assert_matches(f(x, narrow, src), ref_scatter_add(x, 1, wide, src), exact=True)
        f = run(lambda a, i, s: jgather.scatter_reduce(a, 1, i, s, "amin", include_self=False))
        assert_matches(
            f(x, narrow, src), ref_scatter_reduce(x, 1, wide, src, "amin", False), exact=True
        )
        f = run(lambda a, i, s: jgather.scatter(a, 1, i, s))
        assert_matches(f(x, narrow, src), ref_scatter(x, 1, wide, src), exact=True)


def test_scatter_add_keeps_every_dtype():
    index = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.int32)
    for name in DTYPES:
        x = (np.arange(6).reshape(2, 3) % 2).astype(np_dtype(name))
        out = jgather.scatter_add(x, 1, index, x)
        assert_matches(out, ref_scatter_add(x, 1, index, x), exact=True, err_msg=name)


def test_mean_of_whole_rows_divides_as_torch_does(x64_on):
    """A 'mean' of whole rows (an ``index.expand`` index) divides each total by its count:
    XLA would otherwise rewrite the division by the broadcast per-row count into a product
    with its reciprocal, one rounding more than torch's division."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 5))
    src = rng.standard_normal((2, 40, 5))
    rows = rng.integers(0, 7, (2, 40, 1))
    want = ref_scatter_reduce(x, 1, np.broadcast_to(rows, src.shape), src, "mean", True)
    f = jax.jit(
        lambda x, r, s: jgather.scatter_reduce(x, 1, jnp.broadcast_to(r, s.shape), s, "mean")
    )
    assert_matches(f(x, rows, src), want, exact=True)
