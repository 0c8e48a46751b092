"""Multi-block masks (I-JEPA, V-JEPA): boxes to masks, the samplers, apply_masks.

* ``box_masks`` against NumPy slicing for any non-negative boxes (hypothesis);
* ``multiblock_masking``'s masks, index sets and boxes agree with each other, plain, under
  ``jax.jit`` and ``jax.vmap``, under checkify, on both kinds of mesh without collectives, and
  with per-example keys whatever the batch;
* the sampled block sizes and positions against NumPy re-statements of the references'
  samplers (chi-square and exact support checks, fixed seeds);
* the size tables at every float32 ``u`` around each break, against the references' formulas;
* ``truncate="batch_min"`` against a re-statement of the collators' ``cm[:min_keep]``, and
  ``truncate="batch_min_valid"`` (jitted) against ``batch_min``;
* I-JEPA's ``num_contexts`` and ``allow_overlap`` against a re-statement of its loop, and
  V-JEPA's two configs' joint size law with one ``size_key``;
* ``apply_masks`` against the references' gather-and-concatenate, ``unapply_masks`` as its
  inverse.

Compiles dominate the run time, so the configurations are few and reused.
"""

from __future__ import annotations

import functools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.experimental import checkify
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from pipelines import users_compile

import jgather
from jgather.masking import _ijepa, _vjepa

stats = pytest.importorskip("scipy.stats")

IJEPA_GRID = (16, 16)
VJEPA_GRID = (4, 8, 8)
GRIDS_OF = {"ijepa": IJEPA_GRID, "vjepa": VJEPA_GRID}
N = 8
SIZE_KEY = jax.random.key(7)


def ijepa(key, n=N, **kw):
    return jgather.multiblock_masking(key, n, IJEPA_GRID, **kw)


def vjepa(key, n=N, **kw):
    return jgather.multiblock_masking(key, n, VJEPA_GRID, **{"preset": "vjepa", **kw})


@functools.cache
def _jitted(preset, n, grid, items):
    kw = dict(items)
    fn = lambda k, sk: jgather.multiblock_masking(k, n, grid, preset=preset, size_key=sk, **kw)
    return jax.jit(fn)


def sample(key, n, preset="ijepa", grid=None, size_key=None, **kw):
    """``multiblock_masking`` through one cached, unoptimised jit per configuration.

    ``preset`` is a preset's name or a config; ``kw`` the call's other static arguments.
    """
    if grid is None:
        grid = GRIDS_OF["ijepa" if isinstance(preset, jgather.IJepaConfig) else preset]
    run = _jitted(preset, n, grid, tuple(sorted(kw.items())))
    return jax.tree.map(np.asarray, run(key, size_key))


@functools.cache
def drawn(preset):
    return sample(jax.random.key(0), N, preset)


# ----------------------------------------------------------------------------------------------
# Boxes to masks.


def slice_masks(boxes, grid):
    """The references' construction: ``mask[top:top + h, left:left + w] = 1`` per box."""
    d = len(grid)
    out = np.zeros(boxes.shape[:-1] + tuple(grid), bool)
    for idx in np.ndindex(boxes.shape[:-1]):
        b = boxes[idx]
        out[idx][tuple(slice(b[a], b[a] + b[d + a]) for a in range(d))] = True
    return out.reshape((*boxes.shape[:-1], -1))


GRIDS = [(5, 7), (1, 4), (3, 4, 5)]


@given(st.sampled_from(GRIDS), st.data())
def test_box_masks_equal_slicing(grid, data):
    d = len(grid)
    corners = st.integers(0, max(grid) + 2)
    boxes = np.array(
        data.draw(
            st.lists(st.lists(corners, min_size=2 * d, max_size=2 * d), min_size=6, max_size=6)
        ),
        np.int32,
    ).reshape(2, 3, 2 * d)
    got = np.asarray(jgather.box_masks(boxes, grid))
    np.testing.assert_array_equal(got, slice_masks(boxes, grid))


def test_box_masks_dtypes_and_errors():
    boxes = np.array([[0, 1, 2, 9]], np.int64)
    np.testing.assert_array_equal(
        np.asarray(jgather.box_masks(boxes, 3)), slice_masks(boxes, (3, 3))
    )
    for bad, error, match in [
        ((np.array([[0.0, 1, 1, 1]]), (4, 4)), TypeError, "integer array"),
        ((np.array([[0, 1, 1]]), (4, 4)), ValueError, r"\[\.\.\., 4\]"),
        ((np.array([[0, 1, 1, 1]]), (2, 4, 4)), ValueError, r"\[\.\.\., 6\]"),
        ((np.array([[-1, 1, 1, 1]]), (4, 4)), ValueError, ">= 0"),
        ((np.array([[0, 1, 1, 1]]), (4, 4, 4, 4)), ValueError, r"\(T, H, W\)"),
    ]:
        with pytest.raises(error, match=match) as info:
            jgather.box_masks(*bad)
        assert "box_masks" in str(info.value)


# ----------------------------------------------------------------------------------------------
# Consistency of one draw.


def assert_index_sets(ids, valid, masks):
    """Each set's tokens in raster order in the valid slots, other tokens after, no repeats."""
    ids, valid, masks = (a.reshape(-1, a.shape[-1]) for a in (ids, valid, masks))
    for row_ids, row_valid, row_mask in zip(ids, valid, masks, strict=True):
        count = int(row_mask.sum())
        np.testing.assert_array_equal(row_valid, np.arange(len(row_valid)) < count)
        np.testing.assert_array_equal(row_ids[:count], np.flatnonzero(row_mask))
        assert len(set(row_ids.tolist())) == len(row_ids)
        assert not row_mask[row_ids[count:]].any()


def test_ijepa_draw_is_consistent():
    out = drawn("ijepa")
    h_grid, w_grid = IJEPA_GRID
    assert out.context_mask.shape == (N, 256) and out.context_mask.dtype == bool
    assert out.target_masks.shape == (N, 4, 256)
    assert out.target_ids.dtype == np.int32 and out.target_boxes.shape == (N, 4, 1, 4)
    boxes = out.target_boxes[:, :, 0]
    np.testing.assert_array_equal(out.target_masks, slice_masks(boxes, IJEPA_GRID))
    # One target size per batch; corners exclusive of H - h.
    assert (boxes[..., 2:] == boxes[0, 0, 2:]).all()
    assert (boxes[..., 0] + boxes[..., 2] < h_grid).all()
    assert (boxes[..., 1] + boxes[..., 3] < w_grid).all()
    # The context is its block minus every target, with more than min_keep tokens.
    block = slice_masks(out.context_box, IJEPA_GRID)
    np.testing.assert_array_equal(out.context_mask, block & ~out.target_masks.any(1))
    assert (out.context_mask.sum(-1) > 10).all()
    assert_index_sets(out.context_ids, out.context_valid, out.context_mask)
    assert_index_sets(out.target_ids, out.target_valid, out.target_masks)


def test_vjepa_draw_is_consistent():
    out = drawn("vjepa")
    length = math.prod(VJEPA_GRID)
    assert out.context_mask.shape == (N, length) and out.target_masks.shape == (N, 1, length)
    assert out.target_boxes.shape == (N, 1, 8, 6)
    union = slice_masks(out.target_boxes[:, 0], VJEPA_GRID).any(1)
    np.testing.assert_array_equal(out.target_masks[:, 0], union)
    np.testing.assert_array_equal(out.context_mask, ~union)
    assert out.context_mask.any(-1).all()
    assert (out.context_box == [0, 0, 0, *VJEPA_GRID]).all()
    boxes = out.target_boxes
    assert (boxes[..., 3:] == boxes[0, 0, 0, 3:]).all()  # one size per batch
    assert (boxes[..., :3] + boxes[..., 3:] <= np.array(VJEPA_GRID)).all()  # inclusive corners
    assert_index_sets(out.context_ids, out.context_valid, out.context_mask)
    assert_index_sets(out.target_ids, out.target_valid, out.target_masks)


def test_vjepa_context_limits():
    config = jgather.VJepaConfig(max_temporal_keep=0.5, max_keep=40)
    out = sample(jax.random.key(1), 4, config, VJEPA_GRID)
    frames = np.arange(math.prod(VJEPA_GRID)) // 64
    union = slice_masks(out.target_boxes[:, 0], VJEPA_GRID).any(1)
    # The target also holds every frame past the context's (as the reference's complement).
    np.testing.assert_array_equal(out.target_masks[:, 0], union | (frames >= 2))
    free = ~union & (frames < 2)
    for row, ctx in zip(free, out.context_mask, strict=True):
        np.testing.assert_array_equal(ctx, row & (np.cumsum(row) <= 40))
    assert out.context_ids.shape[1] == 40
    assert (out.context_box == [0, 0, 0, 2, 8, 8]).all()


def test_presets_shapes():
    fn = lambda k: jgather.multiblock_masking(k, 2, (8, 14, 14), preset="vjepa_long")
    long = jax.eval_shape(fn, jax.random.key(0))
    assert long.target_boxes.shape == (2, 1, 2, 6)
    assert long.context_ids.shape[0] == 2 and long.target_ids.shape[:2] == (2, 1)


# ----------------------------------------------------------------------------------------------
# Transformations, keys, meshes.


def test_vmap_over_key_batches_under_checkify():
    # A caller's extra axis of keys, each row as its own call; checkify (all checks) through
    # the whole jitted program finds no error.
    keys = jnp.stack([jax.random.key(0), jax.random.key(1)])
    checked = checkify.checkify(jax.vmap(lambda k: ijepa(k)), errors=checkify.all_checks)
    err, batched = jax.jit(checked)(keys)
    assert err.get() is None
    for i in range(2):
        one = sample(keys[i], N, "ijepa")  # the plain jitted run
        jax.tree.map(lambda a, b, i=i: np.testing.assert_array_equal(a[i], b), batched, one)


BASE = jax.random.key(42)


@pytest.mark.parametrize(
    ("preset", "per_sample_size"),
    [("ijepa", False), ("vjepa", False), ("ijepa", True)],
    ids=["ijepa-size_key", "vjepa-size_key", "ijepa-per_sample_size"],
)
def test_masks_follow_the_example(preset, per_sample_size):
    size_key = None if per_sample_size else SIZE_KEY

    def masks(ids):
        keys = jgather.example_keys(BASE, jnp.asarray(ids, jnp.int32))
        return sample(keys, len(ids), preset, size_key=size_key, per_sample_size=per_sample_size)

    ref = masks(np.arange(N))
    orders = [tuple(range(N))[::-1]]  # every example in another row
    if preset == "vjepa":
        orders.append((5, 0, 2))  # and a smaller batch
    for ids in orders:
        out = masks(ids)
        for row, example in enumerate(ids):
            for name in ("context_mask", "target_masks", "context_ids", "target_ids"):
                np.testing.assert_array_equal(
                    getattr(out, name)[row], getattr(ref, name)[example], err_msg=name
                )


def test_keys_and_size_arguments():
    keys = jax.random.split(BASE, N)
    with pytest.raises(ValueError, match=r"size_key=jax\.random\.fold_in") as info:
        ijepa(keys)
    assert "multiblock_masking" in str(info.value)
    with pytest.raises(ValueError, match="one or the other"):
        ijepa(keys, size_key=SIZE_KEY, per_sample_size=True)


COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")


def make_mesh(kind):
    if kind == "explicit":
        mesh = jax.make_mesh((8,), ("batch",), devices=jax.devices()[:8])
        assert mesh.axis_types == (AxisType.Explicit,)
        return mesh
    return Mesh(np.array(jax.devices()[:8]), ("batch",))


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize(
    ("preset", "kind", "mode"),
    # Both presets on the stricter explicit-axis mesh (array types carry the sharding there),
    # and the auto-axis mesh (the compiler propagates the shardings), with per-batch sizes
    # from a size_key and with per-sample sizes; and the jittable batch_min cut, whose batch
    # minimum is the one collective.
    [
        ("ijepa", "explicit", "size_key"),
        ("vjepa", "explicit", "size_key"),
        ("ijepa", "auto", "size_key"),
        ("ijepa", "explicit", "per_sample_size"),
        ("vjepa", "explicit", "per_sample_size"),
        ("ijepa", "auto", "per_sample_size"),
        ("ijepa", "explicit", "batch_min_valid"),
    ],
)
def test_sharded_keys_on_both_meshes(preset, kind, mode):
    keys = jgather.example_keys(BASE, jnp.arange(N, dtype=jnp.int32))
    per_sample = mode == "per_sample_size"
    kw = {"per_sample_size": per_sample}
    if mode == "batch_min_valid":
        kw["truncate"] = mode
    run = _jitted(preset, N, GRIDS_OF[preset], tuple(sorted(kw.items())))
    size_key = None if per_sample else SIZE_KEY
    expected = sample(keys, N, preset, size_key=size_key, **kw)
    sharding = NamedSharding(make_mesh(kind), P("batch"))
    sharded = jax.device_put(keys, sharding)
    compiled = users_compile(run.lower(sharded, size_key))
    out = compiled(sharded, size_key)
    jax.tree.map(np.testing.assert_array_equal, jax.tree.map(np.asarray, out), expected)
    for name, a in vars(out).items():
        if name == "grid" or (preset == "vjepa" and name == "context_box"):
            continue  # V-JEPA's context box is one constant for every clip
        assert a.sharding.is_equivalent_to(sharding, a.ndim), (name, a.sharding)
    found = set(COLLECTIVES.findall(compiled.as_text()))
    assert found == ({"all-reduce"} if mode == "batch_min_valid" else set()), found


# ----------------------------------------------------------------------------------------------
# Truncation.


def collator_truncation(masks):
    """The collators' ``[cm[:min_keep] for cm in ...]`` over per-sample index lists."""
    lists = [np.flatnonzero(m) for m in masks.reshape(-1, masks.shape[-1])]
    k = min(len(c) for c in lists)
    return np.stack([c[:k] for c in lists]).reshape((*masks.shape[:-1], k))


def test_batch_min_reproduces_the_collators():
    # V-JEPA, where both the context and the target counts vary from clip to clip.
    out = jax.tree.map(np.asarray, vjepa(jax.random.key(0), truncate="batch_min"))  # eager only
    full = drawn("vjepa")
    np.testing.assert_array_equal(out.context_mask, full.context_mask)
    np.testing.assert_array_equal(out.context_ids, collator_truncation(full.context_mask))
    np.testing.assert_array_equal(out.target_ids, collator_truncation(full.target_masks))
    assert out.context_valid.all() and out.target_valid.all()
    # The jittable cut keeps the same tokens (the same keys, so the same counts exactly, which
    # is stronger than a test of their law) in the padded shapes, marked by valid.
    cut = sample(jax.random.key(0), N, "vjepa", truncate="batch_min_valid")
    for ids, valid, eager in [
        (cut.context_ids, cut.context_valid, out.context_ids),
        (cut.target_ids, cut.target_valid, out.target_ids),
    ]:
        k = eager.shape[-1]
        np.testing.assert_array_equal(
            valid, np.broadcast_to(np.arange(valid.shape[-1]) < k, valid.shape)
        )
        np.testing.assert_array_equal(ids[..., :k], eager)
    assert cut.context_ids.shape == full.context_ids.shape
    for fn in (ijepa, vjepa):
        with pytest.raises(TypeError, match=r"truncate='batch_min_valid'") as info:
            jax.eval_shape(lambda k, fn=fn: fn(k, truncate="batch_min"), jax.random.key(0))
        assert "multiblock_masking" in str(info.value)


def test_argument_errors():
    key = jax.random.key(0)
    ij, vj = jgather.IJepaConfig, jgather.VJepaConfig
    for call, error, match in [
        (lambda: jgather.multiblock_masking(key, 2, (4, 4, 4)), ValueError, "image grid"),
        (lambda: jgather.multiblock_masking(key, 2, (4, 4), preset="vjepa"), ValueError, "video"),
        (lambda: jgather.multiblock_masking(key, 2, (4, 4), preset="x"), ValueError, "preset"),
        (lambda: ijepa(key, truncate="min"), ValueError, "truncate"),
        (lambda: ijepa(key, num_blocks=2), ValueError, "num_blocks is not an argument"),
        (lambda: vjepa(key, min_keep=2), ValueError, "min_keep is not an argument"),
        (lambda: ijepa(key, preset=ij(target_scale=(0.3, 0.2))), ValueError, "lo <= hi"),
        (lambda: ijepa(key, preset=ij(min_keep=60)), ValueError, "retry such a draw forever"),
        (lambda: ijepa(key, preset=ij(num_targets=2.0)), TypeError, "num_targets"),
        (lambda: ijepa(key, preset=ij(num_contexts=0)), ValueError, "num_contexts"),
        (lambda: ijepa(key, preset=ij(allow_overlap=1)), TypeError, "allow_overlap"),
        (lambda: vjepa(key, preset=vj(max_keep=0)), ValueError, "max_keep"),
    ]:
        with pytest.raises(error, match=match) as info:
            call()
        assert "multiblock_masking" in str(info.value)


def test_config_keywords_are_deprecated_and_equal_the_config():
    from jgather.masking import _multiblock

    key = jax.random.key(3)
    for preset, grid, kw, config in [
        ("ijepa", (6, 6), {"num_targets": 2, "min_keep": 3}, jgather.IJepaConfig(2, min_keep=3)),
        ("vjepa", (2, 4, 4), {"num_blocks": 2, "max_keep": None}, jgather.VJepaConfig(2)),
    ]:
        call = lambda k, p=preset, g=grid, kw=kw: jgather.multiblock_masking(
            k, 2, g, preset=p, **kw
        )
        with pytest.warns(DeprecationWarning, match=r"preset=jgather\.[IV]JepaConfig\(") as rec:
            jax.eval_shape(call, key)
        assert rec[0].filename == __file__  # points at the caller
        with pytest.warns(DeprecationWarning):
            assert _multiblock._config("f", preset, kw) == config


# ----------------------------------------------------------------------------------------------
# Sampling facts against NumPy re-statements of the references.


def np_ijepa_size(u, grid, scale, aspect):
    """I-JEPA's ``_sample_block_size`` for an array of uniforms (float64, as Python)."""
    h_grid, w_grid = grid
    keep = np.floor(h_grid * w_grid * (scale[0] + u * (scale[1] - scale[0])))
    ar = aspect[0] + u * (aspect[1] - aspect[0])
    h = np.minimum(np.round(np.sqrt(keep * ar)), h_grid - 1)
    w = np.minimum(np.round(np.sqrt(keep / ar)), w_grid - 1)
    return h.astype(int), w.astype(int)


def np_vjepa_size(u, grid, t_scale, s_scale, aspect):
    """V-JEPA's ``_sample_block_size``: three separate uniforms ``u[..., 0:3]``."""
    duration, h_grid, w_grid = grid
    t = np.maximum(1, np.floor(duration * (t_scale[0] + u[..., 0] * (t_scale[1] - t_scale[0]))))
    keep = np.floor(h_grid * w_grid * (s_scale[0] + u[..., 1] * (s_scale[1] - s_scale[0])))
    ar = aspect[0] + u[..., 2] * (aspect[1] - aspect[0])
    h = np.minimum(np.round(np.sqrt(keep * ar)), h_grid)
    w = np.minimum(np.round(np.sqrt(keep / ar)), w_grid)
    return t.astype(int), h.astype(int), w.astype(int)


def assert_same_distribution(got, expected_probs, what):
    """Chi-square goodness of fit of observed categories against expected probabilities."""
    cats = sorted(expected_probs)
    counts = {}
    for g in got:
        counts[g] = counts.get(g, 0) + 1
    assert set(counts) <= set(cats), (what, set(counts) - set(cats))
    n = len(got)
    exp = np.array([expected_probs[c] * n for c in cats])
    obs = np.array([counts.get(c, 0) for c in cats])
    keep = exp >= 5  # pool the rare categories
    obs = np.append(obs[keep], obs[~keep].sum())
    exp = np.append(exp[keep], exp[~keep].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
    stat = ((obs - exp) ** 2 / exp).sum()
    p = stats.chi2.sf(stat, len(exp) - 1)
    assert p > 1e-4, (what, p, dict(zip(cats, obs, strict=False)))


def probabilities(values):
    vals, counts = np.unique(np.asarray(values), axis=0, return_counts=True)
    return {
        tuple(int(x) for x in np.atleast_1d(v)): c / counts.sum()
        for v, c in zip(vals, counts, strict=True)
    }


GRID_U = (np.arange(400_000) + 0.5) / 400_000  # a fine grid of u: the size's exact law


def corner_law(size_probs, axis, grid_size, inclusive):
    """The law of a corner given the law of the block's extent: uniform below ``size - h``."""
    law = {}
    for size, p in size_probs.items():
        n = grid_size - size[axis] + (1 if inclusive else 0)
        for v in range(n):
            law[(v,)] = law.get((v,), 0.0) + p / n
    return law


def test_ijepa_sizes_and_corners_match_the_reference_sampler():
    # Per-sample sizes give many size draws in one call; their law is the per-batch draw's.
    grid, n = (14, 14), 1500
    scale, aspect, c_scale = (0.1, 0.4), (0.4, 2.5), (0.5, 1.0)
    config = jgather.IJepaConfig(1, scale, aspect, c_scale, min_keep=4)
    out = sample(jax.random.key(11), n, config, grid, per_sample_size=True)
    boxes = out.target_boxes[:, 0, 0]
    ref_t = probabilities(np.stack(np_ijepa_size(GRID_U, grid, scale, aspect), -1))
    ref_c = probabilities(np.stack(np_ijepa_size(GRID_U, grid, c_scale, (1.0, 1.0)), -1))
    assert len(ref_t) > 10  # the correlated draw reaches many sizes, not every pair
    assert_same_distribution([tuple(b) for b in boxes[:, 2:].tolist()], ref_t, "target size")
    c_sizes = [tuple(b) for b in out.context_box[:, 2:].tolist()]
    assert_same_distribution(c_sizes, ref_c, "context size")
    # Corners randint(0, H - h): uniform, exclusive of H - h.
    for axis in (0, 1):
        law = corner_law(ref_t, axis, grid[axis], inclusive=False)
        assert_same_distribution([(v,) for v in boxes[:, axis].tolist()], law, "corner")
        assert (boxes[:, axis] + boxes[:, 2 + axis] <= grid[axis] - 1).all()


def test_vjepa_sizes_and_corners_match_the_reference_sampler():
    grid, n = (6, 10, 10), 1000
    t_scale, s_scale, aspect = (0.3, 1.0), (0.1, 0.5), (0.5, 2.0)
    config = jgather.VJepaConfig(1, s_scale, t_scale, aspect)
    out = sample(jax.random.key(12), n, config, grid, per_sample_size=True)
    boxes = out.target_boxes[:, 0, 0]
    u = np.random.default_rng(1).random((300_000, 3))
    ref_sizes = np.stack(np_vjepa_size(u, grid, t_scale, s_scale, aspect), -1)
    ref = probabilities(ref_sizes)
    assert_same_distribution([tuple(b) for b in boxes[:, 3:].tolist()], ref, "(t, h, w)")
    # The draws are separate: the duration's law on its own, too.
    t_ref = probabilities(ref_sizes[:, 0])
    assert_same_distribution([(t,) for t in boxes[:, 3].tolist()], t_ref, "t")
    # Corners randint(0, H - h + 1): uniform, the far edge included.
    for axis in range(3):
        law = corner_law(ref, axis, grid[axis], inclusive=True)
        assert_same_distribution([(v,) for v in boxes[:, axis].tolist()], law, "corner")
        assert (boxes[:, axis] + boxes[:, 3 + axis] == grid[axis]).any()


# The references draw u with torch.rand (float32) and compute in Python floats (float64).
# Every float32 u within 16 steps of each break, and the u of size keys that once took the
# neighbouring size (a float32 just below a break, rounded up to it).
NEAR = np.arange(-16, 17)
ROUNDED_UP = {"ijepa": [7628688], "vjepa": [957095], "vjepa_long": [4472670]}


def near_breaks(breaks):
    bits = np.asarray(breaks, np.float32).view(np.int32)[:, None] + NEAR
    u = np.unique(bits.clip(0, np.float32(1).view(np.int32) - 1).astype(np.int32))
    return u.view(np.float32)


def key_uniforms(seeds, draws):
    """The uniforms ``multiblock_masking`` draws from ``size_key=jax.random.key(seed)``."""
    return np.stack([np.asarray(jax.random.uniform(jax.random.key(s), (draws,))) for s in seeds])


def test_size_tables_equal_the_reference_at_every_float32_around_each_break():
    # On device (the jitted lookups), against the references' formulas in float64.
    grid = (14, 14)
    ij = _ijepa._args("t", grid, jgather.IJepaConfig()._checked("t"))
    u_t = near_breaks(ij.target_table.breaks)
    u_c = near_breaks(ij.context_table.breaks)
    m = max(len(u_t), len(u_c))
    u = np.stack([np.resize(u_t, m), np.resize(u_c, m)], -1)
    u = np.concatenate([u, key_uniforms(ROUNDED_UP["ijepa"], 2)])
    got = np.asarray(jax.jit(jax.vmap(lambda v: _ijepa._sizes(v, ij)))(u))
    u64 = u.astype(np.float64)
    expected_t = np.stack(np_ijepa_size(u64[:, 0], grid, (0.15, 0.2), (0.75, 1.5)), -1)
    expected_c = np.stack(np_ijepa_size(u64[:, 1], grid, (0.85, 1.0), (1.0, 1.0)), -1)
    np.testing.assert_array_equal(got[:, 0], expected_t)
    np.testing.assert_array_equal(got[:, 1], expected_c)
    np.testing.assert_array_equal(got[-1, 0], [7, 5])  # the key that once gave (8, 5)
    for preset in ("vjepa", "vjepa_long"):
        config = jgather.VJepaConfig(
            num_blocks=2, spatial_scale=(0.7 if preset[-1] == "g" else 0.15)
        )
        grid3 = (8, 14, 14)
        tables = _vjepa.size_tables(grid3, config._checked("t"))
        u_a = near_breaks([b for table in tables.hw for b in table.breaks])
        u = np.stack([np.full_like(u_a, 0.5), np.full_like(u_a, 0.5), u_a], -1)
        u = np.concatenate([u, key_uniforms(ROUNDED_UP[preset], 3)])
        got = np.asarray(jax.jit(jax.vmap(lambda v, t=tables: _vjepa._sizes(v, t)))(u))
        scale = (config.spatial_scale,) * 2
        expected = np_vjepa_size(u.astype(np.float64), grid3, (1.0, 1.0), scale, (0.75, 1.5))
        np.testing.assert_array_equal(got, np.stack(expected, -1))


def test_size_tables_of_ranges_at_every_float32_around_each_break():
    # Scale ranges (many keep counts), on the host: ``sum(u >= breaks)`` is the device's rule.
    lookup = lambda table, u: np.asarray(table.values)[
        np.searchsorted(np.asarray(table.breaks), u, side="right")
    ]
    grid, scale, aspect = (14, 14), (0.1, 0.4), (0.4, 2.5)
    table = _ijepa.size_table(grid, scale, aspect)
    u = near_breaks(table.breaks).astype(np.float64)
    u = np.concatenate([u, np.random.default_rng(0).random(5000).astype(np.float32)])
    expected = np.stack(np_ijepa_size(u, grid, scale, aspect), -1)
    np.testing.assert_array_equal(lookup(table, u), expected)
    grid3 = (6, 10, 10)
    config = jgather.VJepaConfig(1, (0.1, 0.5), (0.3, 1.0), (0.5, 2.0))._checked("t")
    tables = _vjepa.size_tables(grid3, config)
    for table, scales in [(tables.duration, config.temporal_scale), (tables.keep, None)]:
        u = near_breaks(table.breaks).astype(np.float64)
        if scales is None:
            lo, hi = config.spatial_scale
            expected = np.floor(100 * (lo + u * (hi - lo)))
        else:
            expected = np_vjepa_size(np.stack([u] * 3, -1), grid3, scales, (0, 0), (1, 1))[0]
        np.testing.assert_array_equal(lookup(table, u)[:, 0], expected)
    for (keep,), table in zip(tables.keep.values, tables.hw, strict=True):
        u = near_breaks(table.breaks).astype(np.float64)
        ar = 0.5 + u * 1.5
        h = np.minimum(np.round(np.sqrt(keep * ar)), 10)
        w = np.minimum(np.round(np.sqrt(keep / ar)), 10)
        np.testing.assert_array_equal(lookup(table, u), np.stack([h, w], -1))


def test_vjepa_configs_share_the_size_draw_with_one_size_key():
    # V-JEPA's collator seeds every config's size generator from the same iteration counter,
    # so its configs' sizes come from the same three uniforms. One size_key for both calls
    # gives that joint law; a size_key per call gives independent sizes, which it rejects.
    n = 1000
    short = jgather.VJepaConfig(1, (0.1, 0.3), (0.25, 1.0), (0.75, 1.5))
    long = jgather.VJepaConfig(1, (0.4, 0.6), (0.25, 1.0), (0.75, 1.5))

    @jax.jit
    def pairs(keys, size_keys, other_size_keys):
        def one(k, sk, sk2):
            k1, k2 = jax.random.split(k)
            a = jgather.multiblock_masking(k1, 1, VJEPA_GRID, preset=short, size_key=sk)
            b = jgather.multiblock_masking(k2, 1, VJEPA_GRID, preset=long, size_key=sk2)
            return jnp.concatenate([a.target_boxes[0, 0, 0, 3:], b.target_boxes[0, 0, 0, 3:]])

        return jax.vmap(one)(keys, size_keys, other_size_keys)

    keys = jax.random.split(jax.random.key(20), n)
    size_keys = jax.random.split(jax.random.key(21), n)
    u = np.random.default_rng(2).random((300_000, 3))
    ref = np.concatenate(
        [
            np.stack(np_vjepa_size(u, VJEPA_GRID, (0.25, 1.0), cfg.spatial_scale, (0.75, 1.5)), -1)
            for cfg in (short, long)
        ],
        -1,
    )
    law = probabilities(ref)
    shared = np.asarray(pairs(keys, size_keys, size_keys))
    assert_same_distribution([tuple(r) for r in shared.tolist()], law, "joint sizes")
    apart = np.asarray(pairs(keys, size_keys, jax.random.split(jax.random.key(22), n)))
    with pytest.raises(AssertionError, match="joint sizes"):
        assert_same_distribution([tuple(r) for r in apart.tolist()], law, "joint sizes")


def np_ijepa_context(rng, grid, targets, c_size, min_keep, timeout=20):
    """I-JEPA's ``_sample_block_mask`` for a context, given the image's target masks (an empty
    list with ``allow_overlap``, where the collator passes no acceptable regions)."""
    h_grid, w_grid = grid
    ch, cw = c_size
    tries, left_tries = 0, timeout
    while True:
        top, left = rng.integers(0, h_grid - ch), rng.integers(0, w_grid - cw)
        mask = np.zeros(grid, bool)
        mask[top : top + ch, left : left + cw] = True
        for k in range(max(len(targets) - tries, 0)):
            mask &= ~targets[k]
        if mask.sum() > min_keep:
            return mask
        left_tries -= 1
        if left_tries == 0:
            tries, left_tries = tries + 1, timeout


def two_sample_p(got, ref):
    """Chi-square p-value of two samples of categories (categories seen < 10 times dropped)."""
    cats = sorted(set(got) | set(ref))
    table = np.array([[got.count(c) for c in cats], [ref.count(c) for c in cats]])
    table = table[:, table.sum(0) >= 10]
    return stats.chi2_contingency(table)[1], table


@pytest.mark.parametrize("allow_overlap", [False, True])
def test_ijepa_contexts_match_the_reference_loop(allow_overlap):
    # A small grid where the restriction often fails and is relaxed, two contexts per image
    # (nenc=2): the law of each context's token count, of its overlap with the targets and of
    # the two contexts' overlap, given the same targets and sizes, against the reference's loop.
    grid, n, c = (6, 6), 800, 2
    config = jgather.IJepaConfig(
        3, 0.3, 1.0, 0.6, min_keep=8, num_contexts=c, allow_overlap=allow_overlap
    )
    out = sample(jax.random.key(8), n, config, grid, size_key=SIZE_KEY)
    assert out.context_mask.shape == (n, c, 36) and out.context_box.shape == (n, c, 4)
    assert out.context_ids.shape[:2] == (n, c)
    assert_index_sets(out.context_ids, out.context_valid, out.context_mask)
    blocks = slice_masks(out.context_box, grid)  # [n, C, L]
    union = out.target_masks.any(1)  # [n, L]
    if allow_overlap:
        np.testing.assert_array_equal(out.context_mask, blocks)
    else:
        np.testing.assert_array_equal(out.context_mask, blocks & out.context_mask)
    c_size = tuple(out.context_box[0, 0, 2:])
    rng = np.random.default_rng(0)

    def facts(contexts, union):
        return [
            (int(contexts[0].sum()), int((contexts[0] & union).sum())),
            int((contexts[0] & contexts[1]).sum()),
        ]

    got, ref = [], []
    for i in range(n):
        targets = [] if allow_overlap else out.target_masks[i].reshape(-1, *grid)
        drawn = [np_ijepa_context(rng, grid, targets, c_size, 8).ravel() for _ in range(c)]
        ref.append(facts(drawn, union[i]))
        got.append(facts(out.context_mask[i], union[i]))
    for j in range(2):
        p, table = two_sample_p([g[j] for g in got], [r[j] for r in ref])
        assert p > 1e-4, (j, p, table)
    assert (out.context_mask.sum(-1) > 8).all()
    if allow_overlap:  # unrestricted blocks do meet the targets
        assert (out.context_mask & union[:, None]).any()


def np_vjepa_clip(rng, grid, size, num_blocks):
    duration, h_grid, w_grid = grid
    t, h, w = size
    while True:
        context = np.ones(grid, bool)
        for _ in range(num_blocks):
            top, left = rng.integers(0, h_grid - h + 1), rng.integers(0, w_grid - w + 1)
            start = rng.integers(0, duration - t + 1)
            context[start : start + t, top : top + h, left : left + w] = False
        if context.any():
            return context


def test_vjepa_resampling_matches_the_reference_loop():
    # Two big blocks that often cover everything: the context's law given a non-empty one.
    grid, n = (1, 5, 5), 1200
    config = jgather.VJepaConfig(num_blocks=2, spatial_scale=0.64, aspect_ratio=1.0)
    out = sample(jax.random.key(9), n, config, grid, size_key=SIZE_KEY)
    size = tuple(out.target_boxes[0, 0, 0, 3:])
    assert size == (1, 4, 4)
    rng = np.random.default_rng(0)
    ref = [int(np_vjepa_clip(rng, grid, size, 2).sum()) for _ in range(n)]
    got = out.context_mask.sum(-1).tolist()
    assert min(got) > 0
    p, table = two_sample_p(got, ref)
    assert p > 1e-4, (p, table)


# ----------------------------------------------------------------------------------------------
# apply_masks and its inverse.


def reference_apply_masks(x, masks):
    """The references' ``apply_masks``: a gather per index set, concatenated along the batch."""
    return np.concatenate([np.take_along_axis(x, m[..., None], axis=1) for m in masks])


def test_apply_masks_equals_the_reference_and_unapply_inverts_it():
    out = drawn("ijepa")
    x = np.random.default_rng(0).standard_normal((N, 256, 3)).astype(np.float32)
    ids = out.target_ids.transpose(1, 0, 2)
    got = np.asarray(jgather.apply_masks(x, ids))
    np.testing.assert_array_equal(got, reference_apply_masks(x, ids))
    valid = out.target_valid.transpose(1, 0, 2)
    back = np.asarray(jgather.unapply_masks(got, ids, 256, valid=valid))  # [M * N, L, D]
    masks = out.target_masks.transpose(1, 0, 2).reshape(-1, 256)
    expected = np.where(masks[..., None], np.tile(x, (4, 1, 1)), 0)
    np.testing.assert_array_equal(back, expected)


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize("kind", ["explicit", "auto"])
def test_apply_masks_on_a_batch_sharded_mesh(kind):
    # The mask-major rows mix the batch shards, so rows move; the values are the same.
    x = np.random.default_rng(0).standard_normal((N, 16, 4)).astype(np.float32)
    ids = np.random.default_rng(1).integers(0, 16, (3, N, 5)).astype(np.int32)
    expected = reference_apply_masks(x, ids)
    if kind == "explicit":
        mesh = jax.make_mesh((8,), ("batch",), devices=jax.devices()[:8])
    else:
        mesh = Mesh(np.array(jax.devices()[:8]), ("batch",))
    xs = jax.device_put(x, NamedSharding(mesh, P("batch")))
    ids_s = jax.device_put(ids, NamedSharding(mesh, P(None, "batch")))

    def run(x, i):
        rows = jgather.apply_masks(x, i)
        return rows, jgather.unapply_masks(rows, i, 16)

    out, back = jax.jit(run)(xs, ids_s)
    np.testing.assert_array_equal(np.asarray(out), expected)
    np.testing.assert_array_equal(
        np.asarray(back), np.asarray(jgather.unapply_masks(expected, ids, 16))
    )


def test_apply_masks_errors():
    x = np.zeros((2, 5, 3), np.float32)
    for call, error, match in [
        (lambda: jgather.apply_masks(x, np.zeros((3, 3), np.int32)), ValueError, r"\[M, N, K\]"),
        (lambda: jgather.apply_masks(x, np.zeros((1, 2, 3))), TypeError, "integer"),
        (lambda: jgather.apply_masks(x, np.full((1, 2, 3), 5)), IndexError, "out of bounds"),
        (lambda: jgather.unapply_masks(x, np.zeros((1, 2, 2), np.int32), 5), ValueError, "M \\* N"),
        (lambda: jgather.unapply_masks(x, np.full((1, 2, 5), 7), 5), IndexError, "out of bounds"),
    ]:
        with pytest.raises(error, match=match) as info:
            call()
        assert "apply_masks" in str(info.value)
