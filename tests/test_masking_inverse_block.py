"""data2vec 2.0's inverse block masking: the construction exactly, the sampler in distribution.

The block construction (centres to clamped squares) is compared exactly with a NumPy
re-statement of fairseq's ``compute_block_mask_2d`` index arithmetic, for any centres. The
sampled masks are compared with the same re-statement driven by NumPy's generator: the
histogram of visible counts without ``require_same_masks`` (which sees the number of centres
and the block overlap), the histogram of adjacent visible pairs with it (which sees the block
structure left after the count is made exact), and every position's visible frequency (which
sees the border clamping). All draws use fixed seeds, so the tests are deterministic; the
thresholds are those of a test at the 1e-3 level (chi-square) or 5 standard errors.
"""

from __future__ import annotations

import functools
import re

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import checkify
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from pipelines import users_compile
from scipy import stats

import jgather
from jgather.masking._inverse_block import _blocks

COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")


def reference_masks(rng, n, grid, mask_ratio, *, mask_length=3, adjust=0.07, same=True,
                    inverse=True):  # fmt: skip
    """NumPy re-statement of compute_block_mask_2d (no dropout, no adjacency expansion)."""
    h, w = grid
    length = h * w
    p = 1 - mask_ratio if inverse else mask_ratio
    count = int(length * ((p + adjust) / mask_length**2))
    centres = rng.integers(0, length, size=(n, count))
    mask = reference_blocks(centres, grid, mask_length)
    if same:
        target = int(length * p)
        for m in mask:
            k = int(m.sum())
            if k > target:
                m[rng.choice(np.flatnonzero(m), k - target, replace=False)] = False
            elif k < target:
                m[rng.choice(np.flatnonzero(~m), target - k, replace=False)] = True
    return ~mask if inverse else mask


def reference_blocks(centres, grid, mask_length):
    """[n, L] bool: every index ``centre + offset`` clamped into the grid and set."""
    h, w = grid
    n, count = centres.shape
    mask = np.zeros((n, h, w), bool)
    rows, cols = centres // w, centres % w
    batch = np.repeat(np.arange(n), count)
    offset = mask_length // 2
    for i in range(mask_length):
        for j in range(mask_length):
            r = np.clip(rows + i - offset, 0, h - 1).ravel()
            c = np.clip(cols + j - offset, 0, w - 1).ravel()
            mask[batch, r, c] = True
    return mask.reshape(n, h * w)


def two_sample_chi2(a, b, min_count=10):
    """p-value that integer samples ``a`` and ``b`` come from one distribution (sparse bins
    merged into their neighbours until each holds ``min_count`` of the pooled samples)."""
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    ca = np.bincount(a - lo, minlength=hi - lo + 1)
    cb = np.bincount(b - lo, minlength=hi - lo + 1)
    bins, cur = [], np.zeros(2, np.int64)
    for x, y in zip(ca, cb, strict=True):
        cur += (x, y)
        if cur.sum() >= min_count:
            bins.append(cur)
            cur = np.zeros(2, np.int64)
    if cur.sum():
        bins[-1] = bins[-1] + cur
    table = np.array(bins).T
    if table.shape[1] < 2:
        return 1.0
    return stats.chi2_contingency(table)[1]


def sample(grid, mask_ratio, **kw):
    """250 samples' masks (16 each by default) as [250 * M, L] NumPy bools, one compile per
    configuration for the whole module."""
    kw.setdefault("num_masks", 16)
    return _sample(grid, mask_ratio, tuple(sorted(kw.items())))


@functools.cache
def _sample(grid, mask_ratio, kw):
    draw = jax.jit(lambda k: jgather.inverse_block_masking(k, 250, grid, mask_ratio, **dict(kw)))
    m = np.asarray(draw(jax.random.key(7)))
    m.setflags(write=False)
    return m


# ----------------------------------------------------------------------------------------------
# The construction, exactly.


@pytest.mark.parametrize(("grid", "mask_length"), [((14, 14), 3), ((6, 9), 2), ((5, 4), 4)])
def test_blocks_equal_the_reference_clamped_indices(grid, mask_length):
    rng = np.random.default_rng(0)
    length = grid[0] * grid[1]
    centres = rng.integers(0, length, size=(256, 12)).astype(np.int32)
    # Rows with fewer distinct centres (repeats, as torch.randint draws them), down to one.
    distinct = rng.integers(1, 13, size=256)
    centres = np.take_along_axis(centres, np.arange(12)[None] % distinct[:, None], axis=1)
    got = jax.jit(jax.vmap(lambda c: _blocks(c, grid, mask_length)))(centres)
    np.testing.assert_array_equal(got, reference_blocks(centres, grid, mask_length))


# ----------------------------------------------------------------------------------------------
# Counts and layout.


@pytest.mark.parametrize(
    ("grid", "ratio", "kw"),
    [((14, 14), 0.8, {}), ((8, 12), 0.5, {"mask_length": 2, "inverse": False}),
     ((4, 4), 1.0, {"num_masks": 2})],
)  # fmt: skip
def test_every_mask_has_the_reference_count(grid, ratio, kw):
    length = grid[0] * grid[1]
    m = sample(grid, ratio, **kw)
    assert m.shape == (250 * kw.get("num_masks", 16), length) and m.dtype == np.bool_
    inverse = kw.get("inverse", True)
    blocked = int(length * (1 - ratio if inverse else ratio))  # the reference's target count
    np.testing.assert_array_equal(m.sum(1), length - blocked if inverse else blocked)


def test_default_keeps_random_maskings_len_keep_and_feeds_apply_mask():
    n, m_per = 2, 16
    masks = sample((14, 14), 0.8)[: n * m_per]  # samples 0 and 1, 16 masks each
    num_keep = int(196 * (1 - 0.8))
    assert num_keep == 39
    x = jax.random.normal(jax.random.key(1), (n, 196, 8))
    out = jgather.apply_mask(jnp.repeat(x, m_per, axis=0), masks, num_keep)
    assert out.x_masked.shape == (n * m_per, num_keep, 8)
    # Row i * M + j is a clone of sample i: its kept tokens are sample i's rows.
    rows = masks.reshape(n, m_per, 196)
    for i in range(n):
        for j in (0, m_per - 1):
            want = np.asarray(x[i])[~rows[i, j]]
            np.testing.assert_array_equal(out.x_masked[i * m_per + j], want)


def test_masks_are_sample_major_and_mask_j_does_not_depend_on_num_masks():
    three = np.asarray(fn(KEYS)).reshape(8, 3, 36)
    one = np.asarray(
        jax.jit(lambda k: jgather.inverse_block_masking(k, 8, (6, 6), 0.75, num_masks=1))(KEYS)
    )
    np.testing.assert_array_equal(three[:, 0], one)
    assert (three[:, 0] != three[:, 1]).any(axis=1).sum() >= 4  # the clones are drawn anew


def test_without_require_same_masks_the_blocks_stay_as_drawn_and_the_count_trims_or_fills():
    same, drawn = sample((14, 14), 0.8), sample((14, 14), 0.8, require_same_masks=False)
    visible, exact = ~drawn, ~same
    assert visible.sum(1).min() < 39 < visible.sum(1).max()  # the drawn counts vary
    # From the same key, the exact count only removes blocked tokens (too many) or adds
    # others (too few): the final visible set is a subset or a superset of the drawn one.
    for v, e in zip(visible, exact, strict=True):
        assert (e <= v).all() if v.sum() >= 39 else (v <= e).all()


# ----------------------------------------------------------------------------------------------
# The sampler against the NumPy re-statement.


def test_visible_count_distribution_matches_the_reference_without_same_masks():
    n = 4000
    got = (~sample((14, 14), 0.8, require_same_masks=False)).sum(1)
    want = (~reference_masks(np.random.default_rng(0), n, (14, 14), 0.8, same=False)).sum(1)
    assert two_sample_chi2(got, want) > 1e-3
    # and against a wrong number of centres (mask_prob_adjust=0 draws 4 instead of 5)
    fewer = (~reference_masks(np.random.default_rng(1), n, (14, 14), 0.8, adjust=0.0,
                              same=False)).sum(1)  # fmt: skip
    assert two_sample_chi2(got, fewer) < 1e-6


def _adjacent_pairs(masks, grid):
    v = ~masks.reshape(-1, *grid)
    return (v[:, :, 1:] & v[:, :, :-1]).sum((1, 2)) + (v[:, 1:] & v[:, :-1]).sum((1, 2))


@pytest.mark.parametrize(
    ("grid", "ratio", "kw"),
    [((14, 14), 0.8, {}), ((8, 12), 0.5, {"mask_length": 2, "inverse": False})],
)
def test_block_structure_and_positions_match_the_reference(grid, ratio, kw):
    n = 4000
    got = sample(grid, ratio, **kw)
    ref_kw = {"mask_length": kw.get("mask_length", 3), "inverse": kw.get("inverse", True)}
    want = reference_masks(np.random.default_rng(0), n, grid, ratio, **ref_kw)
    assert two_sample_chi2(_adjacent_pairs(got, grid), _adjacent_pairs(want, grid)) > 1e-3
    # Every position's visible frequency: two proportions within 5 standard errors.
    a, b = (~got).mean(0), (~want).mean(0)
    pooled = (a + b) / 2
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1e-12) * 2 / n)
    assert np.abs(a - b).max() < 5 * se.max(), np.abs(a - b) / se
    # The last corner differs from the centre (the clamp), in both samplers alike.
    corner, centre = (grid[0] - 1, grid[1] - 1), (grid[0] // 2, grid[1] // 2)
    idx = lambda rc: rc[0] * grid[1] + rc[1]
    assert abs(a[idx(corner)] - a[idx(centre)]) > 5 * se.max()


# ----------------------------------------------------------------------------------------------
# Keys, transformations, sharding, checkify.


def _fn(keys):
    return jgather.inverse_block_masking(keys, keys.shape[0], (6, 6), 0.75, num_masks=3)


fn = jax.jit(_fn)


KEYS = jgather.example_keys(jax.random.key(42), jnp.arange(8))


def test_masks_follow_the_example_across_batch_size_and_position():
    full = np.asarray(fn(KEYS)).reshape(8, 3, 36)
    ids = np.array([5, 0, 2])
    part = np.asarray(fn(jgather.example_keys(jax.random.key(42), jnp.asarray(ids))))
    np.testing.assert_array_equal(part.reshape(3, 3, 36), full[ids])


def test_jit_vmap_and_checkify():
    eager = fn(KEYS)
    # checkify of a vmap over an outer axis of key batches, under jit: one call per batch,
    # and no error found.
    run = jax.jit(checkify.checkify(jax.vmap(_fn), errors=checkify.all_checks))
    err, out = run(jnp.stack([KEYS, KEYS[::-1]]))
    assert err.get() is None, err.get()
    chex.assert_trees_all_equal(out[0], eager)
    chex.assert_trees_all_equal(out[1].reshape(8, 3, 36), eager.reshape(8, 3, 36)[::-1])


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize("kind", ["explicit", "auto"])
def test_batch_sharded_on_both_mesh_kinds_without_collectives(kind):
    devices = jax.devices()[:8]
    if kind == "explicit":
        mesh = jax.make_mesh((8,), ("batch",), axis_types=(AxisType.Explicit,), devices=devices)
    else:
        mesh = Mesh(np.array(devices), ("batch",))
    sharding = NamedSharding(mesh, P("batch"))
    expected = np.asarray(fn(KEYS))
    sharded = jax.device_put(KEYS, sharding)
    compiled = users_compile(jax.jit(_fn).lower(sharded))
    out = compiled(sharded)
    np.testing.assert_array_equal(out, expected)
    assert out.sharding.is_equivalent_to(sharding, 2), out.sharding
    assert not COLLECTIVES.findall(compiled.as_text())


# ----------------------------------------------------------------------------------------------
# Errors.

K = jax.random.key(0)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: jgather.inverse_block_masking(K, 2, (4, 4), 1.5), ValueError, r"\[0, 1\]"),
        (lambda: jgather.inverse_block_masking(K, 2, (4, 4), "0.5"), TypeError, "real number"),
        (lambda: jgather.inverse_block_masking(K, 2.0), TypeError, "batch_size"),
        (lambda: jgather.inverse_block_masking(K, 2, (4, 4, 4)), ValueError, r"\(H, W\)"),
        (
            lambda: jgather.inverse_block_masking(K, 2, num_masks=0),
            ValueError,
            "num_masks` must be >= 1",
        ),
        (
            lambda: jgather.inverse_block_masking(K, 2, mask_length=1),
            ValueError,
            "random_masking",
        ),
        (
            lambda: jgather.inverse_block_masking(K, 2, mask_prob_adjust=-0.5),
            ValueError,
            "block centres",
        ),
        (
            lambda: jgather.inverse_block_masking(K, 2, inverse=1),
            TypeError,
            "`inverse` must be a bool",
        ),
        (
            lambda: jgather.inverse_block_masking(jax.random.split(K, 3), 2),
            ValueError,
            "batch of 3 keys",
        ),
    ],
)
def test_errors_name_the_function_and_the_fix(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert str(info.value).startswith("inverse_block_masking: ")


def test_traced_ratio_is_a_type_error():
    with pytest.raises(TypeError, match="static"):
        jax.jit(lambda r: jgather.inverse_block_masking(K, 2, (4, 4), r))(0.5)
