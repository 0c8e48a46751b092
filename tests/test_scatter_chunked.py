"""The per-element scatter that runs in chunks of the index (``_scatter._chunked_reduce``).

A large multi-dimensional per-element index scatters a few thousand index rows at a time in a
loop (issue 10). Here the chunk size is made small so that small arrays take that path; each
case first checks, on the compiled HLO, that the loop is really there, then compares values
with a NumPy ``ufunc.at`` reference (plain, jit, vmap), with and without ``include_self``,
along every axis, with remainder rows, out-of-range values dropped, and gradients.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify

import jgather
from jgather import _scatter

UFUNC = {"sum": np.add, "prod": np.multiply, "amax": np.maximum, "amin": np.minimum}
IDENTITY = {"sum": 0.0, "prod": 1.0, "amax": -np.inf, "amin": np.inf}


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch):
    monkeypatch.setattr(_scatter, "_CHUNK_ELEMENTS", 24)
    jax.clear_caches()  # programs traced with the default chunk size must not be reused
    yield
    jax.clear_caches()


def _reference(x, dim, index, src, reduce, include_self):
    out = np.array(x, np.float64)
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    coords = tuple(np.broadcast_arrays(*grid))
    if not include_self:
        out[coords] = IDENTITY[reduce]
    UFUNC[reduce].at(out, coords, np.asarray(src, np.float64)[tuple(slice(n) for n in index.shape)])
    if not include_self:  # untouched positions keep input
        touched = np.zeros(out.shape, bool)
        touched[coords] = True
        out = np.where(touched, out, x)
    return out


def _loops(fn, *args):
    return jax.jit(fn).lower(*args).compile().as_text().count(" while(")


@pytest.mark.parametrize("reduce", list(UFUNC))
@pytest.mark.parametrize("include_self", [True, False])
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
    want = _reference(x, dim, index, src, reduce, include_self)
    for got in (fn(x, index, src), jax.jit(fn)(x, jnp.asarray(index), src)):
        np.testing.assert_allclose(np.asarray(got), want, rtol=2e-5)
    batched = jax.vmap(fn)(
        np.stack([x, x + 1]), np.stack([index, index[::-1]]), np.stack([src, src])
    )
    np.testing.assert_allclose(np.asarray(batched[0]), want, rtol=2e-5)
    np.testing.assert_allclose(
        np.asarray(batched[1]),
        _reference(x + 1, dim, index[::-1], src, reduce, include_self),
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


def test_chunked_gradients_match_the_one_piece_scatter(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 3)).astype(np.float32)
    index = rng.integers(0, 8, (40, 3)).astype(np.int32)
    src = rng.standard_normal((40, 3)).astype(np.float32)

    def loss(x, s):
        return (jgather.scatter_reduce(x, 0, index, s, "amax") ** 2).sum()

    chunked = jax.grad(loss, argnums=(0, 1))(x, src)
    monkeypatch.setattr(_scatter, "_CHUNK_ELEMENTS", 1 << 30)
    jax.clear_caches()
    whole = jax.grad(loss, argnums=(0, 1))(x, src)
    for a, b in zip(chunked, whole, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
