"""gather, take_along_dim and index_select: golden cases and differential tests.

Golden cases are two worked examples (the dim=1 example on arange(24).reshape(2, 3, 4), and MAE's
16-token example keeping patches 10, 12, 4, 13) and the torch documentation's, with the outputs
those examples state.
The differential tests draw random cases with hypothesis (ranks 0-4, sizes 0-6, every dim
including negative ones, every dtype, duplicate indices, index smaller than input off dim) and
compare jgather with the NumPy loop reference in reference.py (cases from strategies.py): plain, under jax.jit and
under jax.vmap. Retracing and x64 on/off are checked at the end.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from reference import DTYPES, assert_matches, count_traces, np_dtype
from reference import gather as ref_gather
from reference import index_select as ref_index_select
from reference import take_along_dim as ref_take_along_dim
from strategies import (
    batched_gather_cases,
    gather_cases,
    index_select_cases,
    take_along_dim_cases,
)

import jgather

# --------------------------------------------------------------------------------------------
# Golden cases.


def test_gather_dim1_example_on_arange24():
    """The dim=1 example on arange(24).reshape(2, 3, 4): rows 0 and 2 of each 3x4 block."""
    x = jnp.arange(24).reshape(2, 3, 4)
    index = jnp.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 0, 0, 0], [2, 2, 2, 2]]])
    out = jgather.gather(x, 1, index)
    expected = [[[0, 1, 2, 3], [8, 9, 10, 11]], [[12, 13, 14, 15], [20, 21, 22, 23]]]
    assert_matches(out, np.array(expected, dtype=x.dtype))
    # One entry read by hand: out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0].
    assert int(out[0, 1, 0]) == int(x[0, 2, 0]) == 8


def test_gather_mae_16_token_example():
    """MAE's 16-token example: tokens 10, 12, 4, 13 of x = arange(64).reshape(1, 16, 4)."""
    x = jnp.arange(64).reshape(1, 16, 4)
    ids_keep = jnp.array([[10, 12, 4, 13]])
    index = jnp.broadcast_to(ids_keep[..., None], (1, 4, 4))
    out = jgather.gather(x, 1, index)
    expected = [[[40, 41, 42, 43], [48, 49, 50, 51], [16, 17, 18, 19], [52, 53, 54, 55]]]
    assert_matches(out, np.array(expected, dtype=x.dtype))


def test_gather_torch_docs_example():
    """torch.gather docs: gather([[1, 2], [3, 4]], 1, [[0, 0], [1, 0]]) == [[1, 1], [4, 3]]."""
    t = jnp.array([[1, 2], [3, 4]])
    out = jgather.gather(t, 1, jnp.array([[0, 0], [1, 0]]))
    assert_matches(out, np.array([[1, 1], [4, 3]], dtype=t.dtype))


def test_take_along_dim_torch_docs_example():
    """torch.take_along_dim docs: flat argmax, sorting by argsort, and a keepdim argmax."""
    t = jnp.array([[10, 30, 20], [60, 40, 50]])
    # Flattened (dim=None): argmax(t) == 3 -> [60].
    assert_matches(jgather.take_along_dim(t, jnp.argmax(t)), np.array([60], dtype=t.dtype))
    # Along dim 1 with argsort: rows sorted.
    sorted_idx = jnp.argsort(t, axis=1)
    np.testing.assert_array_equal(sorted_idx, [[0, 2, 1], [1, 2, 0]])
    out = jgather.take_along_dim(t, sorted_idx, dim=1)
    assert_matches(out, np.array([[10, 20, 30], [40, 50, 60]], dtype=t.dtype))
    # Along dim 0 with a keepdim argmax: the column maxima.
    max_idx = jnp.argmax(t, axis=0, keepdims=True)
    out = jgather.take_along_dim(t, max_idx, dim=0)
    assert_matches(out, np.array([[60, 40, 50]], dtype=t.dtype))


def test_take_along_dim_broadcasts_off_dim():
    """Unlike gather, take_along_dim broadcasts: one index row serves every input row."""
    t = jnp.arange(6).reshape(2, 3)
    out = jgather.take_along_dim(t, jnp.array([[0, 2]]), dim=1)
    assert_matches(out, np.array([[0, 2], [3, 5]], dtype=t.dtype))
    # The input broadcasts too: [2, 1, 3] against [1, 2, 1] along dim 2 -> [2, 2, 1].
    t3 = jnp.arange(6).reshape(2, 1, 3)
    out = jgather.take_along_dim(t3, jnp.array([[[0], [2]]]), dim=2)
    assert_matches(out, np.array([[[0], [2]], [[3], [5]]], dtype=t3.dtype))


def test_index_select_torch_docs_example():
    """torch.index_select docs: rows 0 and 2, then columns 0 and 2, of a 3x4 matrix."""
    x = jnp.array(
        [
            [0.1427, 0.0231, -0.5414, -1.0009],
            [-0.4664, 0.2647, -0.1228, -1.1068],
            [-1.1734, -0.6571, 0.7230, -0.6004],
        ],
        dtype=jnp.float32,
    )
    indices = jnp.array([0, 2])
    rows = np.array([[0.1427, 0.0231, -0.5414, -1.0009], [-1.1734, -0.6571, 0.7230, -0.6004]])
    cols = np.array([[0.1427, -0.5414], [-0.4664, -0.1228], [-1.1734, 0.7230]])
    assert_matches(jgather.index_select(x, 0, indices), rows.astype(np.float32), exact=True)
    assert_matches(jgather.index_select(x, 1, indices), cols.astype(np.float32), exact=True)


def test_zero_dim_and_empty_cases_follow_torch():
    """torch treats a 0-d tensor as one element; empty indices give empty outputs."""
    five = jnp.array(5.0, dtype=jnp.float32)
    assert_matches(jgather.gather(five, 0, jnp.array(0)), np.float32(5.0))
    assert_matches(jgather.gather(five, -1, jnp.array(0)), np.float32(5.0))
    # 1-D input with a 0-d index gives a 0-d output (torch: gather(arange(3.), 0, tensor(1))).
    assert_matches(jgather.gather(jnp.arange(3.0), 0, jnp.array(1)), np.float32(1.0))
    x = jnp.arange(6.0).reshape(3, 2)
    assert_matches(jgather.gather(x, 1, jnp.zeros((3, 0), jnp.int32)), np.zeros((3, 0), np.float32))
    assert_matches(
        jgather.gather(jnp.zeros((0, 2)), 1, jnp.zeros((0, 3), jnp.int32)),
        np.zeros((0, 3), np.float32),
    )
    # take_along_dim of a 0-d input with dim=None returns a 1-element 1-D array (torch: [3.]).
    assert_matches(
        jgather.take_along_dim(jnp.float32(3.0), jnp.array(0)), np.array([3.0], np.float32)
    )
    # index_select with a 0-d index keeps the dim with size 1; a 0-d input stays 0-d.
    assert_matches(
        jgather.index_select(x, 1, jnp.array(1)), np.array([[1.0], [3.0], [5.0]], np.float32)
    )
    assert_matches(jgather.index_select(jnp.float32(4.0), 0, jnp.array(0)), np.float32(4.0))
    assert_matches(
        jgather.index_select(x, 1, jnp.zeros((0,), jnp.int32)), np.zeros((3, 0), np.float32)
    )


# --------------------------------------------------------------------------------------------
# Random cases.


@settings(max_examples=40)
@given(gather_cases())
def test_gather_matches_reference(case):
    x, dim, index = case
    expected = ref_gather(x, dim, index)
    assert_matches(jgather.gather(jnp.asarray(x), dim, jnp.asarray(index)), expected, exact=True)
    jitted = jax.jit(lambda a, i: jgather.gather(a, dim, i))
    assert_matches(jitted(jnp.asarray(x), jnp.asarray(index)), expected, exact=True)


@settings(max_examples=20)
@given(batched_gather_cases())
def test_gather_vmap_matches_reference(case):
    xs, dim, indices = case
    expected = np.stack([ref_gather(x, dim, i) for x, i in zip(xs, indices, strict=True)])
    out = jax.vmap(lambda a, i: jgather.gather(a, dim, i))(jnp.asarray(xs), jnp.asarray(indices))
    assert_matches(out, expected, exact=True)
    # Batch on a trailing axis of the index too: in_axes are the user's choice.
    out = jax.vmap(lambda a, i: jgather.gather(a, dim, i), in_axes=(0, -1))(
        jnp.asarray(xs), jnp.moveaxis(jnp.asarray(indices), 0, -1)
    )
    assert_matches(out, expected, exact=True)


@settings(max_examples=30)
@given(take_along_dim_cases())
def test_take_along_dim_matches_reference(case):
    x, indices, dim = case
    expected = ref_take_along_dim(x, indices, dim)
    out = jgather.take_along_dim(jnp.asarray(x), jnp.asarray(indices), dim)
    assert_matches(out, expected, exact=True)
    jitted = jax.jit(lambda a, i: jgather.take_along_dim(a, i, dim))
    assert_matches(jitted(jnp.asarray(x), jnp.asarray(indices)), expected, exact=True)
    if x.ndim >= 1 and dim is not None:
        xs, iis = np.stack([x, x[::-1]]), np.stack([indices, indices[::-1]])
        expected_b = np.stack([ref_take_along_dim(a, i, dim) for a, i in zip(xs, iis, strict=True)])
        out = jax.vmap(lambda a, i: jgather.take_along_dim(a, i, dim))(
            jnp.asarray(xs), jnp.asarray(iis)
        )
        assert_matches(out, expected_b, exact=True)


@settings(max_examples=30)
@given(index_select_cases())
def test_index_select_matches_reference(case):
    x, dim, index = case
    expected = ref_index_select(x, dim, index)
    out = jgather.index_select(jnp.asarray(x), dim, jnp.asarray(index))
    assert_matches(out, expected, exact=True)
    jitted = jax.jit(lambda a, i: jgather.index_select(a, dim, i))
    assert_matches(jitted(jnp.asarray(x), jnp.asarray(index)), expected, exact=True)
    # vmap over a batch of indices (one shared input): a common use (per-example row picks).
    if index.ndim == 1:
        batch = np.stack([index, index[::-1]])
        expected_b = np.stack([ref_index_select(x, dim, i) for i in batch])
        out = jax.vmap(lambda i: jgather.index_select(jnp.asarray(x), dim, i))(jnp.asarray(batch))
        assert_matches(out, expected_b, exact=True)


@pytest.mark.parametrize("index_dtype", ["int8", "uint8", "int16"])
def test_narrow_index_dtypes_give_the_int32_result(index_dtype):
    """A documented extension (torch takes only int32/int64 indices): narrower integer indices
    work and give the int32 result, eagerly and under jit (values up to 200 fit uint8)."""
    x = np.arange(2 * 201, dtype=np.float32).reshape(2, 201)
    wide = np.array([[0, 100, 127], [5, 127, 1]], dtype=np.int32)
    if index_dtype == "uint8":
        wide[1, 1] = 200
    narrow = wide.astype(index_dtype)
    for run in (lambda f: f, jax.jit):
        g = run(lambda a, i: jgather.gather(a, 1, i))
        assert_matches(g(x, narrow), ref_gather(x, 1, wide), exact=True)
        t = run(lambda a, i: jgather.take_along_dim(a, i, 1))
        assert_matches(t(x, narrow[:1]), ref_take_along_dim(x, wide[:1], 1), exact=True)
        s = run(lambda a, i: jgather.index_select(a, 1, i))
        assert_matches(s(x, narrow[1]), ref_index_select(x, 1, wide[1]), exact=True)
    with pytest.raises(IndexError, match="index -1 is out of bounds"):
        jgather.gather(x, 1, np.array([[-1]], np.int8))
    if index_dtype != "int8":  # 255 does not fit int8
        with pytest.raises(
            IndexError, match="index 255 is out of bounds for dimension 1 with size 201"
        ):
            jgather.gather(x, 1, np.array([[255]]).astype(index_dtype))


def test_gather_accepts_numpy_and_keeps_every_dtype():
    """NumPy inputs work; the output dtype is the input's for every dtype in the table."""
    index = np.array([[1, 0, 1], [0, 0, 1]], dtype=np.int32)
    for name in DTYPES:
        x = (np.arange(6).reshape(2, 3) % 2).astype(np_dtype(name))
        out = jgather.gather(x, 1, index)
        assert_matches(out, ref_gather(x, 1, index), exact=True, err_msg=name)


# --------------------------------------------------------------------------------------------
# Transforms: no retrace, x64.


def test_count_traces_sees_a_fresh_trace():
    """The retrace tests cannot pass vacuously: the counter does record a new trace."""
    x = jnp.arange(5.0)
    with count_traces() as traced:
        jax.jit(lambda a: a * 3.0 + 1.0)(x)
    assert len(traced) >= 1


@pytest.mark.parametrize(
    "call",
    [
        lambda x, i: jgather.gather(x, 1, i),
        lambda x, i: jgather.gather(x, -1, i, mode="clip"),
        lambda x, i: jgather.gather(x, 0, i, mode="fill", fill_value=-1.0),
        lambda x, i: jgather.take_along_dim(x, i, 1),
        lambda x, i: jgather.take_along_dim(x, i),
        lambda x, i: jgather.index_select(x, 0, i[0]),
    ],
    ids=[
        "gather",
        "gather-clip",
        "gather-fill",
        "take_along_dim",
        "take_along_dim-flat",
        "index_select",
    ],
)
def test_second_call_with_same_shapes_does_not_retrace(call):
    x = jnp.arange(12.0).reshape(3, 4)
    i = jnp.array([[0, 2, 1], [2, 2, 0], [1, 1, 1]], dtype=jnp.int32)
    x2, i2 = x + 1.0, i[::-1]  # new values, same shapes (built before counting)
    first = call(x, i)
    with count_traces() as traced:
        second = call(x, i)
        call(x2, i2)
    assert traced == [], f"retraced on a second call with the same shapes: {traced}"
    np.testing.assert_array_equal(first, second)


def test_fill_value_is_traced_so_a_new_value_does_not_retrace():
    """Documented: fill_value is traced; changing it does not recompile."""
    x = jnp.arange(12.0).reshape(3, 4)
    i = jnp.array([[0, 9], [1, -1], [2, 3]], dtype=jnp.int32)
    first = jgather.gather(x, 1, i, mode="fill", fill_value=-1.0)
    with count_traces() as traced:
        second = jgather.gather(x, 1, i, mode="fill", fill_value=-2.0)
    assert traced == [], f"retraced for a new fill_value: {traced}"
    np.testing.assert_array_equal(first, [[0.0, -1.0], [5.0, -1.0], [10.0, 11.0]])
    np.testing.assert_array_equal(second, [[0.0, -2.0], [5.0, -2.0], [10.0, 11.0]])


def test_user_jit_around_gather_traces_once():
    """chex guard on a user-level jit: new values with the same shapes never retrace."""
    import chex

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(x, i):
        return jgather.gather(x, 1, i) + jgather.take_along_dim(x, i, 1)

    x = jnp.arange(12.0).reshape(3, 4)
    i = jnp.array([[0, 3], [1, 1], [2, 0]])
    for k in range(3):
        f(x * k, (i + k) % 4)
    chex.clear_trace_counter()


@pytest.mark.parametrize("index_dtype", ["int32", "int64"])
def test_gather_family_with_x64_on_and_off(x64, index_dtype):
    """int32 and int64 indices give the same answers with x64 on and off (conftest's x64
    fixture restores the config and checks it)."""
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    index = np.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 1, 2, 0], [2, 1, 0, 1]]])
    index = index.astype(index_dtype)
    out = jgather.gather(jnp.asarray(x), 1, jnp.asarray(index))
    assert_matches(out, ref_gather(x, 1, index), exact=True)
    jitted = jax.jit(lambda a, i: jgather.gather(a, 1, i))
    assert_matches(jitted(x, index), ref_gather(x, 1, index), exact=True)
    rows = np.concatenate([index, index[:, :1]], axis=1)[..., :2]  # [2, 3, 2]
    out = jgather.take_along_dim(jnp.asarray(x), jnp.asarray(rows), dim=2)
    assert_matches(out, ref_take_along_dim(x, rows, 2), exact=True)
    out = jgather.index_select(jnp.asarray(x), 2, jnp.asarray(index[0, 1]))
    assert_matches(out, ref_index_select(x, 2, index[0, 1]), exact=True)
    if x64:
        x64_input = x.astype(np.float64)
        out = jgather.gather(jnp.asarray(x64_input), -2, jnp.asarray(index))
        assert_matches(out, ref_gather(x64_input, -2, index), exact=True)


def _primitives(jaxpr) -> list[str]:
    """Every primitive name in a jaxpr, sub-jaxprs (jit, cond branches, ...) included."""
    names = []
    for eqn in jaxpr.eqns:
        names.append(eqn.primitive.name)
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    names.extend(_primitives(inner))
    return names


@pytest.mark.parametrize(
    "call",
    [
        lambda x, i: jgather.gather(x, 1, i),
        lambda x, i: jgather.gather(x, -1, i[:, :, :3]),
        lambda x, i: jgather.take_along_dim(x, i[:1], 1),
        lambda x, i: jgather.index_select(x, 1, i[0, :, 0]),
    ],
    ids=["gather", "gather-last", "take_along_dim", "index_select"],
)
def test_gather_family_lowers_to_one_gather_without_an_index_grid(call):
    """The issue's lowering: one XLA gather (batching dims), no iota index grid."""
    x = jnp.ones((4, 8, 16), jnp.float32)
    i = jnp.zeros((4, 5, 16), jnp.int32)
    names = _primitives(jax.make_jaxpr(call)(x, i).jaxpr)
    assert names.count("gather") == 1, names
    assert "iota" not in names and "concatenate" not in names, names
