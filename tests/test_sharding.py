"""The masking family on a batch-sharded 1-D mesh of 8 host devices: same values as the
unsharded run, batch-sharded outputs, and no collectives in the compiled program.

Every case runs on both kinds of mesh: ``jax.make_mesh`` (explicit axes, JAX's default since
0.7), where shardings are part of the array types and ``jax.vmap`` requires every mapped input
to be sharded alike, and ``Mesh(devices, names)`` (auto axes), where the compiler propagates
them. Inputs are mixed on purpose: a sharded ``x`` with one (replicated) key, replicated
``noise``, a replicated ``mask``, as users pass them.

A program whose collectives are counted is compiled with ``pipelines.users_compile``: XLA's
default HLO passes, the SPMD partitioner among them, as users' CPUs run them, with LLVM
unoptimised (``test_backend_optimisation_level_leaves_the_hlo_alone`` checks that this leaves
the HLO as it is). The other programs compile with the session's faster settings
(tests/pipelines.py).
"""

from __future__ import annotations

import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from pipelines import USERS_PIPELINE, users_compile

import jgather

COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py sets 8 host devices)"
)


@pytest.fixture(scope="module", params=["explicit", "auto"])
def mesh(request):
    if request.param == "explicit":
        mesh = jax.make_mesh((8,), ("batch",), devices=jax.devices()[:8])
        assert mesh.axis_types == (AxisType.Explicit,)  # jax.make_mesh's default
    else:
        mesh = Mesh(np.array(jax.devices()[:8]), ("batch",))
        assert mesh.axis_types == (AxisType.Auto,)
    return mesh


def shard(mesh, x):
    return jax.device_put(x, NamedSharding(mesh, P("batch")))


def assert_batch_sharded(mesh, *arrays):
    expected = NamedSharding(mesh, P("batch"))
    for a in arrays:
        assert a.sharding.is_equivalent_to(expected, a.ndim), (a.shape, a.sharding)


def assert_no_collectives(compiled, loop_test=False):
    hlo = compiled.as_text()
    if loop_test:
        # block_masking's while loop runs until every image is done: on a sharded batch that
        # is one boolean all-reduce per attempt (pred[]), and nothing else is exchanged.
        lines = [line for line in hlo.splitlines() if COLLECTIVES.search(line)]
        assert lines and all(re.search(r"= pred\[\] all-reduce", line) for line in lines), lines
        return
    found = sorted(set(COLLECTIVES.findall(hlo)))
    assert not found, f"collectives in the compiled program: {found}"


def check(mesh, fn, unsharded, sharded, *, sharded_out=True, loop_test=False):
    """``fn`` on sharded inputs, eagerly and under jit, equals ``fn`` on plain arrays."""
    expected = jax.jit(fn)(*unsharded)
    compiled = users_compile(jax.jit(fn).lower(*sharded))
    for run in (fn, compiled):
        out = run(*sharded)
        chex.assert_trees_all_equal(out, expected)
        if sharded_out:
            assert_batch_sharded(mesh, *jax.tree.leaves(out))
    assert_no_collectives(compiled, loop_test=loop_test)


N, L, D, RATIO = 16, 64, 4, 0.75
X = np.random.default_rng(0).standard_normal((N, L, D)).astype(np.float32)
NOISE = np.random.default_rng(1).random((N, L), dtype=np.float32)
KEYS = jax.random.split(jax.random.key(0), N)
KEY = jax.random.key(1)


def masking(k, x):
    return tuple(jgather.random_masking(k, x, RATIO))


def test_random_masking_per_sample_keys(mesh):
    check(mesh, masking, (KEYS, X), (shard(mesh, KEYS), shard(mesh, X)))


def test_random_masking_one_key(mesh):
    check(mesh, masking, (KEY, X), (KEY, shard(mesh, X)))
    # With a prefix token and the one-hot gather (the TPU default) too.
    fn = lambda k, x: tuple(jgather.random_masking(k, x, RATIO, num_prefix=1, method="onehot"))
    check(mesh, fn, (KEY, X), (KEY, shard(mesh, X)))


def test_random_masking_per_sample_one_key_and_noise(mesh):
    ratios = np.linspace(0.5, 0.9, N).astype(np.float32)
    cap = int(L * 0.5)

    def fn(k, x, r):
        return tuple(jgather.random_masking_per_sample(k, x, r, capacity=cap, num_prefix=1))

    check(mesh, fn, (KEY, X, ratios), (KEY, shard(mesh, X), ratios))
    check(mesh, fn, (KEYS, X, ratios), (shard(mesh, KEYS), shard(mesh, X), shard(mesh, ratios)))

    def with_noise(noise, x, r):
        out = jgather.random_masking_per_sample(None, x, r, capacity=cap, noise=noise)
        return tuple(out)

    check(mesh, with_noise, (NOISE, X, ratios), (NOISE, shard(mesh, X), ratios))


@pytest.mark.parametrize("noise_sharded", [True, False], ids=["sharded", "replicated"])
def test_noise_unshuffle_and_apply_mask(mesh, noise_sharded):
    token = jnp.arange(D, dtype=jnp.float32)

    def fn(noise, x):
        out = jgather.random_masking(None, x, RATIO, noise=noise)
        full = jgather.unshuffle(out.x_masked, out, token)
        again = jgather.apply_mask(x, out.mask, out.x_masked.shape[1])
        return (*out, full, *again)

    noise = shard(mesh, NOISE) if noise_sharded else NOISE
    check(mesh, fn, (NOISE, X), (noise, shard(mesh, X)))


def test_unshuffle_and_apply_mask_with_one_operand_replicated(mesh):
    out = jgather.random_masking(None, X, RATIO, noise=NOISE)
    x_masked, mask, ids = (np.asarray(a) for a in out)
    token = np.ones((1, 1, D), np.float32)
    unshuffle = lambda xm, ids: jgather.unshuffle(xm, ids, token, num_prefix=0)
    check(mesh, unshuffle, (x_masked, ids), (shard(mesh, x_masked), ids))
    check(mesh, unshuffle, (x_masked, ids), (x_masked, shard(mesh, ids)))
    apply = lambda x, m: tuple(jgather.apply_mask(x, m, x_masked.shape[1]))
    check(mesh, apply, (X, mask), (shard(mesh, X), mask))
    check(mesh, apply, (X, mask), (X, shard(mesh, mask)))


def test_patch_dropout(mesh):
    fn = lambda k, x: tuple(jgather.patch_dropout(k, x, 0.5, num_prefix=1))
    check(mesh, fn, (KEY, X), (KEY, shard(mesh, X)))
    fn = lambda k, x: tuple(jgather.patch_dropout(k, x, 0.5, num_prefix=0, ordered=True))
    check(mesh, fn, (KEYS, X), (shard(mesh, KEYS), X))


STRATEGIES = {
    "tube": lambda k: jgather.tube_masking(k, N, (2, 4, 4), 0.75),
    "running_cell": lambda k: jgather.running_cell_masking(k, N, (2, 4, 4), 0.5),
    "block": lambda k: jgather.block_masking(k, N, (6, 6), 12, min_num_patches=4),
    "simmim": lambda k: jgather.simmim_masking(
        k, N, 32, mask_patch_size=8, model_patch_size=4, mask_ratio=0.5
    ),
    "variable_ratio": lambda k: tuple(jgather.variable_ratio_masking(k, N, 32)),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_mask_strategies_per_sample_keys(mesh, name):
    check(mesh, STRATEGIES[name], (KEYS,), (shard(mesh, KEYS),), loop_test=name == "block")


@pytest.mark.parametrize("r_sharded", [True, False], ids=["sharded", "replicated"])
def test_variable_ratio_given_r(mesh, r_sharded):
    r = np.linspace(0, 1, N, dtype=np.float32)
    fn = lambda k, r: tuple(jgather.variable_ratio_masking(k, N, 32, r=r))
    check(mesh, fn, (KEYS, r), (shard(mesh, KEYS), shard(mesh, r) if r_sharded else r))


def test_patchify_unpatchify(mesh):
    imgs = np.random.default_rng(3).standard_normal((N, 8, 12, 3)).astype(np.float32)
    fn = lambda im: (t := jgather.patchify(im, 4), jgather.unpatchify(t, 4, 3, grid=(2, 3)))
    check(mesh, fn, (imgs,), (shard(mesh, imgs),))


def test_mae_loss(mesh):
    # A mean over the whole batch: the only collective is the all-reduce of the two scalar
    # partial sums (what any data-parallel loss needs); nothing is gathered.
    pred = X + 1
    mask = np.asarray(jgather.random_masking(None, X, RATIO, noise=NOISE).mask)
    for norm in (False, True):
        fn = lambda p, t, m, norm=norm: jgather.mae_loss(
            pred=p, target=t, mask=m, norm_pix_loss=norm
        )
        expected = fn(pred, X, mask)
        args = (shard(mesh, pred), shard(mesh, X), mask)
        np.testing.assert_allclose(fn(*args), expected, rtol=1e-6)
        compiled = users_compile(jax.jit(fn).lower(*args))
        np.testing.assert_allclose(compiled(*args), expected, rtol=1e-6)
        hlo = compiled.as_text()
        assert not re.findall(r"all-gather|all-to-all|collective-permute", hlo)


def test_under_set_mesh(mesh):
    # Inside ``jax.set_mesh`` (how explicit-sharding programs usually run) as well.
    if mesh.axis_types != (AxisType.Explicit,):
        pytest.skip("jax.set_mesh matters for explicit axes")
    with jax.set_mesh(mesh):
        check(mesh, masking, (KEY, X), (KEY, shard(mesh, X)))


def _without_metadata(hlo):
    return re.sub(r", metadata=\{[^}]*\}", "", hlo)


def test_backend_optimisation_level_leaves_the_hlo_alone():
    """The premise of the session's ``--xla_backend_optimization_level=0``
    (tests/pipelines.py): the optimised HLO (collectives, loops) of a sharded program is the
    same at XLA's default level (3) and at 0; only the machine code differs. So
    ``users_compile``, which keeps level 0, reads the HLO of XLA's defaults."""
    mesh = jax.make_mesh((8,), ("batch",), devices=jax.devices()[:8])
    lowered = jax.jit(STRATEGIES["block"]).lower(shard(mesh, KEYS))
    default = lowered.compile({"xla_backend_optimization_level": 3, **USERS_PIPELINE}).as_text()
    unoptimised = users_compile(lowered).as_text()
    assert COLLECTIVES.search(default)  # a partitioned program with its one all-reduce
    assert _without_metadata(unoptimised) == _without_metadata(default)
