"""random_masking, unshuffle and apply_mask against a NumPy re-statement of MAE's algorithm."""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import jgather
from jgather.masking import _permutation

# ----------------------------------------------------------------------------------------------
# Reference: MAE's random_masking and decoder unshuffle, re-stated in NumPy from the algorithm.
# Ties in the noise are ordered by a stable sort (lower index first).


def mae_reference(x, noise, mask_ratio):
    n, length, _ = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = np.argsort(noise, axis=1, kind="stable")
    ids_restore = np.argsort(ids_shuffle, axis=1, kind="stable")
    x_masked = np.take_along_axis(x, ids_shuffle[:, :len_keep, None], axis=1)
    mask = np.ones((n, length), x.dtype)
    mask[:, :len_keep] = 0
    mask = np.take_along_axis(mask, ids_restore, axis=1)
    return x_masked, mask, ids_restore


def unshuffle_reference(x_masked, ids_restore, mask_token, num_prefix=0):
    n, kept_total, d = x_masked.shape
    length = ids_restore.shape[1]
    fill = np.broadcast_to(mask_token.reshape(1, 1, d), (n, length + num_prefix - kept_total, d))
    body = np.concatenate([x_masked[:, num_prefix:], fill], axis=1)
    body = np.take_along_axis(body, ids_restore[:, :, None], axis=1)
    return np.concatenate([x_masked[:, :num_prefix], body], axis=1)


def assert_equal_triple(out, ref, mask_dtype=jnp.float32):
    assert isinstance(out, jgather.MaskedTokens)
    np.testing.assert_array_equal(np.asarray(out.x_masked), ref[0])
    np.testing.assert_array_equal(np.asarray(out.mask), ref[1])
    np.testing.assert_array_equal(np.asarray(out.ids_restore), ref[2])
    assert out.mask.dtype == mask_dtype  # float32 by default, as MAE's, whatever x's dtype
    assert out.ids_restore.dtype == jnp.int32


def tokens(n, length, d, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal((n, length, d)).astype(dtype)


# Most random-key tests share one shape and ratio, so the jitted core compiles once for them
# (drawing threefry bits is what makes a compile slow on CPU).
X = tokens(4, 196, 3)
RATIO = 0.75


# ----------------------------------------------------------------------------------------------
# Exact parity with the reference given the noise.


def test_mae_16_token_example():
    # MAE's 16-token example: x = arange(64).reshape(1, 16, 4); noise makes 10, 12, 4, 13 the kept
    # patches, in that order.
    x = np.arange(64).reshape(1, 16, 4)
    noise = np.ones((1, 16), np.float32)
    noise[0, [10, 12, 4, 13]] = [0.1, 0.2, 0.3, 0.4]
    for dtype in (np.float32, np.int32):
        out = jgather.random_masking(None, x.astype(dtype), 0.75, noise=noise)
        np.testing.assert_array_equal(
            out.x_masked[0],
            [[40, 41, 42, 43], [48, 49, 50, 51], [16, 17, 18, 19], [52, 53, 54, 55]],
        )
        assert_equal_triple(out, mae_reference(x.astype(dtype), noise, 0.75))


@pytest.mark.parametrize("length", [196, 1568])
def test_parity_with_reference(length):
    rng = np.random.default_rng(length)
    x = tokens(3, length, 2, seed=length)
    uniform = rng.random((3, length), dtype=np.float32)
    tied = np.floor(uniform * 8).astype(np.float32) / 8  # many ties: order is the stable one
    for ratio in (0.0, 0.25, 0.5, 0.75, 0.9, 0.95):
        for noise in (uniform, tied):
            out = jgather.random_masking(None, x, ratio, noise=noise)
            assert_equal_triple(out, mae_reference(x, noise, ratio))


def test_parity_with_torch_stable_argsort():
    torch = pytest.importorskip("torch")
    x = tokens(4, 196, 3, seed=1)
    noise = np.floor(np.random.default_rng(2).random((4, 196)) * 50).astype(np.float32)
    ids_shuffle = torch.argsort(torch.from_numpy(noise), dim=1, stable=True)
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)
    out = jgather.random_masking(None, x, 0.75, noise=noise)
    np.testing.assert_array_equal(np.asarray(out.ids_restore), ids_restore.numpy())
    kept = torch.gather(torch.from_numpy(x), 1, ids_shuffle[:, :49, None].expand(-1, -1, 3))
    np.testing.assert_array_equal(np.asarray(out.x_masked), kept.numpy())


def test_noise_special_values_and_dtypes():
    x = tokens(2, 10, 2)
    noise = np.array(
        [
            [0.5, -0.0, 0.0, np.nan, -np.inf, np.inf, -1.5, 0.0, -0.0, 2.0],
            [3.0, 3.0, -2.0, -2.0, np.nan, 1.0, np.nan, 0.0, -1e-30, 1e-30],
        ],
        np.float32,
    )
    # NumPy's stable argsort: -0.0 == +0.0 (ties by index), NaN last: the documented order.
    out = jgather.random_masking(None, x, 0.5, noise=noise)
    assert_equal_triple(out, mae_reference(x, noise, 0.5))
    rng = np.random.default_rng(3)
    for dtype in (np.float16, ml_dtypes.bfloat16, np.int32):
        noise = (rng.integers(-20, 20, (2, 10))).astype(dtype)
        out = jgather.random_masking(None, x, 0.3, noise=noise)
        assert_equal_triple(out, mae_reference(x, noise.astype(np.float32), 0.3))


@given(st.lists(st.integers(-3, 3), min_size=24, max_size=24), st.sampled_from([0.0, 0.5, 0.75]))
def test_parity_property(values, ratio):
    noise = np.asarray(values, np.float32).reshape(2, 12) / 4
    x = np.arange(2 * 12 * 2, dtype=np.float32).reshape(2, 12, 2)
    assert_equal_triple(
        jgather.random_masking(None, x, ratio, noise=noise), mae_reference(x, noise, ratio)
    )


def test_len_keep_is_maes_float_formula():
    # int(20 * (1 - 0.9)) == int(1.9999999999999996) == 1, not 2.
    def shape_for(n, length, ratio):
        x = jax.ShapeDtypeStruct((n, length, 2), jnp.float32)
        out = jax.eval_shape(lambda x: jgather.random_masking(jax.random.key(0), x, ratio), x)
        return out.x_masked.shape

    assert shape_for(2, 20, 0.9) == (2, int(20 * (1 - 0.9)), 2) == (2, 1, 2)
    assert shape_for(1, 1568, 0.9) == (1, 156, 2)
    assert shape_for(1, 196, 0.75) == (1, 49, 2)


# ----------------------------------------------------------------------------------------------
# The random draw.


@pytest.mark.parametrize(("length", "ratio"), [(1, 0.0), (7, 0.6), (196, RATIO)])
def test_keep_counts_and_consistency(length, ratio):
    x = X[:, :length]
    out = jgather.random_masking(jax.random.key(length), x, ratio)
    len_keep = int(length * (1 - ratio))
    assert out.x_masked.shape == (4, len_keep, 3)
    ids_restore = np.asarray(out.ids_restore)
    np.testing.assert_array_equal(np.sort(ids_restore, axis=1), np.tile(np.arange(length), (4, 1)))
    np.testing.assert_array_equal(np.asarray(out.mask).sum(axis=1), length - len_keep)
    # The triple is MAE's for the shuffle it encodes (noise = rank gives that shuffle).
    ids_shuffle = np.argsort(ids_restore, axis=1)
    assert_equal_triple(out, mae_reference(x, ids_restore.astype(np.float32), ratio))
    np.testing.assert_array_equal(
        np.asarray(out.x_masked), np.take_along_axis(x, ids_shuffle[:, :len_keep, None], axis=1)
    )


def _z_scores(counts, trials, p):
    return (counts - trials * p) / math.sqrt(trials * p * (1 - p))


def test_uniform_per_position_and_per_slot():
    # 20000 samples of L=196: every position is kept with probability 49/196, and every
    # (position, slot of the shuffle) pair has probability 1/196. Fixed key: deterministic.
    n, length, ratio = 20000, 196, 0.75
    out = jgather.random_masking(jax.random.key(123), jnp.zeros((n, length, 1)), ratio)
    kept = n - np.asarray(out.mask).sum(axis=0)
    p = 49 / length
    z = _z_scores(kept, n, p)
    assert np.abs(z).max() < 5.5, np.abs(z).max()
    # Aggregate: sum z^2 is L / (L - 1) * chi2(L - 1) (counts sum to a constant): mean L.
    chi2 = float((z**2).sum())
    assert chi2 < length + 6 * math.sqrt(2 * (length - 1)) * length / (length - 1), chi2
    # The first kept slot (x_masked[:, 0]) is a uniformly random token.
    first = np.argmin(np.asarray(out.ids_restore), axis=1)
    z = _z_scores(np.bincount(first, minlength=length), n, 1 / length)
    assert np.abs(z).max() < 5.5


def test_uniform_joint_table_small_length():
    # L = 8: all 64 (token, slot) cells of ids_restore are hit with probability 1/8.
    n, length = 40000, 8
    out = jgather.random_masking(jax.random.key(7), jnp.zeros((n, length, 1)), 0.5)
    ids = np.asarray(out.ids_restore)
    table = np.stack([np.bincount(ids[:, j], minlength=length) for j in range(length)])
    z = _z_scores(table, n, 1 / length)
    assert np.abs(z).max() < 5.5
    # Large L: per-position keep frequency at the video length.
    n, length = 4000, 1568
    out = jgather.random_masking(jax.random.key(8), jnp.zeros((n, length, 1)), 0.9)
    z = _z_scores(n - np.asarray(out.mask).sum(axis=0), n, 156 / length)
    assert np.abs(z).max() < 5.5


def test_tie_probability_bound():
    assert _permutation.tie_probability_bound(196) == 196 * 195 / 2 * 2.0**-56
    assert _permutation.tie_probability_bound(1568) == 1568 * 1567 / 2 * 2.0**-53
    assert _permutation.tie_probability_bound(32768) < 1e-6


def test_same_key_same_mask_different_key_different_mask():
    a = jgather.random_masking(jax.random.key(0), X, RATIO)
    b = jgather.random_masking(jax.random.key(0), X, RATIO)
    c = jgather.random_masking(jax.random.key(1), X, RATIO)
    chex.assert_trees_all_equal(a, b)
    assert (np.asarray(a.ids_restore) != np.asarray(c.ids_restore)).any(axis=1).all()
    # Samples of one batch get different masks.
    assert (np.asarray(a.mask)[0] != np.asarray(a.mask)[1:]).any(axis=1).all()


def test_key_kinds():
    typed = jgather.random_masking(jax.random.key(5), X, RATIO)
    legacy = jgather.random_masking(jax.random.PRNGKey(5), X, RATIO)
    chex.assert_trees_all_equal(typed, legacy)
    keys = jax.random.split(jax.random.key(5), 4)
    batched = jgather.random_masking(keys, X, RATIO)
    chex.assert_trees_all_equal(batched, typed)  # one key is split into these per-sample keys
    legacy_batch = jgather.random_masking(jax.random.key_data(keys), X, RATIO)
    chex.assert_trees_all_equal(legacy_batch, batched)


def test_per_sample_key_independence():
    keys = jax.random.split(jax.random.key(11), 4)
    full = jgather.random_masking(keys, X, RATIO)
    for lo, hi in ((0, 2), (2, 4), (1, 3)):
        part = jgather.random_masking(keys[lo:hi], X[lo:hi], RATIO)
        chex.assert_trees_all_equal(part, jax.tree.map(lambda a, lo=lo, hi=hi: a[lo:hi], full))
    # A sample's mask depends on its key alone, not on its tokens.
    other = jgather.random_masking(keys, X[::-1], RATIO)
    np.testing.assert_array_equal(other.ids_restore, full.ids_restore)


def test_jit_vmap_equal_eager_without_retracing():
    key = jax.random.key(3)
    eager = jgather.random_masking(key, X, RATIO)
    jitted = jax.jit(jgather.random_masking, static_argnames="mask_ratio")
    chex.assert_trees_all_equal(eager, jitted(key, X, RATIO))
    for seed in range(3):  # new keys and new values of x: no retracing
        jitted(jax.random.key(seed), X + seed, RATIO)
    assert jitted._cache_size() == 1
    noisy = jax.jit(lambda n, x: jgather.random_masking(None, x, RATIO, noise=n))
    noise = np.random.default_rng(0).random((4, 196), dtype=np.float32)
    assert_equal_triple(noisy(noise, X), mae_reference(X, noise, RATIO))
    # vmap over groups of batches: each group as its own call.
    keys = jax.random.split(key, 2)
    xs = np.stack([X, X[::-1]])
    grouped = jax.vmap(lambda k, x: jgather.random_masking(k, x, RATIO))(keys, xs)
    for g in range(2):
        single = jgather.random_masking(keys[g], xs[g], RATIO)
        chex.assert_trees_all_equal(single, jax.tree.map(lambda a, g=g: a[g], grouped))


def test_method_onehot_matches_gather():
    key = jax.random.key(9)
    g = jgather.random_masking(key, X, RATIO, method="gather")
    o = jgather.random_masking(key, X, RATIO, method="onehot")
    chex.assert_trees_all_equal(g, o)
    token = np.arange(3, dtype=np.float32)
    np.testing.assert_array_equal(
        jgather.unshuffle(g.x_masked, g, token, method="onehot"),
        jgather.unshuffle(g.x_masked, g, token, method="gather"),
    )


def test_mask_dtype_is_float32_or_mask_dtype():
    for dtype in (jnp.bfloat16, jnp.float16, jnp.int32):
        x = jax.ShapeDtypeStruct((2, 8, 3), dtype)
        out = jax.eval_shape(lambda x: jgather.random_masking(jax.random.key(0), x, 0.5), x)
        assert out.mask.dtype == jnp.float32 and out.x_masked.dtype == dtype
        assert out.ids_restore.dtype == jnp.int32
        out = jax.eval_shape(
            lambda x, d=dtype: jgather.random_masking(jax.random.key(0), x, 0.5, mask_dtype=d), x
        )
        assert out.mask.dtype == dtype and out.x_masked.dtype == dtype
    x = jnp.ones((2, 8, 3), jnp.bfloat16)
    out = jgather.random_masking(None, x, 0.5, noise=X[:2, :8, 0], mask_dtype=jnp.bfloat16)
    assert out.mask.dtype == jnp.bfloat16
    np.testing.assert_array_equal(out.mask, mae_reference(X[:2, :8], X[:2, :8, 0], 0.5)[1])


# ----------------------------------------------------------------------------------------------
# Prefix tokens, unshuffle, gradients.


@pytest.mark.parametrize("num_prefix", [0, 1, 2])
def test_prefix_tokens_and_unshuffle(num_prefix):
    n, length, d = 3, 49, 5
    x = tokens(n, num_prefix + length, d)
    noise = np.random.default_rng(num_prefix).random((n, length), dtype=np.float32)
    out = jgather.random_masking(None, x, 0.75, noise=noise, num_prefix=num_prefix)
    ref = mae_reference(x[:, num_prefix:], noise, 0.75)
    np.testing.assert_array_equal(out.x_masked[:, :num_prefix], x[:, :num_prefix])
    assert_equal_triple(
        jgather.MaskedTokens(out.x_masked[:, num_prefix:], out.mask, out.ids_restore), ref
    )
    token = np.random.default_rng(9).standard_normal((1, 1, d)).astype(np.float32)
    for method in ("gather", "onehot"):
        full = jgather.unshuffle(
            out.x_masked, out.ids_restore, token, num_prefix=num_prefix, method=method
        )
        np.testing.assert_array_equal(
            full, unshuffle_reference(np.asarray(out.x_masked), ref[2], token, num_prefix)
        )
    # Kept tokens come back in place, removed ones are the mask token.
    expected = np.where(np.asarray(out.mask)[..., None] == 1, token.reshape(d), x[:, num_prefix:])
    np.testing.assert_array_equal(full[:, num_prefix:], expected)


def test_unshuffle_jit_vmap():
    out = jgather.random_masking(jax.random.key(0), X, RATIO)
    token = jnp.ones(3)
    eager = jgather.unshuffle(out.x_masked, out, token)
    jitted = jax.jit(jgather.unshuffle)(out.x_masked, out, token)
    mapped = jax.vmap(jgather.unshuffle, in_axes=(0, 0, None))(
        out.x_masked[:, None], jax.tree.map(lambda a: a[:, None], out), token
    )[:, 0]
    np.testing.assert_array_equal(eager, jitted)
    np.testing.assert_array_equal(eager, mapped)
    raw = jax.jit(functools.partial(jgather.unshuffle, num_prefix=0))
    np.testing.assert_array_equal(eager, raw(out.x_masked, out.ids_restore, token))


@pytest.mark.parametrize("method", ["gather", "onehot"])
def test_gradients(method):
    x = jnp.asarray(X)
    key = jax.random.key(4)
    # The random draw with the gather lowering; given noise with the one-hot one (quicker).
    noise = None if method == "gather" else jnp.asarray(tokens(4, 196, 1)[..., 0])

    def masking(x):
        return jgather.random_masking(key, x, RATIO, noise=noise, method=method)

    out = masking(x)
    keep = 1 - np.asarray(out.mask)[..., None]

    def through_unshuffle(x, token):
        o = masking(x)
        return jnp.sum(jgather.unshuffle(o.x_masked, o, token, method=method))

    gx, gt = jax.grad(through_unshuffle, argnums=(0, 1))(x, jnp.zeros(3))
    np.testing.assert_array_equal(gx, np.broadcast_to(keep, x.shape))
    np.testing.assert_array_equal(gt, np.full(3, np.asarray(out.mask).sum()))

    # Through x_masked alone: each kept token receives its own weight.
    w = jnp.asarray(tokens(4, 49, 3, seed=1))
    g = jax.grad(lambda x: jnp.sum(masking(x).x_masked * w))(x)
    ids_shuffle = np.argsort(np.asarray(out.ids_restore), axis=1)[:, :49]
    expected = np.zeros(x.shape, np.float32)
    np.put_along_axis(expected, ids_shuffle[:, :, None], np.asarray(w), axis=1)
    np.testing.assert_array_equal(g, expected)


# ----------------------------------------------------------------------------------------------
# apply_mask.


def test_apply_mask_matches_reference():
    rng = np.random.default_rng(0)
    n, length, num_keep = 4, 30, 12
    x = tokens(n, length, 3)
    removed = np.stack([rng.permutation(length) >= num_keep for _ in range(n)])
    out = jgather.apply_mask(x, removed, num_keep)
    # Kept tokens first, then removed, each in original order: a stable argsort of the mask.
    ref = mae_reference(x, removed.astype(np.float32), 1 - num_keep / length)
    assert_equal_triple(out, ref)
    np.testing.assert_array_equal(out.mask, removed)
    chex.assert_trees_all_equal(jax.jit(jgather.apply_mask, static_argnums=2)(x, removed, 12), out)
    mapped = jax.vmap(lambda x, m: jgather.apply_mask(x[None], m[None], 12))(x, removed)
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[:, 0], mapped), out)
    # Numeric masks work the same; prefix tokens lead.
    xp = np.concatenate([np.full((n, 1, 3), 7.0, np.float32), x], axis=1)
    outp = jgather.apply_mask(xp, removed.astype(np.float32), num_keep, num_prefix=1)
    np.testing.assert_array_equal(outp.x_masked[:, 1:], out.x_masked)
    np.testing.assert_array_equal(outp.x_masked[:, 0], 7.0)


def test_apply_mask_wrong_count():
    x = tokens(2, 6, 1)
    bad = np.array([[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 0]], bool)
    with pytest.raises(ValueError, match="row 1 keeps 4"):
        jgather.apply_mask(x, bad, 3)
    # Under jit the count cannot be checked; the returned mask says what was kept.
    out = jax.jit(jgather.apply_mask, static_argnums=2)(x, bad, 3)
    np.testing.assert_array_equal(out.mask, [[1, 1, 1, 0, 0, 0], [1, 1, 0, 0, 0, 1]])
    np.testing.assert_array_equal(out.x_masked[1, :, 0], x[1, 2:5, 0])


# ----------------------------------------------------------------------------------------------
# Errors.


def test_errors():
    x = tokens(2, 8, 3)
    key = jax.random.key(0)
    with pytest.raises(TypeError, match="static Python float"):
        jax.jit(lambda r: jgather.random_masking(key, x, r))(0.5)
    for ratio in (1.1, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            jgather.random_masking(key, x, ratio)
    # int(10 * (1 - 0.9)) == int(0.9999999999999998) == 0 keeps no token, as in MAE.
    assert jgather.random_masking(key, tokens(1, 10, 1), 0.9).x_masked.shape == (1, 0, 1)
    with pytest.raises(TypeError, match="mask_ratio"):
        jgather.random_masking(key, x, "0.5")
    with pytest.raises(ValueError, match=r"\[N, L, D\]"):
        jgather.random_masking(key, x[0], 0.5)
    with pytest.raises(ValueError, match="PRNG key, or noise="):
        jgather.random_masking(None, x, 0.5)
    with pytest.raises(ValueError, match="noise must have shape"):
        jgather.random_masking(None, x, 0.5, noise=np.zeros((2, 7)))
    with pytest.raises(ValueError, match="batch of N=2 keys"):
        jgather.random_masking(jax.random.split(key, 3), x, 0.5)
    with pytest.raises(TypeError, match="key must be"):
        jgather.random_masking(np.zeros(2, np.float32), x, 0.5)
    with pytest.raises(ValueError, match="unknown method"):
        jgather.random_masking(key, x, 0.5, method="scatter")
    with pytest.raises(ValueError, match="num_prefix"):
        jgather.random_masking(key, x, 0.5, num_prefix=8)
    out = jgather.random_masking(None, x, 0.5, noise=x[..., 0])
    with pytest.raises(ValueError, match="mask_token"):
        jgather.unshuffle(out.x_masked, out, np.zeros(4))
    with pytest.raises(TypeError, match="integer"):
        jgather.unshuffle(
            out.x_masked, out.ids_restore.astype(np.float32), np.zeros(3), num_prefix=0
        )
    with pytest.raises(ValueError, match="ids_restore must have shape"):
        jgather.unshuffle(out.x_masked, out.ids_restore[:1], np.zeros(3), num_prefix=0)
    with pytest.raises(ValueError, match="num_prefix"):
        jgather.unshuffle(out.x_masked, out.ids_restore[:, :3], np.zeros(3), num_prefix=0)
    with pytest.raises(ValueError, match="num_keep"):
        jgather.apply_mask(x, np.ones((2, 8), bool), -1)
    with pytest.raises(ValueError, match="mask must have shape"):
        jgather.apply_mask(x, np.ones((2, 7), bool), 1)


def test_under_global_x64():
    # With 64-bit types on, float64 noise takes the comparator sort and stays exact, and the
    # random draw gives the same shuffle as without x64.
    key = jax.random.key(2)
    expected = jgather.random_masking(key, X, RATIO)
    with jax.enable_x64(True):
        x64 = jnp.asarray(X, jnp.float64)
        out = jgather.random_masking(key, x64, RATIO)
        np.testing.assert_array_equal(out.ids_restore, expected.ids_restore)
        assert out.ids_restore.dtype == jnp.int32 and out.mask.dtype == jnp.float32
        wide = jgather.random_masking(key, x64, RATIO, mask_dtype=jnp.float64)
        assert wide.mask.dtype == jnp.float64
        noise = np.floor(np.random.default_rng(5).random((4, 196)) * 30) / 7  # float64, ties
        assert_equal_triple(
            jgather.random_masking(None, x64, RATIO, noise=noise),
            mae_reference(np.asarray(X, np.float64), noise, RATIO),
        )
