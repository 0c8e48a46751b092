"""Masking on a batch-sharded 1-D mesh of 8 host devices: same values, same sharding, no
collectives in the compiled program."""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jgather

COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py sets 8 host devices)"
)


@pytest.fixture(scope="module")
def mesh():
    return Mesh(np.array(jax.devices()[:8]), ("batch",))


def shard(mesh, x):
    return jax.device_put(x, NamedSharding(mesh, P("batch")))


def assert_batch_sharded(mesh, *arrays):
    for a in arrays:
        expected = NamedSharding(mesh, P("batch"))
        assert a.sharding.is_equivalent_to(expected, a.ndim), (a.shape, a.sharding)


def assert_no_collectives(fn, *args):
    hlo = jax.jit(fn).lower(*args).compile().as_text()
    found = sorted(set(COLLECTIVES.findall(hlo)))
    assert not found, f"collectives in the compiled program: {found}"


N, L, D, RATIO = 16, 196, 4, 0.75
X = np.random.default_rng(0).standard_normal((N, L, D)).astype(np.float32)


def test_random_masking_per_sample_keys(mesh):
    keys = jax.random.split(jax.random.key(0), N)
    fn = lambda k, x: jgather.random_masking(k, x, RATIO)
    expected = fn(keys, X)
    sharded_args = (shard(mesh, keys), shard(mesh, X))
    out = jax.jit(fn)(*sharded_args)
    chex.assert_trees_all_equal(tuple(out), tuple(expected))
    assert_batch_sharded(mesh, *out)
    assert_no_collectives(fn, *sharded_args)
    # Eager (the library's own jit) on sharded inputs too.
    chex.assert_trees_all_equal(tuple(fn(*sharded_args)), tuple(expected))


def test_random_masking_one_key(mesh):
    key = jax.random.key(1)
    fn = lambda k, x: jgather.random_masking(k, x, RATIO)
    expected = fn(key, X)
    xs = shard(mesh, X)
    out = jax.jit(fn)(key, xs)
    chex.assert_trees_all_equal(tuple(out), tuple(expected))
    assert_batch_sharded(mesh, *out)
    assert_no_collectives(fn, key, xs)


def test_noise_unshuffle_and_apply_mask(mesh):
    noise = np.random.default_rng(1).random((N, L), dtype=np.float32)
    token = jnp.arange(D, dtype=jnp.float32)

    def fn(noise, x):
        out = jgather.random_masking(None, x, RATIO, noise=noise)
        full = jgather.unshuffle(out.x_masked, out, token)
        again = jgather.apply_mask(x, out.mask, out.x_masked.shape[1])
        return (*out, full, *again)

    expected = fn(noise, X)
    args = (shard(mesh, noise), shard(mesh, X))
    out = jax.jit(fn)(*args)
    chex.assert_trees_all_equal(out, expected)
    assert_batch_sharded(mesh, *out)
    assert_no_collectives(fn, *args)
