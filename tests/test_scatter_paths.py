"""The scatter lowerings that only large indices take, exercised on small arrays.

Two paths are chosen by size: a large multi-dimensional per-element index scatters
a few thousand index rows at a time in a loop (``jgather._rows.chunked_reduce``), and a large
opaque index spanning the input's trailing axes gets the run-time test for torch's
``index.expand`` idiom (two chained ``lax.cond``). Here the size thresholds are made small so
that small arrays take those paths; each case first checks, on the compiled HLO, that the path
is really there, then compares values with a NumPy ``ufunc.at`` reference (plain, jit, vmap),
with and without ``include_self``, along every axis, with remainder rows, out-of-range values
dropped, and gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from pipelines import users_compile
from reference import scatter_reduce as ref_scatter_reduce

import jgather
from jgather import _engine, _rows


@pytest.fixture(autouse=True, scope="module")
def small_thresholds():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_rows, "_CHUNK_ELEMENTS", 24)
        patch.setattr(_engine, "_RUNTIME_ROWS_MIN", 16)
        jax.clear_caches()  # programs traced with the default thresholds must not be reused
        yield
    jax.clear_caches()  # nor these by later modules


def _loops(fn, *args):
    return users_compile(jax.jit(fn).lower(*args)).as_text().count(" while(")


@pytest.mark.parametrize(
    "reduce, include_self", [("sum", False), ("prod", True), ("amax", False), ("amin", True)]
)
@pytest.mark.parametrize(
    "x_shape, index_shape, dim",
    [((9, 5), (53, 5), 0), ((40, 7), (40, 3), 1), ((30, 4, 6), (31, 3, 6), 0)],
)
def test_chunked_matches_reference(reduce, include_self, x_shape, index_shape, dim):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 1.5, x_shape).astype(np.float32)
    index = rng.integers(0, x_shape[dim], index_shape).astype(np.int32)
    src = rng.uniform(0.5, 1.5, index_shape).astype(np.float32)

    def fn(x, i, s):
        return jgather.scatter_reduce(x, dim, i, s, reduce, include_self=include_self)

    assert _loops(fn, x, index, src) >= 1  # the chunked path, not the one-piece scatter
    want = ref_scatter_reduce(x, dim, index, src, reduce, include_self)
    for got in (fn(x, index, src), jax.jit(fn)(x, jnp.asarray(index), src)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)
    batched = jax.vmap(fn)(
        np.stack([x, x + 1]), np.stack([index, index[::-1]]), np.stack([src, src])
    )
    np.testing.assert_allclose(np.asarray(batched[0]), want, rtol=2e-5)
    np.testing.assert_allclose(
        np.asarray(batched[1]),
        ref_scatter_reduce(x + 1, dim, index[::-1], src, reduce, include_self),
        rtol=2e-5,
    )


def test_chunked_drops_out_of_range_and_checkify_reports_it():
    rng = np.random.default_rng(1)
    x = np.zeros((6, 4), np.float32)
    index = rng.integers(0, 6, (50, 4)).astype(np.int32)
    index[17, 2] = 6  # out of range: dropped under jit
    index[33, 0] = -1
    src = np.ones((50, 4), np.float32)
    fn = jax.jit(lambda x, i, s: jgather.scatter_add(x, 0, i, s))
    assert _loops(fn, x, index, src) >= 1
    keep = (index >= 0) & (index < 6)
    want = np.zeros((6, 4))
    np.add.at(want, (index[keep], np.nonzero(keep)[1]), 1.0)
    np.testing.assert_array_equal(np.asarray(fn(x, jnp.asarray(index), src)), want)
    err, _ = checkify.checkify(fn, errors=checkify.index_checks)(x, jnp.asarray(index), src)
    message = err.get()
    assert message is not None
    assert "index 6" in message or "index -1" in message, message


def test_chunked_gradients_match_the_one_piece_scatter():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    index = rng.integers(0, 8, (40, 3)).astype(np.int32)
    src = rng.standard_normal((40, 3)).astype(np.float32)

    def loss(x, s):
        return (jgather.scatter_reduce(x, 0, index, s, "amax") ** 2).sum()

    chunked = jax.grad(loss, argnums=(0, 1))(x, src)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_rows, "_CHUNK_ELEMENTS", 1 << 30)
        jax.clear_caches()
        whole = jax.grad(loss, argnums=(0, 1))(x, src)
    jax.clear_caches()
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def _conditionals(fn, *args):
    return users_compile(jax.jit(fn).lower(*args)).as_text().count(" conditional(")


@pytest.mark.parametrize("reduce, include_self", [("sum", True), ("mean", True), ("amax", False)])
@pytest.mark.parametrize("kind", ["expanded", "first_slice_constant", "per_element"])
@pytest.mark.parametrize("dim", [0, 1])
def test_run_time_whole_rows_test(reduce, include_self, kind, dim):
    """An opaque index: expanded (whole rows), constant in its first trailing slice only (the
    cheap test passes, the full one fails), and per element (the cheap test fails)."""
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, (3, 7, 4, 5)).astype(np.float32)
    x = x if dim == 1 else x[0]
    lead_shape = (3, 30) if dim == 1 else (30,)
    trailing = x.shape[dim + 1 :]
    rows = rng.integers(0, x.shape[dim], lead_shape)
    index = np.broadcast_to(rows.reshape(lead_shape + (1,) * len(trailing)), lead_shape + trailing)
    index = np.ascontiguousarray(index).astype(np.int32)
    if kind == "first_slice_constant":
        last = index.reshape(*lead_shape, -1)[(-1,) * len(lead_shape)]  # a view
        last[-1] = (last[-1] + 1) % x.shape[dim]  # one late element differs
    elif kind == "per_element":
        index = rng.integers(0, x.shape[dim], index.shape).astype(np.int32)
    src = rng.uniform(0.5, 1.5, index.shape).astype(np.float32)

    def fn(x, i, s):
        return jgather.scatter_reduce(x, dim, i, s, reduce, include_self=include_self)

    assert _conditionals(fn, x, index, src) == 2  # the run-time test is there
    got = jax.jit(fn)(x, jnp.asarray(index), src)
    want = ref_scatter_reduce(x, dim, index, src, reduce, include_self)
    np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)
    batched = jax.vmap(fn, (None, 0, 0))(x, np.stack([index, index]), np.stack([src, src]))
    np.testing.assert_allclose(np.asarray(batched[1]), want, rtol=2e-5)


@pytest.mark.parametrize("kind", ["expanded", "per_element"])
def test_segment_reductions_take_the_engine_paths(kind):
    """``jgather.segment`` hands its scatters to the same engine: a large opaque index gets
    the chunked loop and the run-time whole-rows test there too, with values, gradients and
    vmap equal to a NumPy ``ufunc.at`` reference."""
    rng = np.random.default_rng(4)
    rows = rng.integers(0, 9, (40, 1))
    index = np.broadcast_to(rows, (40, 6)) if kind == "expanded" else rng.integers(0, 9, (40, 6))
    index = np.ascontiguousarray(index).astype(np.int32)
    src = rng.uniform(0.5, 1.5, (40, 6)).astype(np.float32)
    cols = np.broadcast_to(np.arange(6), (40, 6))

    def fn(s, i):
        return jgather.segment.scatter_sum(s, i, dim=0, dim_size=9)

    assert _conditionals(fn, src, index) == 2  # the run-time test
    assert _loops(fn, src, index) >= 1  # the chunks
    want = np.zeros((9, 6), np.float32)
    np.add.at(want, (index, cols), src)
    np.testing.assert_allclose(np.asarray(jax.jit(fn)(src, jnp.asarray(index))), want, rtol=1e-6)
    # The derivative rule runs without the run-time strategies; d(sum of out * w)/d src reads
    # w at each entry's segment.
    w = rng.standard_normal((9, 6)).astype(np.float32)
    grad = jax.jit(jax.grad(lambda s, i: (fn(s, i) * w).sum()))(src, jnp.asarray(index))
    np.testing.assert_allclose(np.asarray(grad), w[index, cols], rtol=1e-6)
    batched = jax.vmap(fn)(np.stack([src, 2 * src]), np.stack([index, index[::-1]]))
    other = np.zeros((9, 6), np.float32)
    np.add.at(other, (index[::-1], cols), 2 * src)
    np.testing.assert_allclose(np.asarray(batched[1]), other, rtol=1e-6)
