"""The ops and jgather.segment on a batch-sharded 1-D mesh of 8 host devices, for both kinds of mesh:
``jax.make_mesh`` (explicit axes, jax 0.10's default) and ``Mesh(...)`` (auto axes).

Values equal the unsharded run, eagerly and under jax.jit; the output stays batch-sharded;
sharding along an axis other than ``dim`` needs no collectives. One known gap is recorded as
a strict xfail: with an *auto*-axis mesh under the caller's ``jax.jit`` the input's sharding
is not visible at trace time, and XLA's partitioner all-gathers around the flattened-key
scatter.

A program whose collectives are counted is compiled with ``pipelines.users_compile``: XLA's
default HLO passes, the SPMD partitioner among them, so the collectives counted are those users
get (tests/test_sharding.py checks that the unoptimised LLVM it keeps leaves the HLO as it is).
The other programs compile with the session's faster settings (tests/pipelines.py).
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from pipelines import users_compile

import jgather
from jgather import _engine, _sharding, segment

COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py sets 8 host devices)"
)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((16, 6)).astype(np.float32)
IDX = RNG.integers(0, 6, (16, 3)).astype(np.int32)
S = RNG.standard_normal((16, 3)).astype(np.float32)
SEL = np.array([0, 5, 2, 5], np.int32)
COLS = np.array([5, 0, 5], np.int32)  # one column index per column of S
# embedding and embedding_bag read a replicated table [6, 4] at the batch-sharded index: each
# example's rows (and each 2-D input row's bag) are its shard's own.
TABLE = RNG.standard_normal((6, 4)).astype(np.float32)

GATHERS = {
    "gather": lambda x, i, s: jgather.gather(x, 1, i),
    "take_along_dim": lambda x, i, s: jgather.take_along_dim(x, i, 1),
    "index_select": lambda x, i, s: jgather.index_select(x, 1, SEL),
    "embedding": lambda x, i, s: jgather.embedding(i, TABLE, padding_idx=0),
}
SCATTERS = {
    "scatter": lambda x, i, s: jgather.scatter(x, 1, i, s),
    "scatter_scalar": lambda x, i, s: jgather.scatter(x, 1, i, 1.5),
    "scatter_add": lambda x, i, s: jgather.scatter_add(x, 1, i, s),
    "scatter_reduce_mean": lambda x, i, s: jgather.scatter_reduce(x, 1, i, s, "mean"),
    "scatter_reduce_amax": lambda x, i, s: jgather.scatter_reduce(
        x, 1, i, s, "amax", include_self=False
    ),
    # torch's index family moves whole columns here (one index for every row).
    "index_add": lambda x, i, s: jgather.index_add(x, 1, COLS, s, alpha=2.0),
    "index_copy": lambda x, i, s: jgather.index_copy(x, 1, COLS, s),
    "index_fill": lambda x, i, s: jgather.index_fill(x, 1, COLS, -1.0),
    "index_reduce_amax": lambda x, i, s: jgather.index_reduce(
        x, 1, COLS, s, "amax", include_self=False
    ),
    "embedding_bag": lambda x, i, s: jgather.embedding_bag(
        i, TABLE, mode="sum", per_sample_weights=s
    ),
    "embedding_bag max": lambda x, i, s: jgather.embedding_bag(i, TABLE, mode="max"),
}
# Writes at static positions (and a select), along axis 1: per shard, like the gathers.
WRITES = {
    "masked_fill": lambda x, i, s: jgather.masked_fill(x, x > 0, -1.0),
    "select_scatter": lambda x, i, s: jgather.select_scatter(x, s[:, 0], 1, -2),
    "slice_scatter": lambda x, i, s: jgather.slice_scatter(x, s, 1, 1, None, 2),
    "diagonal_scatter": lambda x, i, s: jgather.diagonal_scatter(
        x.reshape(-1, 2, 3), s[:, :2], 0, 1, 2
    ).reshape(-1, 6),
}
SORTED = np.sort(IDX, axis=1)
INDPTR = np.concatenate([np.zeros((16, 1), np.int32), np.sort(IDX, axis=1)], axis=1)
RANGES = np.concatenate(  # 3 ranges per row covering the 6 columns
    [np.zeros((16, 1), np.int32), np.sort(IDX[:, :2], axis=1), np.full((16, 1), 6, np.int32)],
    axis=1,
)
# jgather.segment along axis 1 of the same arrays (per-row segments, the batch sharded).
SEGMENT_SCATTERS = {
    "segment.scatter_sum": lambda x, i, s: segment.scatter_sum(s, i, dim=1, dim_size=6),
    "segment.scatter_mean": lambda x, i, s: segment.scatter_mean(s, i, 1, out=x),
    "segment.scatter_max": lambda x, i, s: segment.scatter_max(s, i, dim=1, dim_size=6)[0],
    "segment.scatter_std": lambda x, i, s: segment.scatter_std(s, i, dim=1, dim_size=6),
    "segment.scatter_softmax": lambda x, i, s: segment.scatter_softmax(s, i, 1, dim_size=6),
    "segment.segment_coo": lambda x, i, s: segment.segment_coo(s, SORTED, dim_size=6),
    "segment.segment_csr": lambda x, i, s: segment.segment_csr(x, INDPTR),
}
SEGMENT_GATHERS = {
    "segment.gather_coo": lambda x, i, s: segment.gather_coo(x, i),
    "segment.gather_csr": lambda x, i, s: segment.gather_csr(s, RANGES, out=x),
}
OPS = {**GATHERS, **WRITES, **SCATTERS, **SEGMENT_SCATTERS, **SEGMENT_GATHERS}


@pytest.fixture(scope="module", params=["make_mesh", "Mesh"])
def mesh(request):
    if request.param == "make_mesh":
        mesh = jax.make_mesh((8,), ("batch",))
        assert mesh.axis_types == (AxisType.Explicit,)  # jax 0.10's default
        return mesh
    return Mesh(np.array(jax.devices()[:8]), ("batch",))


def _sharded(mesh):
    sh = NamedSharding(mesh, P("batch"))
    return tuple(jax.device_put(a, sh) for a in (X, IDX, S))


def _collectives(compiled):
    return sorted(set(COLLECTIVES.findall(compiled.as_text())))


def _explicit(mesh):
    return mesh.axis_types == (AxisType.Explicit,)


def test_values_and_sharding_eager_and_jitted(mesh):
    args = _sharded(mesh)
    expected = {n: f(X, IDX, S) for n, f in OPS.items()}
    jitted = jax.jit(lambda x, i, s: {n: f(x, i, s) for n, f in OPS.items()})(*args)
    for name, fn in OPS.items():
        eager = fn(*args)
        np.testing.assert_array_equal(eager, expected[name], err_msg=name)
        np.testing.assert_array_equal(jitted[name], expected[name], err_msg=name)
        outs = (eager, jitted[name])
        if name.startswith(("segment.", "embedding_bag")) and not _explicit(mesh):
            # Under jit an auto-axis sharding is invisible at trace time; segment outputs
            # start from fresh buffers, so XLA's partitioner may replicate them.
            outs = (eager,)
        for out in outs:
            assert out.sharding.is_equivalent_to(NamedSharding(mesh, P("batch")), 2), (
                name,
                out.sharding,
            )


def test_no_collectives_for_gathers_and_static_writes(mesh):
    args = _sharded(mesh)
    fns = [*GATHERS.values(), *WRITES.values()]
    compiled = jax.jit(lambda x, i, s: [f(x, i, s) for f in fns]).lower(*args)
    assert _collectives(users_compile(compiled)) == []


def test_masked_scatter_and_select_per_example_on_an_explicit_mesh(mesh):
    """Their order is row-major over the whole array, so over a sharded batch they run per
    example (jax.vmap): then each shard counts its own mask, with no collectives."""
    if not _explicit(mesh):
        pytest.skip("explicit mesh only")
    per_example = lambda x: (
        jgather.masked_scatter(x, x > 0, x[::-1] * 2),
        jgather.masked_select(x, x > 0, size=6, fill_value=7.0),
    )
    batched = jax.vmap(per_example)
    (x, _, _) = _sharded(mesh)
    compiled = users_compile(jax.jit(batched).lower(x))
    expected = batched(X)
    for got in (batched(x), compiled(x)):
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)
            assert g.sharding.is_equivalent_to(NamedSharding(mesh, P("batch")), 2)
    assert _collectives(compiled) == []


def test_no_collectives_for_scatters_jitted_on_an_explicit_mesh(mesh):
    if not _explicit(mesh):
        pytest.skip("see test_jitted_scatters_on_an_auto_mesh_gather")
    args = _sharded(mesh)
    fns = [*SCATTERS.values(), *SEGMENT_SCATTERS.values(), *SEGMENT_GATHERS.values()]
    compiled = jax.jit(lambda x, i, s: [f(x, i, s) for f in fns]).lower(*args)
    assert _collectives(users_compile(compiled)) == []


def test_no_collectives_for_eager_scatters(mesh):
    """Eagerly jgather sees the input's sharding on both mesh kinds and maps over shards."""
    x, i, s = _sharded(mesh)
    layout = None if _explicit(mesh) else _sharding.auto_layout(x)
    assert _explicit(mesh) or layout is not None
    for op in ("set", "sum", "mean", "amax"):
        lowered = _engine.scatter_core.lower(
            x, i, s, dim=1, mode=None, op=op, include_self=op != "amax", layout=layout
        )
        assert _collectives(users_compile(lowered)) == [], op


@pytest.mark.xfail(strict=True, reason="auto axes: sharding unknown at trace time under jit")
def test_jitted_scatters_on_an_auto_mesh_gather(mesh):
    if _explicit(mesh):
        pytest.skip("explicit meshes are covered above")
    args = _sharded(mesh)
    compiled = jax.jit(lambda x, i, s: jgather.scatter_add(x, 1, i, s)).lower(*args)
    assert _collectives(users_compile(compiled)) == []


def test_gradients_on_an_explicit_mesh(mesh):
    if not _explicit(mesh):
        pytest.skip("explicit mesh only")
    x, i, s = _sharded(mesh)
    loss = lambda x, i, s: (jgather.scatter_reduce(x, 1, i, s, "mean") ** 2).sum()
    got = jax.jit(jax.grad(loss, argnums=(0, 2)))(x, i, s)
    expected = jax.grad(loss, argnums=(0, 2))(jnp.asarray(X), jnp.asarray(IDX), jnp.asarray(S))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_int64_indices_with_x64_on_a_sharded_mesh(mesh):
    """The full-width probe (x64) must not trip over an explicitly sharded index."""
    with jax.enable_x64(True):
        sh = NamedSharding(mesh, P("batch"))
        x = jax.device_put(X, sh)
        i = jax.device_put(IDX.astype(np.int64), sh)
        s = jax.device_put(S, sh)
        jitted = jax.jit(lambda x, i, s: {n: f(x, i, s) for n, f in OPS.items()})(x, i, s)
        for name, fn in OPS.items():
            expected = fn(X, IDX.astype(np.int64), S)
            np.testing.assert_array_equal(jitted[name], expected, err_msg=name)


def test_vmap_over_a_batch_sharded_on_an_explicit_mesh(mesh):
    """vmap over the sharded batch axis: per-example calls run per shard, no collectives.

    On a mesh of auto axes XLA's partitioner places the jitted scatter itself and may add
    partial sums in another order (within an ulp), so that mesh is compared with a tolerance.
    The jitted runs are one program of every op (one compile), its outputs compared op by op.
    """
    args = _sharded(mesh)
    # segment_coo, segment_csr and gather_csr above read whole-batch constants (their index).
    fixed = ("segment.segment_coo", "segment.segment_csr", "segment.gather_csr")
    # embedding's table is not batched: jax.vmap's gather of an unbatched operand at a batch
    # sharded over explicit axes has no output sharding jax can infer (ShardingTypeError);
    # a batch of lookups is embedding's own leading axes, which test_values_... covers.
    fixed += ("embedding", "embedding_bag", "embedding_bag max")
    batched = {
        name: jax.vmap(lambda x, i, s, fn=fn: fn(x[None], i[None], s[None])[0])
        for name, fn in OPS.items()
        if name not in fixed
    }
    every_op = lambda x, i, s: {n: f(x, i, s) for n, f in batched.items()}
    expected = jax.jit(every_op)(X, IDX, S)
    compiled = users_compile(jax.jit(every_op).lower(*args))
    jitted = compiled(*args)
    for name, run in batched.items():
        for got in (run(*args), jitted[name]):
            if _explicit(mesh):
                np.testing.assert_array_equal(got, expected[name], err_msg=name)
                assert got.sharding.is_equivalent_to(NamedSharding(mesh, P("batch")), 2), name
            else:
                np.testing.assert_allclose(got, expected[name], rtol=1e-6, atol=1e-6, err_msg=name)
    if _explicit(mesh):
        assert _collectives(compiled) == []


def test_embedding_bag_with_offsets_on_a_sharded_index(mesh):
    """Bags cut by offsets run across shards. On explicit axes the index is replicated first
    (eagerly and under jit): the unsharded values. On auto axes under jit XLA's partitioner
    places the scatter and may add partial sums in another order (within an ulp)."""
    index = jax.device_put(IDX.reshape(-1), NamedSharding(mesh, P("batch")))
    offsets = np.array([0, 5, 5, 30], np.int32)
    want = jgather.embedding_bag(IDX.reshape(-1), TABLE, offsets)
    np.testing.assert_array_equal(jgather.embedding_bag(index, TABLE, offsets), want)
    jitted = jax.jit(lambda i: jgather.embedding_bag(i, TABLE, offsets))(index)
    if _explicit(mesh):
        np.testing.assert_array_equal(jitted, want)
    else:
        np.testing.assert_allclose(jitted, want, rtol=1e-6, atol=1e-6)
