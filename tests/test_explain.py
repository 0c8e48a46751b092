"""Tests for jgather.explain and jgather.infer_gather against loop references."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import infer_gather_cases

import jgather

# The dim=1 example on arange(24).reshape(2, 3, 4): rows 0 and 2 of every 3 x 4 slice.
DIM1_INPUT = np.arange(24).reshape(2, 3, 4)
DIM1_INDEX = np.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 0, 0, 0], [2, 2, 2, 2]]])
DIM1_OUTPUT = np.array([[[0, 1, 2, 3], [8, 9, 10, 11]], [[12, 13, 14, 15], [20, 21, 22, 23]]])


def reference_infer(x, y):
    """Every (dim, index) by brute force: scan each input fibre for each output cell."""
    solutions = []
    for d in range(x.ndim):
        if any(y.shape[ax] > x.shape[ax] for ax in range(x.ndim) if ax != d):
            continue
        index = np.zeros(y.shape, np.int64)
        ok = True
        for pos in np.ndindex(*y.shape):
            fibre = x[(*pos[:d], slice(None), *pos[d + 1 :])]
            hits = [j for j, v in enumerate(fibre) if v == y[pos] or (v != v and y[pos] != y[pos])]
            if not hits:
                ok = False
                break
            index[pos] = hits[0]
        if ok:
            solutions.append((d, index))
    return solutions


def reference_gather(x, dim, index):
    """torch.gather's formula, one cell at a time."""
    out = np.empty(index.shape, x.dtype)
    for pos in np.ndindex(*index.shape):
        src = list(pos)
        src[dim] = index[pos]
        out[pos] = x[tuple(src)]
    return out


# ---------------------------------------------------------------- explain


def test_explain_dim1_example_on_arange24():
    text = jgather.explain(DIM1_INPUT, 1, DIM1_INDEX, (0, 1, 0))
    assert text == "out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8"


def test_explain_dim1_example_value_matches_jgather_gather():
    out = np.asarray(jgather.gather(jnp.asarray(DIM1_INPUT), 1, jnp.asarray(DIM1_INDEX)))
    np.testing.assert_array_equal(out, DIM1_OUTPUT)
    for pos in np.ndindex(*DIM1_INDEX.shape):
        text = jgather.explain(DIM1_INPUT, 1, DIM1_INDEX, pos)
        assert text.endswith(f"= {out[pos]}")


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_explain_every_dim_matches_reference(dim):
    rng = np.random.default_rng(dim + 10)
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    d = dim % 3
    shape = [2, 3, 4]
    shape[d] = 6  # index may be longer than input along dim, never elsewhere
    index = rng.integers(0, x.shape[d], shape)
    expected = reference_gather(x, d, index)
    for pos in [(0, 0, 0), (1, 2, 3), (-1, -1, -1)]:
        text = jgather.explain(jnp.asarray(x), dim, jnp.asarray(index, jnp.int32), pos)
        norm = tuple(p % n for p, n in zip(pos, index.shape, strict=True))
        src = list(norm)
        src[d] = int(index[norm])
        sym = [str(p) for p in norm]
        sym[d] = "index[" + ", ".join(map(str, norm)) + "]"
        assert text == (
            f"out[{', '.join(map(str, norm))}] = input[{', '.join(sym)}] = "
            f"input[{', '.join(map(str, src))}] = {expected[norm].item()!r}"
        )


def test_explain_one_dimensional_and_scalar_position():
    x = np.array([10, 20, 30])
    for position in (1, (1,), [-1], np.int64(1)):
        assert jgather.explain(x, 0, np.array([2, 0]), position) == (
            "out[1] = input[index[1]] = input[0] = 10"
        )
    assert jgather.explain(x, 0, np.array([2, 0]), 0) == (
        "out[0] = input[index[0]] = input[2] = 30"
    )


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((DIM1_INPUT, 1, DIM1_INDEX, (2, 0, 0)), IndexError, "outside the output"),
        ((DIM1_INPUT, 1, DIM1_INDEX, (0, 0)), ValueError, "one coordinate per output"),
        ((DIM1_INPUT, 3, DIM1_INDEX, (0, 0, 0)), IndexError, "dim 3 is out of range"),
        ((DIM1_INPUT, 1.0, DIM1_INDEX, (0, 0, 0)), TypeError, "dim must be a Python int"),
        ((DIM1_INPUT, 1, DIM1_INDEX[0], (0, 0)), ValueError, "index.ndim == input.ndim"),
        ((DIM1_INPUT, 1, DIM1_INDEX.astype(float), (0, 0, 0)), TypeError, "integer dtype"),
        ((DIM1_INPUT, 1, DIM1_INDEX + 3, (0, 0, 0)), IndexError, r"outside \[0, 3\)"),
        ((DIM1_INPUT, 1, -DIM1_INDEX, (0, 1, 0)), IndexError, r"= -2 is outside"),
        ((DIM1_INPUT, 1, np.zeros((3, 1, 1), int), (0, 0, 0)), ValueError, "larger than input"),
        ((DIM1_INPUT, 1, DIM1_INDEX, (0, "a", 0)), TypeError, "sequence of integers"),
    ],
)
def test_explain_errors(args, error, match):
    with pytest.raises(error, match=match):
        jgather.explain(*args)


# ---------------------------------------------------------------- infer_gather


def test_infer_dim1_example_on_arange24():
    solutions = jgather.infer_gather(DIM1_INPUT, DIM1_OUTPUT)
    assert [d for d, _ in solutions] == [1]
    dim, index = solutions[0]
    assert index.dtype == jnp.int32 and index.shape == DIM1_OUTPUT.shape
    np.testing.assert_array_equal(np.asarray(index), DIM1_INDEX)
    np.testing.assert_array_equal(np.asarray(jgather.gather(DIM1_INPUT, dim, index)), DIM1_OUTPUT)


def test_infer_mae_16_token_example():
    x = np.arange(64).reshape(1, 16, 4)
    x_masked = np.array([[[40, 41, 42, 43], [48, 49, 50, 51], [16, 17, 18, 19], [52, 53, 54, 55]]])
    solutions = jgather.infer_gather(jnp.asarray(x), jnp.asarray(x_masked))
    assert [d for d, _ in solutions] == [1]
    expected = np.repeat(np.array([10, 12, 4, 13])[None, :, None], 4, axis=-1)
    np.testing.assert_array_equal(np.asarray(solutions[0][1]), expected)


def test_infer_returns_every_dim_and_first_match():
    x = np.array([[1, 1, 2], [2, 1, 1]])
    y = np.array([[1, 1], [1, 1]])
    solutions = jgather.infer_gather(x, y)
    assert [d for d, _ in solutions] == [0, 1]
    np.testing.assert_array_equal(np.asarray(solutions[0][1]), [[0, 0], [0, 0]])
    np.testing.assert_array_equal(np.asarray(solutions[1][1]), [[0, 0], [1, 1]])


def test_infer_nan_matches_nan_and_dtypes_promote():
    x = np.array([[0.0, np.nan, 2.0]])
    solutions = jgather.infer_gather(x, np.array([[np.nan, 0.0]]))
    assert [d for d, _ in solutions] == [1]
    np.testing.assert_array_equal(np.asarray(solutions[0][1]), [[1, 0]])
    # Integer input, float output with equal values.
    solutions = jgather.infer_gather(DIM1_INPUT, DIM1_OUTPUT.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(solutions[0][1]), DIM1_INDEX)


def test_infer_empty_output_every_admissible_dim():
    solutions = jgather.infer_gather(DIM1_INPUT, np.zeros((2, 0, 5), int))
    # Output size 5 > 4 along dim 2 rules out dims 0 and 1; only dim 2 is admissible.
    assert [d for d, _ in solutions] == [2]
    assert solutions[0][1].shape == (2, 0, 5)


@pytest.mark.parametrize(
    ("x", "y", "match"),
    [
        (DIM1_INPUT, DIM1_OUTPUT + 100, "dim=0: some output values are absent"),
        (DIM1_INPUT, DIM1_OUTPUT[0], "same number of dimensions|number of dimensions"),
        (np.array(3), np.array(3), "at least one dimension"),
        (np.zeros((2, 2)), np.zeros((3, 3)), r"output.shape\[1\]=3 > input.shape\[1\]=2"),
        (np.zeros((0, 2)), np.zeros((1, 2)), "input.shape\\[0\\] is 0"),
        # Values exist in the input but not in the fibre a gather could read them from.
        (np.array([[1, 2], [3, 4]]), np.array([[4, 1], [1, 4]]), "absent from their input fibre"),
    ],
)
def test_infer_no_solution_raises(x, y, match):
    with pytest.raises(ValueError, match=match):
        jgather.infer_gather(x, y)


@given(infer_gather_cases())
def test_infer_matches_brute_force(case):
    x, dim, index = case
    y = reference_gather(x, dim, index)
    got = jgather.infer_gather(x, y)
    want = reference_infer(x, y)
    assert [d for d, _ in got] == [d for d, _ in want]
    assert dim in [d for d, _ in got]
    for (d, i_got), (_, i_want) in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(i_got), i_want)
        np.testing.assert_array_equal(reference_gather(x, d, np.asarray(i_got)), y)


@given(infer_gather_cases(), st.integers(0, 2**31 - 1))
def test_infer_unrelated_output_agrees_with_brute_force(case, seed):
    x, _, index = case
    y = np.random.default_rng(seed).integers(0, 5, index.shape).astype(np.int8)
    want = reference_infer(x, y)
    if not want:
        with pytest.raises(ValueError, match="no \\(dim, index\\)"):
            jgather.infer_gather(x, y)
        return
    got = jgather.infer_gather(x, y)
    assert [d for d, _ in got] == [d for d, _ in want]
    for (_, i_got), (_, i_want) in zip(got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(i_got), i_want)


def test_infer_large_random_permutation_roundtrips_through_gather():
    rng = np.random.default_rng(0)
    x = rng.permutation(64 * 196 * 16).reshape(64, 196, 16).astype(np.float32)  # distinct values
    index = rng.integers(0, 196, (64, 49, 16))
    y = jgather.gather(jnp.asarray(x), 1, jnp.asarray(index, jnp.int32))
    solutions = jgather.infer_gather(x, y)
    assert [d for d, _ in solutions] == [1]
    np.testing.assert_array_equal(np.asarray(solutions[0][1]), index)


def test_explain_and_infer_agree_on_every_cell():
    ((dim, index),) = jgather.infer_gather(DIM1_INPUT, DIM1_OUTPUT)
    for pos in itertools.product(*map(range, DIM1_OUTPUT.shape)):
        assert jgather.explain(DIM1_INPUT, dim, index, pos).endswith(f"= {DIM1_OUTPUT[pos]}")


def test_traced_arguments_are_a_clear_type_error():
    with pytest.raises(TypeError, match="infer_gather: output is a traced value"):
        jax.jit(lambda y: jgather.infer_gather(DIM1_INPUT, y))(DIM1_OUTPUT)
    with pytest.raises(TypeError, match="explain: index is a traced value"):
        jax.jit(lambda i: jgather.explain(DIM1_INPUT, 1, i, (0, 1, 0)))(DIM1_INDEX)


def test_explain_zero_and_five_dimensional():
    assert jgather.explain(np.array(5.0), 0, np.array(0), ()) == "out[] = input[] = 5.0"
    with pytest.raises(IndexError, match="0-d input only has position 0"):
        jgather.explain(np.array(5.0), 0, np.array(1), ())
    rng = np.random.default_rng(5)
    x = rng.integers(0, 100, (2, 3, 2, 2, 3))
    index = rng.integers(0, 2, (1, 2, 2, 1, 3))
    out = np.asarray(jgather.gather(x, -2, index))
    for pos in np.ndindex(*index.shape):
        text = jgather.explain(x, -2, index, pos)
        src = list(pos)
        src[3] = int(index[pos])
        assert text.endswith(f"input[{', '.join(map(str, src))}] = {out[pos]}")


def test_infer_uint64_above_2_53_is_exact():
    """uint64 with a signed int promotes to float64 in NumPy, merging 2**53 and 2**53 + 1."""
    x = np.array([2**53 + 1, 2**53, 2**60 + 3], np.uint64)
    for y in (np.array([2**53, 2**53 + 1]), np.array([2**53, 2**53 + 1], np.uint64)):
        ((dim, index),) = jgather.infer_gather(x, y)
        assert dim == 0 and index.tolist() == [1, 0]
        np.testing.assert_array_equal(x[np.asarray(index)], y)
    ((_, index),) = jgather.infer_gather(x.astype(np.int64), np.array([2**60 + 3], np.uint64))
    assert index.tolist() == [2]
    with pytest.raises(ValueError, match="absent"):
        jgather.infer_gather(x, np.array([-1]))
