"""random_masking_per_sample and sample_mask_ratios against a NumPy re-statement.

The reference: per sample, a stable argsort of the noise, keep the first
``k_i = int(L * (1 - r_i))`` tokens (MAE's rule, per sample) in ``capacity`` slots, zeros in
the rest; ``unshuffle`` must then put a mask token at every removed token.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from pipelines import users_compile

import jgather
from jgather.masking import _per_sample as _per_sample_masking

# ----------------------------------------------------------------------------------------------
# Reference.


def reference(x, noise, ratios, capacity, num_prefix=0, counts=None):
    n, total, d = x.shape
    length = total - num_prefix
    x_masked = np.zeros((n, num_prefix + capacity, d), x.dtype)
    valid = np.zeros((n, num_prefix + capacity), bool)
    mask = np.ones((n, length), np.float32)
    ids_restore = np.zeros((n, length), np.int32)
    len_keep = np.zeros((n,), np.int32)
    for i in range(n):
        k = int(length * (1 - float(ratios[i]))) if counts is None else int(counts[i])
        order = np.argsort(noise[i], kind="stable")
        x_masked[i, :num_prefix] = x[i, :num_prefix]
        x_masked[i, num_prefix : num_prefix + k] = x[i, num_prefix + order[:k]]
        valid[i, : num_prefix + k] = True
        mask[i, order[:k]] = 0
        position = np.argsort(order, kind="stable")
        ids_restore[i] = np.where(position < k, position, np.maximum(position, capacity))
        len_keep[i] = k
    return x_masked, mask, ids_restore, valid, len_keep


def assert_matches(out, ref):
    assert isinstance(out, jgather.PaddedMaskedTokens)
    for name, got, want in zip(out._fields, out, ref, strict=True):
        np.testing.assert_array_equal(np.asarray(got), want, err_msg=name)
    assert out.mask.dtype == jnp.float32 and out.valid.dtype == jnp.bool_
    assert out.ids_restore.dtype == jnp.int32 and out.len_keep.dtype == jnp.int32


def tokens(n, total, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, total, d)).astype(np.float32)


N, L, D, K = 6, 20, 3, 12
X = tokens(N, L + 1, D)  # one prefix token in the cases that use it
NOISE = np.random.default_rng(1).random((N, L), dtype=np.float32)
TIED = np.floor(NOISE * 4) / 4  # many ties: the stable order decides
RATIOS = np.array([0.4, 0.5, 0.75, 0.9, 0.95, 1.0])  # keeps 12, 10, 5, 1 (MAE's float), 1, 0


# ----------------------------------------------------------------------------------------------
# Values.


@pytest.mark.parametrize("num_prefix", [0, 1])
@pytest.mark.parametrize("noise", [NOISE, TIED], ids=["uniform", "tied"])
def test_matches_reference(noise, num_prefix):
    x = X if num_prefix else X[:, 1:]
    out = jgather.random_masking_per_sample(
        None, x, RATIOS, capacity=K, noise=noise, num_prefix=num_prefix
    )
    assert_matches(out, reference(x, noise, RATIOS, K, num_prefix))
    assert out.len_keep.tolist() == [12, 10, 5, 1, 1, 0]  # int(20 * (1 - 0.9)) == 1


def test_unshuffle_puts_mask_tokens_at_every_removed_or_invalid_slot():
    token = np.full((D,), -7.0, np.float32)
    for capacity in (K, L):  # capacity == L: removed tokens point at L (no appended token)
        out = jgather.random_masking_per_sample(
            None, X, RATIOS, capacity=capacity, noise=NOISE, num_prefix=1
        )
        full = np.asarray(jgather.unshuffle(out.x_masked, out, token))  # num_prefix recorded
        raw = jgather.unshuffle(out.x_masked, out.ids_restore, token, num_prefix=1)
        np.testing.assert_array_equal(np.asarray(raw), full)
        removed = np.asarray(out.mask)[..., None] == 1
        np.testing.assert_array_equal(full[:, 1:], np.where(removed, token, X[:, 1:]))
        np.testing.assert_array_equal(full[:, :1], X[:, :1])
        # The invalid slots hold zeros, so nothing of a removed token reaches the encoder.
        np.testing.assert_array_equal(np.asarray(out.x_masked)[~np.asarray(out.valid)], 0.0)
        # mae_loss averages over exactly the removed tokens.
        assert np.asarray(out.mask).sum(1).tolist() == (L - np.asarray(out.len_keep)).tolist()


@given(
    st.lists(st.integers(-2, 2), min_size=3 * 10, max_size=3 * 10),
    st.lists(st.integers(0, 10), min_size=3, max_size=3),
    st.integers(1, 10),
)
def test_matches_reference_property(noise_values, tenths, capacity):
    noise = np.asarray(noise_values, np.float32).reshape(3, 10)
    ratios = np.asarray(tenths) / 10
    keep = np.trunc(10 * (1 - ratios))
    ratios = np.where(keep > capacity, 1 - capacity / 10, ratios)  # no overflow (tested below)
    x = np.arange(3 * 11 * 2, dtype=np.float32).reshape(3, 11, 2)
    out = jgather.random_masking_per_sample(
        None, x, ratios, capacity=capacity, noise=noise, num_prefix=1
    )
    assert_matches(out, reference(x, noise, ratios, capacity, num_prefix=1))


def test_scalar_ratio_broadcasts():
    out = jgather.random_masking_per_sample(None, X[:, 1:], 0.5, capacity=K, noise=NOISE)
    assert_matches(out, reference(X[:, 1:], NOISE, np.full(N, 0.5), K))


def test_float32_ratio_is_the_float32_value():
    # jnp.float32(0.9) is 0.89999998: int(20 * (1 - 0.89999998)) = 2, the Python float 0.9
    # keeps int(1.9999999999999996) = 1. Traced and concrete float32 ratios agree.
    r32 = jnp.full((N,), 0.9, jnp.float32)
    x = X[:, 1:]
    eager = jgather.random_masking_per_sample(None, x, r32, capacity=K, noise=NOISE)
    traced = jax.jit(
        lambda r: jgather.random_masking_per_sample(None, x, r, capacity=K, noise=NOISE)
    )(r32)
    assert eager.len_keep.tolist() == traced.len_keep.tolist() == [2] * N
    py = jgather.random_masking_per_sample(None, x, 0.9, capacity=K, noise=NOISE)
    assert py.len_keep.tolist() == [1] * N


def test_traced_counts_equal_pythons_formula_for_float32_values():
    r = np.random.default_rng(5).random(4096, dtype=np.float32)
    r[:8] = [0.0, 1.0, 0.25, 0.5, 0.75, 0.9, 0.95, np.float32(1 - 2**-24)]
    for length in (16, 196, 1568):
        got = _per_sample_masking._keep_counts_traced(
            jnp.asarray(r), length=length, capacity=length
        )
        want = [int(length * (1 - float(v))) for v in r]
        assert np.asarray(got).tolist() == want


# ----------------------------------------------------------------------------------------------
# Equal ratios: exactly random_masking.


@pytest.mark.parametrize(("length", "ratio"), [(196, 0.75), (20, 0.9), (16, 0.5)])
def test_equal_ratios_equal_random_masking(length, ratio):
    x = tokens(4, length + 1, 2, seed=length)
    noise = np.random.default_rng(length).random((4, length), dtype=np.float32)
    len_keep = int(length * (1 - ratio))
    # Both sources and both prefix forms at the ViT shape; the float-formula cases on noise.
    full = length == 196
    for num_prefix in (0, 1) if full else (1,):
        xs = x if num_prefix else x[:, 1:]
        for key, nz in ((None, noise), (jax.random.key(3), None)) if full else ((None, noise),):
            want = jgather.random_masking(key, xs, ratio, noise=nz, num_prefix=num_prefix)
            got = jgather.random_masking_per_sample(
                key, xs, np.full(4, ratio), capacity=len_keep, noise=nz, num_prefix=num_prefix
            )
            for name in ("x_masked", "mask", "ids_restore"):
                np.testing.assert_array_equal(
                    np.asarray(getattr(got, name)), np.asarray(getattr(want, name)), err_msg=name
                )
            assert bool(got.valid.all()) and got.len_keep.tolist() == [len_keep] * 4


def test_batch_of_keys_and_legacy_keys_are_random_masking_keys():
    x = X[:, 1:]
    keys = jax.random.split(jax.random.key(7), N)
    want = jgather.random_masking(keys, x, 0.4)
    got = jgather.random_masking_per_sample(keys, x, 0.4, capacity=K)
    np.testing.assert_array_equal(got.ids_restore, want.ids_restore)
    legacy = jax.random.PRNGKey(7)
    want = jgather.random_masking(legacy, x, 0.4)
    got = jgather.random_masking_per_sample(legacy, x, 0.4, capacity=K)
    np.testing.assert_array_equal(got.x_masked, want.x_masked)


# ----------------------------------------------------------------------------------------------
# Transforms: jit (traced ratios), vmap, grad, no retrace.


def test_jit_with_traced_ratios_equals_eager(key):
    x = X[:, 1:]
    ratios = jnp.asarray(RATIOS, jnp.float32)
    fn = jax.jit(lambda k, x, r: jgather.random_masking_per_sample(k, x, r, capacity=K))
    eager = jgather.random_masking_per_sample(key, x, ratios, capacity=K)
    for a, b in zip(fn(key, x, ratios), eager, strict=True):
        np.testing.assert_array_equal(a, b)


def test_vmap_over_samples_equals_the_batch():
    x = X[:, 1:]
    keys = jax.random.split(jax.random.key(2), N)
    r32 = jnp.asarray(RATIOS, jnp.float32)  # both sides see the same float32 values
    batch = jgather.random_masking_per_sample(keys, x, r32, capacity=K, method="onehot")

    def one(k, x, r):
        out = jgather.random_masking_per_sample(k[None], x[None], r[None], capacity=K)
        return jax.tree.map(lambda a: a[0], out)

    mapped = jax.vmap(one)(keys, x, r32)
    for a, b in zip(mapped, batch, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gradient_reaches_exactly_the_kept_tokens():
    x = jnp.asarray(X)
    weight = jnp.asarray(np.random.default_rng(3).standard_normal((N, 1 + K, D)), jnp.float32)

    def loss(x):
        out = jgather.random_masking_per_sample(
            None, x, RATIOS, capacity=K, noise=NOISE, num_prefix=1
        )
        return jnp.sum(out.x_masked * weight)

    grad = np.asarray(jax.grad(loss)(x))
    want = np.zeros_like(X)
    for i in range(N):
        k = int(L * (1 - RATIOS[i]))
        order = np.argsort(NOISE[i], kind="stable")
        want[i, 0] = weight[i, 0]
        want[i, 1 + order[:k]] = np.asarray(weight)[i, 1 : 1 + k]
    np.testing.assert_array_equal(grad, want)


def test_new_ratio_values_do_not_retrace(key):
    x = X[:, 1:]
    core = _per_sample_masking._per_sample_keys
    jgather.random_masking_per_sample(key, x, RATIOS, capacity=K)
    before = core._cache_size()
    jgather.random_masking_per_sample(key, x, RATIOS[::-1].copy(), capacity=K)
    jgather.random_masking_per_sample(key, x, 0.5, capacity=K)
    assert core._cache_size() == before


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
def test_batch_sharded_stays_sharded_without_collectives():
    mesh = Mesh(np.array(jax.devices()[:2]), ("batch",))
    sharding = NamedSharding(mesh, P("batch"))
    keys = jax.random.split(jax.random.key(1), N)
    args = jax.device_put((keys, X[:, 1:], jnp.asarray(RATIOS, jnp.float32)), sharding)
    fn = jax.jit(lambda k, x, r: jgather.random_masking_per_sample(k, x, r, capacity=K))
    out = fn(*args)
    want = jgather.random_masking_per_sample(keys, X[:, 1:], args[2], capacity=K)
    for name, a, b in zip(out._fields, out, want, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
        assert a.sharding.is_equivalent_to(sharding, a.ndim), (name, a.sharding)
    hlo = users_compile(fn.lower(*args)).as_text()
    found = re.findall(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter", hlo)
    assert not found, f"collectives in the compiled program: {sorted(set(found))}"


# ----------------------------------------------------------------------------------------------
# More kept tokens than slots.


def test_concrete_overflow_raises_with_the_capacity_to_use():
    with pytest.raises(ValueError, match=r"sample 0 .* keeps .* 12 tokens, more than capacity=5"):
        jgather.random_masking_per_sample(None, X[:, 1:], RATIOS, capacity=5, noise=NOISE)


def test_traced_overflow_clips_and_stays_consistent():
    x = X[:, 1:]
    fn = jax.jit(lambda r: jgather.random_masking_per_sample(None, x, r, capacity=5, noise=NOISE))
    out = fn(jnp.asarray(RATIOS, jnp.float32))
    counts = [5, 5, 5, 2, 1, 0]  # float32 0.9 keeps 2 (see test_float32_ratio_is_...)
    assert out.len_keep.tolist() == counts
    assert_matches(out, reference(x, NOISE, None, 5, counts=counts))
    # Out-of-range traced ratios are clipped into [0, 1], NaN keeps nothing.
    out = fn(jnp.array([-0.5, 1.5, jnp.nan, 0.0, 0.9, 1.0], jnp.float32))
    assert out.len_keep.tolist() == [5, 0, 0, 5, 2, 0]


# ----------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(capacity=0), ValueError, r"capacity must be (>= 1|<= 20)"),
        (dict(capacity=21), ValueError, r"capacity must be (>= 1|<= 20)"),
        (dict(capacity=2.0), TypeError, "capacity must be an int"),
        (dict(capacity=True), TypeError, "capacity must be an int"),
        (dict(mask_ratio=np.full(5, 0.5)), ValueError, r"shape \[N\] = \(6,\)"),
        (dict(mask_ratio="0.5"), TypeError, "mask_ratio must be a float"),
        (dict(mask_ratio=np.array([True] * 6)), TypeError, "real number"),
        (
            dict(mask_ratio=np.array([0.5] * 5 + [1.5])),
            ValueError,
            r"\[0, 1\], got 1.5 for sample 5",
        ),
        (dict(mask_ratio=-0.1), ValueError, r"\[0, 1\], got -0.1"),
        (dict(mask_ratio=np.nan), ValueError, r"\[0, 1\], got nan"),
        (dict(noise=np.zeros((6, 19))), ValueError, r"noise must have shape \[N, L\]"),
        (dict(noise=np.zeros((6, 20), bool)), TypeError, "noise must be floating or integer"),
        (dict(noise=None), ValueError, "pass a PRNG key, or noise="),
        (
            dict(noise=None, key=jax.random.split(jax.random.key(0), 3)),
            ValueError,
            "batch of 3 keys",
        ),
        (dict(x=np.zeros((6, 20))), ValueError, r"\[N, L, D\] \(3 dims\)"),
        (dict(num_prefix=20), ValueError, "num_prefix=20"),
        (dict(method="take"), ValueError, "unknown method"),
        (dict(mask_dtype="not-a-dtype"), TypeError, "mask_dtype must be a dtype"),
    ],
)
def test_bad_inputs_are_clear_errors(kwargs, error, match):
    args = dict(key=None, x=X[:, 1:], mask_ratio=0.5, capacity=K, noise=NOISE)
    args.update(kwargs)
    with pytest.raises(error, match=match) as info:
        jgather.random_masking_per_sample(
            args.pop("key"), args.pop("x"), args.pop("mask_ratio"), **args
        )
    assert "random_masking_per_sample" in str(info.value)


def test_traced_capacity_is_a_type_error():
    with pytest.raises(TypeError, match="capacity must be a static Python int"):
        jax.jit(lambda c: jgather.random_masking_per_sample(None, X, 0.5, capacity=c, noise=NOISE))(
            3
        )


# ----------------------------------------------------------------------------------------------
# The ratio sampler.


def test_sample_mask_ratios_uniform_range_and_mean():
    r = np.asarray(jgather.sample_mask_ratios(jax.random.key(0), 4000))
    assert r.dtype == np.float32 and r.shape == (4000,)
    assert r.min() >= 0.7 and r.max() <= 1.0
    # Mean of U[0.7, 1]: 0.85, sd of the mean 0.3 / sqrt(12 * 4000) = 0.0014; allow 5 sd.
    assert abs(r.mean() - 0.85) < 5 * 0.3 / np.sqrt(12 * 4000)
    r = np.asarray(jgather.sample_mask_ratios(jax.random.key(1), 64, low=0.25, high=0.5))
    assert r.min() >= 0.25 and r.max() <= 0.5


def test_sample_mask_ratios_schedule_is_mask_schedule_of_a_uniform():
    keys = jax.random.split(jax.random.key(0), 16)
    r = jgather.sample_mask_ratios(keys, 16, schedule="cosine")
    u = jax.vmap(lambda k: jax.random.uniform(k, (), jnp.float32))(keys)
    np.testing.assert_array_equal(r, jgather.mask_schedule("cosine", u))
    r = jgather.sample_mask_ratios(keys, 16, schedule="exp", num_tokens=196)
    assert bool(((r > 0) & (r <= 1)).all())


def test_sample_mask_ratios_follow_the_key_and_feed_the_masking():
    keys = jax.random.split(jax.random.key(4), 8)
    r8 = jgather.sample_mask_ratios(keys, 8)
    r3 = jgather.sample_mask_ratios(keys[jnp.array([5, 0, 2])], 3)
    np.testing.assert_array_equal(r3, r8[jnp.array([5, 0, 2])])
    x = jnp.asarray(tokens(8, 16, 2))
    out = jgather.random_masking_per_sample(keys, x, r8, capacity=int(16 * (1 - 0.7)))
    assert out.x_masked.shape == (8, 4, 2)
    assert out.len_keep.tolist() == [int(16 * (1 - float(v))) for v in r8]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(low=0.9, high=0.8), ValueError, "low=0.9 must not exceed high=0.8"),
        (dict(low=-0.1), ValueError, r"`low` must be in \[0, 1\]"),
        (dict(high="1"), TypeError, "`high` must be a float"),
        (dict(schedule="cosine", low=0.5), ValueError, "Pass one or the other"),
        (dict(schedule="nope"), ValueError, "unknown schedule"),
        (dict(schedule="log"), ValueError, "num_tokens"),
        (dict(batch_size=0), ValueError, "batch_size must be >= 1"),
        (dict(batch_size=2.0), TypeError, "batch_size must be an int"),
    ],
)
def test_sample_mask_ratios_errors(kwargs, error, match):
    batch_size = kwargs.pop("batch_size", 4)
    with pytest.raises(error, match=match):
        jgather.sample_mask_ratios(jax.random.key(0), batch_size, **kwargs)
