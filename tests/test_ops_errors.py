"""Bad input to the ops gets the right exception and a message that says what to do.

Trace-time errors (shapes, dtypes, dim, reduce, mode) must be raised eagerly and under jax.jit
alike, as ValueError / TypeError / IndexError (never a bare AssertionError), naming the
function and the shapes or values involved. Out-of-range index values raise torch's IndexError
when the index is concrete; under jit the mode decides (documented in jgather's module
docstrings: gathers fill, scatters drop), and checkify with index_checks reports them.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from reference import assert_matches

import jgather

X = jnp.arange(6.0).reshape(3, 2)  # [3, 2]
I1 = jnp.array([[0], [1], [1]])  # [3, 1], in range along dim 1
S1 = jnp.ones((3, 1), jnp.float32)


def _raises(exc, fn, index, *words):
    """``fn(index)`` raises ``exc`` eagerly and under jax.jit (where ``index`` is a tracer),
    and the message holds every word."""
    for run in (fn, jax.jit(fn)):
        with pytest.raises(exc) as info:
            run(index)
        message = str(info.value)
        for word in words:
            assert word in message, f"{word!r} not in {message!r}"


# --------------------------------------------------------------------------------------------
# Trace-time errors.

_SCATTERS = {
    "scatter": lambda x, d, i, s: jgather.scatter(x, d, i, s),
    "scatter_add": lambda x, d, i, s: jgather.scatter_add(x, d, i, s),
    "scatter_reduce": lambda x, d, i, s: jgather.scatter_reduce(x, d, i, s, "sum"),
}


def test_gather_rank_mismatch():
    _raises(
        ValueError, lambda i: jgather.gather(X, 1, i), jnp.array([0, 1]), "gather", "(2,)", "(3, 2)"
    )
    _raises(
        ValueError, lambda i: jgather.gather(X, 1, i), I1[None], "gather", "(1, 3, 1)", "(3, 2)"
    )


def test_gather_index_larger_than_input_off_dim():
    index = jnp.zeros((4, 1), jnp.int32)
    _raises(
        ValueError,
        lambda i: jgather.gather(X, 1, i),
        index,
        "gather",
        "(4, 1)",
        "(3, 2)",
        "dimension 0",
    )
    # Along dim itself the index may be longer than the input (torch: [3, 5] from [3, 2]).
    out = jgather.gather(X, 1, jnp.zeros((3, 5), jnp.int32))
    assert_matches(out, np.repeat(np.asarray(X)[:, :1], 5, axis=1))


@pytest.mark.parametrize("name", list(_SCATTERS))
def test_scatter_shape_errors(name):
    op = _SCATTERS[name]
    # rank mismatch between index and input
    _raises(
        ValueError, lambda i: op(X, 1, i, jnp.ones(2)), jnp.array([0, 1]), name, "(2,)", "(3, 2)"
    )
    # index larger than input off dim
    _raises(
        ValueError,
        lambda i: op(X, 1, i, jnp.ones((4, 1))),
        jnp.zeros((4, 1), jnp.int32),
        name,
        "(4, 1)",
        "(3, 2)",
    )
    # src smaller than index
    _raises(
        ValueError,
        lambda i: op(X, 1, i, jnp.ones((1, 2))),
        jnp.zeros((2, 2), jnp.int32),
        name,
        "src",
        "(1, 2)",
        "(2, 2)",
    )
    # src of another rank
    _raises(ValueError, lambda i: op(X, 1, i, jnp.ones(3)), I1, name, "src", "(3,)")


@pytest.mark.parametrize("name", list(_SCATTERS))
def test_scatter_src_dtype_must_match_input(name):
    op = _SCATTERS[name]
    _raises(
        TypeError,
        lambda i: op(X, 1, i, jnp.ones((3, 1), jnp.int32)),
        I1,
        name,
        "int32",
        "float32",
        "astype",
    )
    _raises(
        TypeError,
        lambda i: op(X, 1, i, jnp.ones((3, 1), jnp.float16)),
        I1,
        name,
        "float16",
        "float32",
    )


_ALL = {
    "gather": lambda x, d, i: jgather.gather(x, d, i),
    "take_along_dim": lambda x, d, i: jgather.take_along_dim(x, i, d),
    "index_select": lambda x, d, i: jgather.index_select(x, d, i.reshape(-1)),
    **{
        k: (lambda op: lambda x, d, i: op(x, d, i, jnp.ones(i.shape, x.dtype)))(v)
        for k, v in _SCATTERS.items()
    },
}


@pytest.mark.parametrize("name", list(_ALL))
def test_non_integer_index_is_a_type_error(name):
    op = _ALL[name]
    _raises(TypeError, lambda i: op(X, 1, i), I1.astype(jnp.float32), name, "float32", "integer")
    _raises(TypeError, lambda i: op(X, 1, i), I1 > 0, name, "bool")


@pytest.mark.parametrize("name", list(_ALL))
@pytest.mark.parametrize("dim", [2, -3, 7])
def test_dim_out_of_range_is_an_index_error(name, dim):
    _raises(IndexError, lambda i: _ALL[name](X, dim, i), I1, name, str(dim), "[-2, 1]")


def test_dim_of_zero_dim_input():
    """A 0-d input has one dim for torch: dim 0 and -1 work, 1 is out of range [-1, 0]."""
    five = jnp.float32(5.0)
    _raises(IndexError, lambda i: jgather.gather(five, 1, i), jnp.array(0), "gather", "[-1, 0]")
    _raises(
        IndexError,
        lambda i: jgather.scatter_add(five, -2, i, five),
        jnp.array(0),
        "scatter_add",
        "[-1, 0]",
    )


def test_unknown_reduce_is_a_value_error():
    # torch.scatter accepts only 'add' and 'multiply'; scatter_reduce only its five names.
    for bad in ("sum", "mean", "max", "foo"):
        _raises(
            ValueError,
            lambda i, bad=bad: jgather.scatter(X, 1, i, S1, reduce=bad),
            I1,
            "scatter",
            repr(bad),
            "'add'",
            "'multiply'",
        )
    for bad in ("add", "multiply", "foo", "avg"):
        _raises(
            ValueError,
            lambda i, bad=bad: jgather.scatter_reduce(X, 1, i, S1, bad),
            I1,
            "scatter_reduce", repr(bad), "'sum'", "'prod'", "'mean'", "'amax'", "'amin'",
        )  # fmt: skip


def test_bool_mean_is_a_type_error():
    """torch: 'scatter_gather_tensor_cpu_reduce_mean' not implemented for 'Bool'."""
    b = jnp.zeros((3, 2), bool)
    _raises(
        TypeError,
        lambda i: jgather.scatter_reduce(b, 1, i, jnp.ones((3, 1), bool), "mean"),
        I1,
        "scatter_reduce",
        "bool",
        "mean",
    )


@pytest.mark.parametrize("name", ["gather", "take_along_dim", "index_select"])
def test_gather_modes_are_checked(name):
    op = {
        "gather": lambda i, **kw: jgather.gather(X, 1, i, **kw),
        "take_along_dim": lambda i, **kw: jgather.take_along_dim(X, i, 1, **kw),
        "index_select": lambda i, **kw: jgather.index_select(X, 1, i[:, 0], **kw),
    }[name]
    _raises(ValueError, lambda i: op(i, mode="drop"), I1, name, "'drop'", "'clip'", "'fill'")
    _raises(ValueError, lambda i: op(i, mode="wrap"), I1, name, "'wrap'")
    # A fill_value with a mode that never fills would be silently ignored: refuse it.
    _raises(
        ValueError, lambda i: op(i, mode="clip", fill_value=0.0), I1, name, "fill_value", "'clip'"
    )


@pytest.mark.parametrize("name", list(_SCATTERS))
def test_scatter_modes_are_checked(name):
    op = {
        "scatter": lambda i, **kw: jgather.scatter(X, 1, i, S1, **kw),
        "scatter_add": lambda i, **kw: jgather.scatter_add(X, 1, i, S1, **kw),
        "scatter_reduce": lambda i, **kw: jgather.scatter_reduce(X, 1, i, S1, "sum", **kw),
    }[name]
    _raises(ValueError, lambda i: op(i, mode="fill"), I1, name, "'fill'", "'drop'", "'clip'")
    _raises(ValueError, lambda i: op(i, mode="wrap"), I1, name, "'wrap'")


def test_take_along_dim_shape_errors():
    _raises(
        ValueError,
        lambda i: jgather.take_along_dim(X, i, 1),
        jnp.array([0, 1]),
        "take_along_dim",
        "(2,)",
        "(3, 2)",
    )
    index = jnp.zeros((2, 1), jnp.int32)  # 2 vs 3 on dim 0: neither equal nor 1
    _raises(
        ValueError,
        lambda i: jgather.take_along_dim(X, i, 1),
        index,
        "take_along_dim",
        "(2, 1)",
        "(3, 2)",
        "broadcast",
    )


def test_index_select_shape_errors():
    _raises(
        ValueError, lambda i: jgather.index_select(X, 1, i), I1, "index_select", "(3, 1)", "1-D"
    )
    _raises(
        ValueError,
        lambda i: jgather.index_select(jnp.float32(4.0), 0, i),
        jnp.array([0, 0]),
        "index_select",
        "(2,)",
    )


def test_no_bare_assertion_errors_from_bad_shapes():
    """Every shape error is ValueError/TypeError/IndexError (AssertionError is not a subclass)."""
    bad_calls = [
        lambda: jgather.gather(X, 0, jnp.zeros((3, 3, 1), jnp.int32)),
        lambda: jgather.scatter(X, 0, jnp.zeros((1, 3), jnp.int32), jnp.ones((1, 3))),
        lambda: jgather.scatter_reduce(X, 0, I1, jnp.ones((2, 1)), "amax"),
        lambda: jgather.take_along_dim(X, jnp.zeros((3, 2, 1), jnp.int32), 0),
    ]
    for call in bad_calls:
        with pytest.raises((ValueError, TypeError, IndexError)):
            call()


# --------------------------------------------------------------------------------------------
# Out-of-range index values, eagerly: torch's IndexError.


def _eager_reduce(reduce):
    return lambda i: jgather.scatter_reduce(X, 1, i, S1, reduce)


_OOB_EAGER = {
    "gather": lambda i: jgather.gather(X, 1, i),
    "take_along_dim": lambda i: jgather.take_along_dim(X, i, 1),
    "scatter": lambda i: jgather.scatter(X, 1, i, S1),
    "scatter-scalar": lambda i: jgather.scatter(X, 1, i, 2.0, reduce="add"),
    "scatter_add": lambda i: jgather.scatter_add(X, 1, i, S1),
    **{f"scatter_reduce-{r}": _eager_reduce(r) for r in ("sum", "prod", "mean", "amax", "amin")},
}


@pytest.mark.parametrize("name", list(_OOB_EAGER))
def test_out_of_range_index_raises_torch_index_error_eagerly(name):
    call = _OOB_EAGER[name]
    with pytest.raises(IndexError, match="index 23 is out of bounds for dimension 1 with size 2"):
        call(jnp.array([[0], [23], [1]]))
    with pytest.raises(IndexError, match="index 2 is out of bounds for dimension 1 with size 2"):
        call(np.array([[2], [0], [0]]))  # NumPy index too
    if name != "take_along_dim":  # torch wraps negatives there (see the next test)
        with pytest.raises(
            IndexError, match="index -1 is out of bounds for dimension 1 with size 2"
        ):
            call(jnp.array([[0], [-1], [1]]))
    with pytest.raises(IndexError) as info:
        call(jnp.array([[0], [-3], [1]]))
    assert "-3" in str(info.value) and "size 2" in str(info.value)
    # The message says how to get a non-raising behaviour.
    assert "mode=" in str(info.value)


def test_take_along_dim_negative_indices_follow_torch():
    """torch >= 2.8 wraps negative indices in take_along_dim when dim is given:
    take_along_dim(arange(6).reshape(2, 3), [[0], [-1]], 1) == [[0], [5]]; with dim=None it
    does not: take_along_dim(t, [-1]) raises 'index -1 is out of bounds for dimension 0 with
    size 6'."""
    t = jnp.arange(6).reshape(2, 3)
    out = jgather.take_along_dim(t, jnp.array([[0], [-1]]), 1)
    assert_matches(out, np.array([[0], [5]], np.int32))
    out = jgather.take_along_dim(t, jnp.array([[0, -1]]), 1)
    assert_matches(out, np.array([[0, 2], [3, 5]], np.int32))
    with pytest.raises(IndexError, match="index -1 is out of bounds for dimension 0 with size 6"):
        jgather.take_along_dim(t, jnp.array([-1]))
    with pytest.raises(IndexError, match="index 6 is out of bounds for dimension 0 with size 6"):
        jgather.take_along_dim(t, jnp.array([6]))
    # Outside [-size, size) torch's modulo silently wraps (3 -> 0); jgather must not.
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 1 with size 3"):
        jgather.take_along_dim(t, jnp.array([[0], [3]]), 1)
    with pytest.raises(IndexError, match="index -4 is out of bounds for dimension 1 with size 3"):
        jgather.take_along_dim(t, jnp.array([[0], [-4]]), 1)


def test_index_select_out_of_range_raises_eagerly():
    with pytest.raises(IndexError, match="index 3 is out of bounds for dimension 0 with size 3"):
        jgather.index_select(X, 0, jnp.array([0, 3]))
    with pytest.raises(IndexError, match="index -1 is out of bounds for dimension 1 with size 2"):
        jgather.index_select(X, 1, jnp.array([-1]))
    with pytest.raises(IndexError, match="index 6 is out of bounds for dimension 0 with size 6"):
        jgather.take_along_dim(X, jnp.array([6]))


def test_every_index_out_of_range_for_an_empty_dim():
    """torch: gather(zeros(2, 0), 1, zeros(2, 1)) -> 'index 0 is out of bounds ... size 0'."""
    with pytest.raises(IndexError, match="index 0 is out of bounds for dimension 1 with size 0"):
        jgather.gather(jnp.zeros((2, 0)), 1, jnp.zeros((2, 1), jnp.int32))
    with pytest.raises(IndexError, match="index 0 is out of bounds for dimension 1 with size 0"):
        jgather.scatter_add(jnp.zeros((2, 0)), 1, jnp.zeros((2, 1), jnp.int32), jnp.ones((2, 1)))


# --------------------------------------------------------------------------------------------
# Out-of-range index values under jit: the documented modes.

BAD = jnp.array([[0], [23], [-1]])  # row 0 in range, rows 1 and 2 out of range along dim 1


@pytest.mark.parametrize(
    ("dtype", "fill"),
    [
        (jnp.float32, np.nan),
        (jnp.bfloat16, np.nan),
        (jnp.int32, np.iinfo(np.int32).min),
        (jnp.int8, np.iinfo(np.int8).min),
        (jnp.uint8, np.iinfo(np.uint8).max),
        (jnp.bool_, True),
    ],
    ids=["float32", "bfloat16", "int32", "int8", "uint8", "bool"],
)
def test_gather_default_mode_under_jit_fills(dtype, fill):
    """Documented: a traced out-of-range index fills NaN / signed min / unsigned max / True."""
    x = (jnp.arange(6).reshape(3, 2) % 2).astype(dtype)
    out = np.asarray(jax.jit(lambda a, i: jgather.gather(a, 1, i))(x, BAD))
    expected = np.array([[np.asarray(x)[0, 0]], [fill], [fill]]).astype(out.dtype)
    assert_matches(out, expected, exact=True)
    # take_along_dim with a dim wraps -1 (torch does); 23 is out of range and fills.
    out = np.asarray(jax.jit(lambda a, i: jgather.take_along_dim(a, i, 1))(x, BAD))
    xs = np.asarray(x)
    expected = np.array([[xs[0, 0]], [fill], [xs[2, 1]]]).astype(out.dtype)
    assert_matches(out, expected, exact=True)
    # With dim=None nothing wraps: -1 fills too.
    out = np.asarray(jax.jit(lambda a, i: jgather.take_along_dim(a, i))(x, jnp.array([-1, 2])))
    assert_matches(out, np.array([fill, xs.reshape(-1)[2]]).astype(out.dtype), exact=True)
    out = np.asarray(jax.jit(lambda a, i: jgather.index_select(a, 0, i))(x, jnp.array([1, 3, -1])))
    assert_matches(out[0], np.asarray(x)[1])
    assert_matches(out[1:], np.full((2, 2), fill).astype(out.dtype), exact=True)


def test_gather_default_mode_under_vmap_fills():
    """Under vmap the index is traced too, so the same documented fill applies."""
    out = jax.vmap(lambda i: jgather.gather(X, 1, i))(jnp.stack([I1, BAD]))
    np.testing.assert_array_equal(out[0], [[0.0], [3.0], [5.0]])
    np.testing.assert_array_equal(out[1], [[0.0], [np.nan], [np.nan]])


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_gather_modes_fill_clip_promise(jit):
    wrap = jax.jit if jit else (lambda f: f)
    fill = wrap(lambda a, i: jgather.gather(a, 1, i, mode="fill", fill_value=-7.0))
    assert_matches(fill(X, BAD), np.array([[0.0], [-7.0], [-7.0]], np.float32))
    fill_default = wrap(lambda a, i: jgather.gather(a, 1, i, mode="fill"))
    assert_matches(fill_default(X, BAD), np.array([[0.0], [np.nan], [np.nan]], np.float32))
    clip = wrap(lambda a, i: jgather.gather(a, 1, i, mode="clip"))
    # 23 -> 1, -1 -> 0: [x[0, 0], x[1, 1], x[2, 0]].
    assert_matches(clip(X, BAD), np.array([[0.0], [3.0], [4.0]], np.float32))
    promise = wrap(lambda a, i: jgather.gather(a, 1, i, mode="promise_in_bounds"))
    assert_matches(promise(X, I1), np.array([[0.0], [3.0], [5.0]], np.float32))
    # The same modes on take_along_dim and index_select.
    tad = wrap(lambda a, i: jgather.take_along_dim(a, i, 1, mode="fill", fill_value=-7.0))
    assert_matches(
        tad(X, jnp.array([[0], [23], [1]])), np.array([[0.0], [-7.0], [5.0]], np.float32)
    )
    # Below -size a negative index is out of range: clip takes it to 0 (-2 wraps to 0 too).
    tad = wrap(lambda a, i: jgather.take_along_dim(a, i, 1, mode="clip"))
    assert_matches(
        tad(X, jnp.array([[0], [-3], [-2]])), np.array([[0.0], [2.0], [4.0]], np.float32)
    )
    tad = wrap(lambda a, i: jgather.take_along_dim(a, i, None, mode="clip"))
    assert_matches(tad(X, jnp.array([9, -9, 2])), np.array([5.0, 0.0, 2.0], np.float32))
    sel = wrap(lambda a, i: jgather.index_select(a, 0, i, mode="clip"))
    assert_matches(sel(X, jnp.array([5, -2])), np.array([[4.0, 5.0], [0.0, 1.0]], np.float32))
    sel = wrap(lambda a, i: jgather.index_select(a, 0, i, mode="fill", fill_value=1.5))
    assert_matches(sel(X, jnp.array([2, 3])), np.array([[4.0, 5.0], [1.5, 1.5]], np.float32))


def test_fill_value_must_fit_an_integer_input():
    xi = jnp.arange(6).reshape(3, 2)
    with pytest.raises(ValueError, match="fill_value"):
        jgather.gather(xi, 1, BAD, mode="fill", fill_value=0.5)
    out = jgather.gather(xi, 1, BAD, mode="fill", fill_value=-1)
    assert_matches(out, np.array([[0], [-1], [-1]], np.int32))


_SCATTER_JIT = {
    "scatter": (
        lambda a, i, s, **kw: jgather.scatter(a, 1, i, s, **kw),
        [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ),
    "scatter_add": (
        lambda a, i, s, **kw: jgather.scatter_add(a, 1, i, s, **kw),
        [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ),
    "scatter_reduce-sum": (
        lambda a, i, s, **kw: jgather.scatter_reduce(a, 1, i, s, "sum", **kw),
        [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ),
    "scatter_reduce-mean-noself": (
        lambda a, i, s, **kw: jgather.scatter_reduce(a, 1, i, s, "mean", include_self=False, **kw),
        [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ),
    "scatter_reduce-amax": (
        lambda a, i, s, **kw: jgather.scatter_reduce(a, 1, i, s, "amax", **kw),
        [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]],
    ),
}


@pytest.mark.parametrize("name", list(_SCATTER_JIT))
def test_scatter_default_mode_under_jit_drops(name):
    """Documented: traced out-of-range updates are dropped; in-range ones still land."""
    op, expected = _SCATTER_JIT[name]
    src = jnp.ones((3, 1), jnp.float32)
    out = jax.jit(op)(X, BAD, src)
    # Row 0 writes 1 at [0, 0] (x[0, 0] is 0: set, add, sum, mean-without-self and amax all
    # give 1 there); rows 1 and 2 are dropped and keep x.
    assert_matches(out, np.array(expected, np.float32), exact=True)
    # mode='drop' does the same eagerly, without IndexError.
    assert_matches(op(X, BAD, src, mode="drop"), np.array(expected, np.float32), exact=True)


def test_scatter_modes_clip_and_promise():
    src = jnp.array([[10.0], [20.0], [30.0]])
    for wrap in (lambda f: f, jax.jit):
        add = wrap(lambda a, i, s: jgather.scatter_add(a, 1, i, s, mode="clip"))
        # 23 -> 1 and -1 -> 0.
        assert_matches(
            add(X, BAD, src), np.array([[10.0, 1.0], [2.0, 23.0], [34.0, 5.0]], np.float32)
        )
        sr = wrap(lambda a, i, s: jgather.scatter_reduce(a, 1, i, s, "amin", mode="clip"))
        assert_matches(sr(X, BAD, src), np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], np.float32))
        st = wrap(lambda a, i, s: jgather.scatter(a, 1, i, s, mode="promise_in_bounds"))
        assert_matches(
            st(X, I1, src), np.array([[10.0, 1.0], [2.0, 20.0], [4.0, 30.0]], np.float32)
        )


def test_scatter_default_mode_under_vmap_drops():
    out = jax.vmap(lambda i: jgather.scatter_add(X, 1, i, S1))(jnp.stack([I1, BAD]))
    np.testing.assert_array_equal(out[0], [[1.0, 1.0], [2.0, 4.0], [4.0, 6.0]])
    np.testing.assert_array_equal(out[1], [[1.0, 1.0], [2.0, 3.0], [4.0, 5.0]])


# --------------------------------------------------------------------------------------------
# checkify reports out-of-range values under jit with the default mode.


def _traced_reduce(reduce):
    return lambda a, i: jgather.scatter_reduce(
        a, 1, i, jnp.ones(i.shape, a.dtype), reduce, include_self=False
    )


_CHECKIFY = {
    "gather": lambda a, i: jgather.gather(a, 1, i),
    "take_along_dim": lambda a, i: jgather.take_along_dim(a, i, 1),
    "take_along_dim-flat": lambda a, i: jgather.take_along_dim(a, i),
    "index_select": lambda a, i: jgather.index_select(a, 1, i[:, 0]),
    "scatter": lambda a, i: jgather.scatter(a, 1, i, jnp.ones(i.shape, a.dtype)),
    "scatter-scalar": lambda a, i: jgather.scatter(a, 1, i, 2.0),
    "scatter_add": lambda a, i: jgather.scatter_add(a, 1, i, jnp.ones(i.shape, a.dtype)),
    **{f"scatter_reduce-{r}": _traced_reduce(r) for r in ("sum", "prod", "mean", "amax", "amin")},
}


@pytest.mark.parametrize("name", list(_CHECKIFY))
def test_checkify_reports_out_of_range_under_jit(name):
    checked = checkify.checkify(jax.jit(_CHECKIFY[name]), errors=checkify.index_checks)
    err, _ = checked(X, I1)
    assert err.get() is None, err.get()
    for bad, value in ((jnp.array([[0], [23], [1]]), "23"), (jnp.array([[0], [1], [-5]]), "-5")):
        err, _ = checked(X, bad)
        message = err.get()
        assert message is not None, f"{name}: checkify did not report index {value}"
        assert re.search(rf"index {value}\b", message) or "out-of-bounds" in message, message
        with pytest.raises(checkify.JaxRuntimeError):
            err.throw()


def test_checkify_is_quiet_when_mode_clips():
    """mode='clip' makes every index valid: nothing to report."""
    for call in (
        lambda a, i: jgather.gather(a, 1, i, mode="clip"),
        lambda a, i: jgather.scatter_add(a, 1, i, jnp.ones(i.shape, a.dtype), mode="clip"),
    ):
        err, _ = checkify.checkify(jax.jit(call), errors=checkify.index_checks)(X, BAD)
        assert err.get() is None, err.get()


@pytest.mark.parametrize("name", list(_ALL))
def test_dim_must_be_a_python_int(name):
    """torch: gather(): argument 'dim' must be int, not float. Static under jit, so an array
    dim cannot work either."""
    _raises(TypeError, lambda i: _ALL[name](X, 1.0, i), I1, name, "dim", "1.0")
    _raises(TypeError, lambda i: _ALL[name](X, jnp.array(1), i), I1, name, "dim")


# --------------------------------------------------------------------------------------------
# Scalars that do not fit the input dtype, the int32 key limit, empty indices.

_SCALAR_CASES = [
    (2**40, jnp.int32, "outside"),
    (1e10, jnp.int32, "outside"),
    (300, jnp.uint8, "outside"),
    (-256, jnp.uint8, "outside [-255, 255]"),  # -1 to -255 wrap, as in torch
    (-0.5, jnp.uint8, "outside [0, 255]"),
    (127.5, jnp.int8, "outside [-128, 127]"),
    (float("nan"), jnp.int32, "not finite"),
    (1 + 2j, jnp.float32, "imaginary"),
    (1e6, jnp.float16, "outside"),
]


@pytest.mark.parametrize(("value", "dtype", "why"), _SCALAR_CASES)
def test_scalar_src_and_fill_value_that_do_not_fit_raise_like_torch(value, dtype, why):
    """torch: 'value cannot be converted to type X without overflow'; never a wrap, a
    saturation, a dropped imaginary part or a bare OverflowError."""
    x = jnp.zeros(3, dtype)
    idx = jnp.array([1])
    calls = {
        "scatter": lambda: jgather.scatter(x, 0, idx, value),
        "scatter_add": lambda: jgather.scatter_add(x, 0, idx, value),
        "scatter_reduce": lambda: jgather.scatter_reduce(x, 0, idx, value, "amax"),
        "gather": lambda: jgather.gather(x, 0, idx, mode="fill", fill_value=value),
        "take_along_dim": lambda: jgather.take_along_dim(x, idx, 0, fill_value=value),
        "index_select": lambda: jgather.index_select(x, 0, idx, mode="fill", fill_value=value),
    }
    for fn, call in calls.items():
        with pytest.raises(ValueError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{fn}:"), message
        assert "cannot be converted" in message and why in message, message
        assert "without overflow" in message and "wider dtype" in message, message


def test_scalars_that_fit_are_accepted():
    out = jgather.scatter(jnp.zeros(3, jnp.uint8), 0, jnp.array([1]), 255)
    assert_matches(out, np.array([0, 255, 0], np.uint8))
    for value, wrapped in ((-1, 255), (-255, 1)):  # torch wraps these (two's complement)
        out = jgather.scatter(jnp.zeros(3, jnp.uint8), 0, jnp.array([1]), value)
        assert_matches(out, np.array([0, wrapped, 0], np.uint8))
    out = jgather.scatter(jnp.zeros(3, jnp.int32), 0, jnp.array([1]), 2.5)  # truncates (torch)
    assert_matches(out, np.array([0, 2, 0], np.int32))
    out = jgather.scatter(jnp.zeros(3, jnp.float32), 0, jnp.array([1]), 2**40)
    assert_matches(out, np.array([0, 2.0**40, 0], np.float32))
    out = jgather.scatter(jnp.zeros(3, jnp.float32), 0, jnp.array([1]), 1 + 0j)
    assert_matches(out, np.array([0, 1, 0], np.float32))


@pytest.mark.parametrize("fn", ["scatter_add", "scatter_reduce", "scatter"])
def test_int32_key_limit_error_names_the_function(fn):
    call = {
        "scatter_add": lambda x, i, s: jgather.scatter_add(x, 0, i, s),
        "scatter_reduce": lambda x, i, s: jgather.scatter_reduce(x, 0, i, s, "sum"),
        "scatter": lambda x, i, s: jgather.scatter(x, 0, i, s),
    }[fn]
    big = jax.ShapeDtypeStruct((2**31,), jnp.int8)
    with pytest.raises(ValueError, match=rf"^{fn}: .*more than int32 can address"):
        jax.eval_shape(call, big, jnp.zeros(2, jnp.int32), jnp.zeros(2, jnp.int8))


def test_empty_index_with_larger_off_dim_sizes_is_empty_as_torch():
    """torch compares only non-empty index sizes with input: (2, 3) with index (0, 5)."""
    x = jnp.arange(6.0).reshape(2, 3)
    empty = jnp.zeros((0, 5), jnp.int32)
    for run in (lambda f: f, jax.jit):
        assert run(lambda x, i: jgather.gather(x, 0, i))(x, empty).shape == (0, 5)
        for f in (
            lambda x, i: jgather.scatter(x, 0, i, jnp.zeros((0, 5))),
            lambda x, i: jgather.scatter_add(x, 0, i, jnp.zeros((0, 5))),
            lambda x, i: jgather.scatter_reduce(x, 0, i, jnp.zeros((0, 5)), "mean"),
            lambda x, i: jgather.scatter(x, 0, i, 1.0),
        ):
            assert_matches(run(f)(x, empty), np.asarray(x))
