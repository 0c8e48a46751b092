"""Tests for the MAE masking family (jgather/masking/: _video, _block, _simmim, ...).

Each strategy is checked for its defining property against a plain NumPy re-statement of the
reference algorithm (VideoMAE, VideoMAE V2, BEiT, SimMIM, timm, MaskGIT), exactly where the
property is exact; statistical checks use fixed keys and tolerances from binomial standard
deviations. Shared behaviour (determinism, jit == eager, vmap over keys, per-sample key
independence, retracing, errors) is checked for every strategy through one table.
"""

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather
from jgather import (
    block_masking,
    mask_schedule,
    patch_dropout,
    running_cell_masking,
    simmim_masking,
    tube_masking,
    variable_ratio_masking,
)
from jgather.masking import _block as ms
from jgather.masking import _video


def _keys(n, seed=0):
    return jax.random.split(jax.random.key(seed), n)


# --------------------------------------------------------------------------------------------
# tube_masking
# --------------------------------------------------------------------------------------------


_TUBE_CASES = [((8, 14, 14), 0.9, 2), ((4, 10, 10), 0.29, 4000), ((1, 4, 4), 0.0, 2)]


@pytest.mark.parametrize(("grid", "ratio", "n"), _TUBE_CASES)
def test_tube_exact_per_frame_count_and_constant_over_time(grid, ratio, n):
    t, h, w = grid
    mask = np.asarray(tube_masking(jax.random.key(1), n, grid, ratio))
    assert mask.shape == (n, t * h * w) and mask.dtype == np.bool_
    frames = mask.reshape(n, t, h * w)
    # VideoMAE: int(mask_ratio * num_patches_per_frame), float product truncated:
    # 0.9 * 196 -> 176, and 0.29 * 100 == 28.999999999999996 -> 28, not 29.
    want = {0.9: 176, 0.29: 28, 0.0: 0}[ratio]
    assert want == int(ratio * (h * w))
    assert (frames.sum(-1) == want).all()
    assert (frames == frames[:, :1]).all()


def test_tube_positions_are_uniform():
    grid, ratio, n = _TUBE_CASES[1]
    hw = grid[1] * grid[2]
    mask = np.asarray(tube_masking(jax.random.key(3), n, grid, ratio))
    freq = mask[:, :hw].mean(0)
    p = 28 / hw
    assert np.abs(freq - p).max() < 5 * math.sqrt(p * (1 - p) / n)


def test_fixed_count_masks_feed_apply_mask():
    # A tube mask keeps the same number of tokens in every sample, so it becomes MAE's triple.
    n, length = 8, 3 * 4 * 4
    mask = np.asarray(_STRATEGIES["tube"](jax.random.key(0), n))
    num_keep = length - 3 * int(0.75 * 16)
    x = jax.random.normal(jax.random.key(1), (n, length, 2))
    out = jgather.apply_mask(x, jnp.asarray(mask), num_keep)
    np.testing.assert_array_equal(out.mask, mask.astype(np.float32))
    # Kept tokens, in original order, come first.
    np.testing.assert_array_equal(out.x_masked, np.asarray(x)[~mask].reshape(n, num_keep, 2))


# --------------------------------------------------------------------------------------------
# running_cell_masking
# --------------------------------------------------------------------------------------------


def _running_cell_reference(grid, ratio, start, cell=(2, 2)):
    """VideoMAE V2's running cell, re-stated: a queue read from a pointer advancing per frame."""
    t, h, w = grid
    ch, cw = cell
    size = ch * cw
    m = int(size * ratio)
    queue = np.array([1] * m + [0] * (size - m), dtype=bool)
    ptr = start
    frames = []
    for _ in range(t):
        ptr += 1  # the reference advances the pointer before reading each frame
        unit = queue[(np.arange(size) + ptr) % size].reshape(ch, cw)
        frames.append(np.tile(unit, (h // ch, w // cw)).reshape(-1))
    return np.stack(frames).reshape(-1)


@pytest.mark.parametrize(
    ("grid", "ratio", "cell"),
    [((8, 14, 14), 0.5, (2, 2)), ((6, 4, 6), 0.75, (2, 2)), ((5, 4, 6), 0.5, (2, 3))],
)
def test_running_cell_matches_reference_patterns(grid, ratio, cell):
    t, h, w = grid
    size = cell[0] * cell[1]
    m = int(size * ratio)
    n = 400
    mask = np.asarray(running_cell_masking(jax.random.key(2), n, grid, ratio, cell=cell))
    refs = np.stack([_running_cell_reference(grid, ratio, s, cell) for s in range(size)])
    # Every sample is one of the reference's `size` patterns (one per start pointer) ...
    match = (mask[:, None, :] == refs[None]).all(-1)
    assert (match.sum(1) == 1).all()
    # ... and the start pointer is uniform over the cell.
    counts = match.sum(0)
    p = 1 / size
    assert np.abs(counts / n - p).max() < 5 * math.sqrt(p * (1 - p) / n)
    # Per-frame ratio is exact: m of every cell, so m * (#cells) per frame.
    assert (mask.reshape(n, t, h * w).sum(-1) == m * (h // cell[0]) * (w // cell[1])).all()


def test_running_cell_pattern_runs_one_step_per_frame():
    grid, cell = (9, 4, 6), (2, 3)
    size = 6
    mask = np.asarray(running_cell_masking(jax.random.key(5), 16, grid, 0.5, cell=cell))
    m = mask.reshape(16, 9, 2, 2, 2, 3)  # [N, T, H/ch, ch, W/cw, cw]
    # All cells of a frame are identical.
    assert (m == m[:, :, :1, :, :1, :]).all()
    within = m[:, :, 0, :, 0, :].reshape(16, 9, size)  # [N, T, position j in the cell]
    # mask[t + 1, j] == mask[t, (j + 1) % size]: the visible positions move every frame.
    assert (within[:, 1:] == np.roll(within[:, :-1], -1, axis=-1)).all()
    # Over `size` consecutive frames each token is masked exactly m = 3 times.
    assert (within[:, :size].sum(1) == 3).all()


# --------------------------------------------------------------------------------------------
# block_masking
# --------------------------------------------------------------------------------------------


def _beit_reference(rng, h, w, target, min_num=16, max_num=None, min_aspect=0.3):
    """BEiT's block-wise generator, re-stated in NumPy (for the distribution of counts)."""
    max_num = target if max_num is None else max_num
    lo, hi = math.log(min_aspect), math.log(1 / min_aspect)
    mask = np.zeros((h, w), bool)
    count = 0
    while count < target:
        cap = min(target - count, max_num)
        delta = 0
        for _ in range(10):
            area = min_num + (cap - min_num) * rng.random()  # random.uniform allows a > b
            aspect = math.exp(rng.uniform(lo, hi))
            bh, bw = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if bw < w and bh < h:
                top, left = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
                new = bh * bw - mask[top : top + bh, left : left + bw].sum()
                if 0 < new <= cap:
                    mask[top : top + bh, left : left + bw] = True
                    delta = new
                    break
        if delta == 0:
            break
        count += delta
    return mask


# (grid, target, min_num_patches, max_num_patches, batch): BEiT's setting; a bounded block size;
# a 4 x 4 grid where no block may span a full row or column, so 15 is often out of reach.
_BLOCK_CASES = {
    "beit": ((14, 14), 75, 16, None, 256),
    "max_num": ((8, 12), 40, 4, 10, 32),
    "small": ((4, 4), 15, 4, None, 64),
}


def _block_draws(keys, target):
    """[N, attempts, 4] the uniforms block_masking draws: attempt ``it`` of sample ``i`` uses
    ``jax.random.uniform(jax.random.fold_in(keys[i], it), (4,))`` (area, aspect, top, left)."""
    its = jnp.arange(10 * (target + 1))
    draw = lambda k, it: jax.random.uniform(jax.random.fold_in(k, it), (4,))
    return np.asarray(jax.vmap(jax.vmap(draw, (None, 0)), (0, None))(keys, its))


def _beit_replay(u, h, w, target, min_num, max_num, min_aspect=0.3):
    """BEiT's generator re-stated in NumPy float32 on given draws ``u`` [attempts, 4], checking
    the facts of every accepted block; returns the [H, W] mask."""
    lo, hi = math.log(min_aspect), math.log(1 / min_aspect)
    mask = np.zeros((h, w), bool)
    count = fails = 0
    for u_area, u_aspect, u_top, u_left in u:
        if count >= target or fails >= 10:
            break
        cap = np.float32(min(target - count, max_num))  # BEiT's min(target - count, max_num)
        area = min_num + (cap - min_num) * u_area  # random.uniform allows a > b
        aspect = np.exp(lo + (hi - lo) * u_aspect)
        bh, bw = int(np.round(np.sqrt(area * aspect))), int(np.round(np.sqrt(area / aspect)))
        if bw < w and bh < h:
            top = min(int(np.floor(u_top * np.float32(h - bh + 1))), h - bh)
            left = min(int(np.floor(u_left * np.float32(w - bw + 1))), w - bw)
            new = (~mask[top : top + bh, left : left + bw]).sum()
            if 0 < new <= cap:
                # An accepted block: area between min_num_patches and the cap, aspect
                # log-uniform in [lo, hi], a non-empty rectangle inside the grid.
                assert min(min_num, cap) - 1e-4 <= area <= max(min_num, cap) + 1e-4
                assert 0.3 * (1 - 1e-5) <= aspect <= (1 / 0.3) * (1 + 1e-5)
                assert 1 <= bh < h and 1 <= bw < w
                mask[top : top + bh, left : left + bw] = True
                count += new
                fails = 0
                continue
        fails += 1
    return mask


def _block_case(case):
    grid, target, min_num, max_num, n = _BLOCK_CASES[case]
    args = ms._block_args("test", n, grid, target, min_num, max_num, 0.3, None)
    keys = _keys(n, seed=7)
    blocks = np.asarray(ms._block_masking_blocks(keys, *args))
    mask = block_masking(keys, n, grid, target, min_num_patches=min_num, max_num_patches=max_num)
    # The public function is the same computation (and the same compiled program).
    np.testing.assert_array_equal(np.asarray(mask), blocks)
    return blocks


@pytest.mark.parametrize("case", sorted(_BLOCK_CASES))
def test_block_masks_are_unions_of_bounded_rectangles(case):
    (h, w), target, min_num, max_num, n = _BLOCK_CASES[case]
    mask = _block_case(case)
    draws = _block_draws(_keys(n, seed=7), target)
    for i in range(n):
        # The same draws through the re-stated generator give the same mask.
        want = _beit_replay(draws[i], h, w, target, min_num, target if max_num is None else max_num)
        np.testing.assert_array_equal(mask[i].reshape(h, w), want)
        assert want.sum() <= target


def test_block_count_close_to_target_like_beit():
    counts = _block_case("beit").sum(-1)
    n = len(counts)
    assert (counts <= 75).all()
    rng = np.random.default_rng(0)
    ref = np.array([_beit_reference(rng, 14, 14, 75).sum() for _ in range(n)])
    assert (ref <= 75).all()
    # Same algorithm, so the same count distribution: compare means within 5 standard errors.
    se = math.sqrt(counts.var(ddof=1) / n + ref.var(ddof=1) / n)
    assert abs(counts.mean() - ref.mean()) < 5 * se + 1e-9
    assert counts.mean() > 72  # typically close: BEiT stops short by a few tokens at most


def test_block_may_stop_short_but_never_overshoots():
    counts = _block_case("small").sum(-1)
    assert (counts <= 15).all() and (counts < 15).any() and (counts == 15).any()
    rng = np.random.default_rng(1)
    ref = np.array([_beit_reference(rng, 4, 4, 15, min_num=4).sum() for _ in range(256)])
    # The reference stops short at about the same rate (5 binomial standard errors).
    p, q = (counts < 15).mean(), (ref < 15).mean()
    pooled = (p * len(counts) + q * len(ref)) / (len(counts) + len(ref))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(counts) + 1 / len(ref)))
    assert abs(p - q) < 5 * se


# --------------------------------------------------------------------------------------------
# simmim_masking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "mask_patch", "model_patch", "ratio"),
    [(192, 32, 4, 0.6), ((96, 64), 32, 16, 0.5), (224, 32, 16, 0.6), (64, 16, 16, 1.0)],
)
def test_simmim_coarse_structure_and_exact_count(size, mask_patch, model_patch, ratio):
    hp, wp = (size, size) if isinstance(size, int) else size
    gh, gw = hp // mask_patch, wp // mask_patch
    s = mask_patch // model_patch
    mask = np.asarray(simmim_masking(jax.random.key(4), 8, size, mask_patch_size=mask_patch,
                                     model_patch_size=model_patch, mask_ratio=ratio))  # fmt: skip
    assert mask.shape == (8, gh * s * gw * s)
    blocks = mask.reshape(8, gh, s, gw, s)
    # Constant within every coarse cell.
    assert (blocks == blocks[:, :, :1, :, :1]).all()
    coarse = blocks[:, :, 0, :, 0]
    # SimMIM: mask_count = int(np.ceil(token_count * mask_ratio)) on the coarse grid; e.g. 36
    # cells at 0.6: 21.599999999999998 -> 22; 49 at 0.6: 29.4 -> 30.
    want = int(np.ceil(gh * gw * ratio))
    assert want == {(6, 6): 22, (3, 2): 3, (7, 7): 30, (4, 4): 16}[gh, gw]
    assert (coarse.reshape(8, -1).sum(-1) == want).all()


# --------------------------------------------------------------------------------------------
# patch_dropout
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "prefix", "prob", "ordered"),
    [(197, 1, 0.5, True), (20, 0, 0.3, False), (21, 5, 0.99, True)],
)
def test_patch_dropout_keeps_prefix_and_exact_count(length, prefix, prob, ordered):
    n, d = 2, 4
    x = jax.random.normal(jax.random.key(9), (n, length, d))
    out = patch_dropout(jax.random.key(1), x, prob, num_prefix=prefix, ordered=ordered)
    # timm: num_keep = max(1, int(L_body * (1. - prob))).
    num_keep = max(1, int((length - prefix) * (1.0 - prob)))
    idx = np.asarray(out.indices)
    assert idx.dtype == np.int32 and idx.shape == (n, prefix + num_keep)
    assert out.tokens.shape == (n, prefix + num_keep, d)
    assert (idx[:, :prefix] == np.arange(prefix)).all()
    body = idx[:, prefix:]
    assert ((body >= prefix) & (body < length)).all()
    assert all(len(set(row)) == num_keep for row in body.tolist())
    if ordered:
        assert (np.diff(body, axis=1) > 0).all()
    np.testing.assert_array_equal(
        np.asarray(out.tokens), np.take_along_axis(np.asarray(x), idx[:, :, None], axis=1)
    )


def test_patch_dropout_count_is_timms_formula():
    # num_keep = max(1, int(L_body * (1. - prob))); shapes only, so trace without compiling.
    cases = {(196, 0.5): 98, (196, 0.75): 49, (196, 0.1): 176, (10, 0.99): 1, (10, 0.7): 3}
    for (body, prob), want in cases.items():
        assert want == max(1, int(body * (1.0 - prob)))
        x = jax.ShapeDtypeStruct((2, body + 1, 4), jnp.float32)
        out = jax.eval_shape(lambda x, p=prob: patch_dropout(jax.random.key(0), x, p), x)
        assert out.tokens.shape == (2, 1 + want, 4) and out.indices.shape == (2, 1 + want)


def test_patch_dropout_ordered_is_the_sorted_unordered_selection():
    x = jnp.zeros((8, 13, 2))
    a = patch_dropout(jax.random.key(3), x, 0.5)
    b = patch_dropout(jax.random.key(3), x, 0.5, ordered=True)
    np.testing.assert_array_equal(np.sort(np.asarray(a.indices), axis=1), b.indices)


def test_patch_dropout_prob_zero_is_identity_and_trailing_dims_carry():
    x = jax.random.normal(jax.random.key(0), (2, 7, 2, 3))
    out = patch_dropout(jax.random.key(1), x, 0.0)
    np.testing.assert_array_equal(out.tokens, x)
    np.testing.assert_array_equal(out.indices, np.tile(np.arange(7), (2, 1)))
    out = patch_dropout(jax.random.key(1), x, 0.5)
    assert out.tokens.shape == (2, 1 + 3, 2, 3)
    np.testing.assert_array_equal(out.tokens, np.asarray(x)[np.arange(2)[:, None], out.indices])


def test_patch_dropout_positions_uniform_and_gradients_flow():
    n, length, prob = 2000, 17, 0.75
    x = jnp.ones((n, length, 1))
    idx = np.asarray(patch_dropout(jax.random.key(11), x, prob).indices)
    kept = np.zeros((n, length))
    np.put_along_axis(kept, idx, 1.0, axis=1)
    p = max(1, int(16 * 0.25)) / 16
    assert (kept[:, 0] == 1).all()
    assert np.abs(kept[:, 1:].mean(0) - p).max() < 5 * math.sqrt(p * (1 - p) / n)
    # d/dx of a weighted sum of kept tokens is the weight scattered back to their positions.
    xs = jax.random.normal(jax.random.key(2), (8, 13, 2))
    wts = jax.random.normal(jax.random.key(3), (8, 7, 2))
    loss = lambda x: jnp.sum(patch_dropout(jax.random.key(4), x, 0.5).tokens * wts)
    grad = np.asarray(jax.grad(loss)(xs))
    ids = np.asarray(patch_dropout(jax.random.key(4), xs, 0.5).indices)
    want = np.zeros(xs.shape, np.float32)
    for i in range(8):
        want[i, ids[i]] = wts[i]
    np.testing.assert_allclose(grad, want, rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# mask_schedule and variable_ratio_masking
# --------------------------------------------------------------------------------------------

_L = 256
_REF_SCHEDULES = {
    "cosine": lambda r: np.cos(np.pi / 2 * r),
    "linear": lambda r: 1 - r,
    "uniform": lambda r: 1 - r,
    "square": lambda r: 1 - r**2,
    "cubic": lambda r: 1 - r**3,
    "sqrt": lambda r: 1 - np.sqrt(r),
    "pow2.5": lambda r: 1 - r**2.5,
    "log": lambda r: -np.log2(r) / np.log2(_L),
    "exp": lambda r: 1 - np.exp2(-np.log2(_L) * (1 - r)),
}


@pytest.mark.parametrize("name", sorted(_REF_SCHEDULES))
def test_schedules_match_maskgit_endpoints_and_monotone(name):
    r = np.linspace(0.0, 1.0, 1001)
    got = np.asarray(mask_schedule(name, jnp.asarray(r, jnp.float32), num_tokens=_L))
    with np.errstate(divide="ignore"):
        want = np.clip(_REF_SCHEDULES[name](r), 1e-6, 1.0)  # MaskGIT clamps into [1e-6, 1]
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
    assert (np.diff(got) <= 1e-7).all()  # non-increasing in r
    assert got.min() >= 1e-6 and got.max() <= 1.0
    first = 1.0 - 1.0 / _L if name == "exp" else 1.0
    assert got[0] == pytest.approx(first, abs=1e-6)
    assert got[-1] == pytest.approx(1e-6, rel=1e-3)


def test_cosine_schedule_values():
    got = mask_schedule("cosine", jnp.array([0.0, 1 / 3, 0.5]))
    np.testing.assert_allclose(got, [1.0, math.cos(math.pi / 6), math.sqrt(0.5)], rtol=1e-6)


@pytest.mark.parametrize("name", ["cosine", "exp"])
def test_variable_ratio_counts_follow_the_schedule(name):
    n, length = 512, 64
    out = variable_ratio_masking(jax.random.key(8), n, length, schedule=name)
    mask, count, r = map(np.asarray, out)
    assert mask.shape == (n, length) and count.dtype == np.int32 and r.dtype == np.float32
    assert ((r >= 0) & (r < 1)).all()
    ratio = np.asarray(mask_schedule(name, jnp.asarray(r), num_tokens=length))
    want = np.clip(np.ceil(ratio * np.float32(length)), 1, length)
    np.testing.assert_array_equal(count, want)
    np.testing.assert_array_equal(mask.sum(-1), count)
    # r ~ U[0, 1): its mean within 5 standard errors of 1/2 (std of U[0,1) is sqrt(1/12)).
    assert abs(r.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)


def test_variable_ratio_given_r_and_uniform_positions():
    n, length = 3000, 10
    r = jnp.full((n,), 0.5)
    out = variable_ratio_masking(jax.random.key(2), n, length, schedule="linear", r=r)
    assert (np.asarray(out.num_masked) == 5).all()  # ceil(0.5 * 10)
    freq = np.asarray(out.mask).mean(0)
    assert np.abs(freq - 0.5).max() < 5 * math.sqrt(0.25 / n)


# --------------------------------------------------------------------------------------------
# Shared behaviour, for every strategy.
# --------------------------------------------------------------------------------------------

# name -> fn(key, batch_size). Batch sizes are kept to 8 (and 3 / 1 where the test is about
# batch size) so that the compiled programs are shared between tests.
_TOKENS = jnp.arange(13 * 2, dtype=jnp.float32).reshape(1, 13, 2)
_STRATEGIES = {
    "tube": lambda k, n: tube_masking(k, n, (3, 4, 4), 0.75),
    "running_cell": lambda k, n: running_cell_masking(k, n, (5, 4, 4), 0.5),
    "block": lambda k, n: block_masking(k, n),  # BEiT's 14 x 14 grid, 75 tokens
    "simmim": lambda k, n: simmim_masking(k, n),  # SimMIM's 192 px, 32 px cells, 4 px patches
    "patch_dropout": lambda k, n: patch_dropout(k, jnp.broadcast_to(_TOKENS, (n, 13, 2)), 0.5),
    "variable_ratio": lambda k, n: variable_ratio_masking(k, n, 24),
}
_NAMES = sorted(_STRATEGIES)


def _assert_tree_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _leaf(tree):
    return np.asarray(tree[0] if isinstance(tree, tuple) else tree)


@pytest.mark.parametrize("name", _NAMES)
def test_same_key_same_mask_and_different_keys_differ(name):
    fn = _STRATEGIES[name]
    a, b = fn(jax.random.key(0), 8), fn(jax.random.key(0), 8)
    _assert_tree_equal(a, b)
    assert not np.array_equal(_leaf(a), _leaf(fn(jax.random.key(1), 8)))
    # The 8 samples of one call are not all the same.
    assert len({_leaf(a)[i].tobytes() for i in range(8)}) > 1
    # A single key is split into per-sample keys.
    _assert_tree_equal(a, fn(jax.random.split(jax.random.key(0), 8), 8))


@pytest.mark.parametrize("name", [n for n in _NAMES if n != "block"])
def test_jit_equals_eager(name):
    fn = _STRATEGIES[name]
    keys = _keys(8, seed=3)
    plain = fn(keys, 8)
    with jax.disable_jit():
        eager = fn(keys[:3], 3)
    _assert_tree_equal(jax.tree.map(lambda v: v[:3], plain), eager)


def test_block_jit_equals_eager():
    # Eagerly, the while loop runs attempt by attempt in Python; keep it small.
    keys = _keys(2, seed=3)
    args = ms._block_args("test", 2, (5, 5), 6, 2, None, 0.3, None)
    jitted = ms._block_masking_blocks(keys, *args)
    with jax.disable_jit():
        for i in range(2):
            eager = ms._block_masking_blocks(keys[i : i + 1], 1, *args[1:])
            np.testing.assert_array_equal(jitted[i], eager[0])
        # A zero target is an empty mask (the loop does not run).
        empty = ms._block_masking_blocks(keys[:1], 1, (5, 5), 0, 2, 1, args.log_aspect)
        assert not empty.any()
    _assert_tree_equal(block_masking(keys, 2, (5, 5), 6, min_num_patches=2), jitted)


@pytest.mark.parametrize("name", _NAMES)
def test_per_sample_keys_are_independent_and_under_jit_of_vmap(name):
    fn = _STRATEGIES[name]
    keys = _keys(8, seed=3)
    full = fn(keys, 8)
    # Sample i depends on keys[i] alone: a smaller batch gives the same first samples.
    _assert_tree_equal(jax.tree.map(lambda v: v[:3], full), fn(keys[:3], 3))
    # Under an outer jit, vmap over keys of a batch-1 call gives the batched result.
    per_key = jax.jit(jax.vmap(lambda k: jax.tree.map(lambda v: v[0], fn(k[None], 1))))(keys)
    _assert_tree_equal(full, per_key)


@pytest.mark.parametrize("name", ["tube", "patch_dropout"])
def test_legacy_keys_work(name):
    # Key handling is shared by all strategies; one mask-only and one token-taking one suffice.
    fn = _STRATEGIES[name]
    legacy = jax.random.PRNGKey(4)
    _assert_tree_equal(fn(legacy, 8), fn(jax.random.wrap_key_data(legacy), 8))


def test_no_retracing_for_new_keys():
    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(k):
        return _STRATEGIES["tube"](k, 8), _STRATEGIES["variable_ratio"](k, 8)

    for seed in range(3):
        step(jax.random.key(seed))
    _STRATEGIES["tube"](jax.random.key(9), 8)
    size = _video._tube_masking._cache_size()
    _STRATEGIES["tube"](jax.random.key(10), 8)
    _STRATEGIES["tube"](_keys(8, seed=11), 8)
    assert _video._tube_masking._cache_size() <= size + 1


# --------------------------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------------------------

_K = jax.random.key(0)


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: tube_masking(_K, 2, (2, 4, 4), 1.5), ValueError, r"tube_masking.*\[0, 1\]"),
        (lambda: tube_masking(_K, 2, (4, 4), 0.5), ValueError, r"\(T, H, W\)"),
        (lambda: tube_masking(_K, 2, (2, 0, 4), 0.5), ValueError, r"`grid\[1\]` must be >= 1"),
        (lambda: tube_masking(_K, 2.0, (2, 4, 4), 0.5), TypeError, "batch_size"),
        (lambda: tube_masking(None, 2, (2, 4, 4), 0.5), TypeError, "PRNG key"),
        (lambda: tube_masking(0, 2, (2, 4, 4), 0.5), TypeError, "PRNG key"),
        (lambda: tube_masking(jnp.zeros(2), 2, (2, 4, 4), 0.5), TypeError, "uint32"),
        (lambda: tube_masking(_keys(3), 2, (2, 4, 4), 0.5), ValueError, "batch of 3 keys"),
        (lambda: tube_masking(_K, 2, (2, 4, 4), "0.5"), TypeError, "real number"),
        (lambda: running_cell_masking(_K, 2, (2, 3, 4)), ValueError, "divisible by the cell"),
        (lambda: running_cell_masking(_K, 2, (2, 4, 4), 0.2), ValueError, "int\\(4 \\* 0.2\\)"),
        (lambda: running_cell_masking(_K, 2, (2, 4, 4), 1.0), ValueError, "between 1 and 3"),
        (lambda: block_masking(_K, 2, (4, 4), 17), ValueError, "at most H \\* W = 16"),
        (lambda: block_masking(_K, 2, (4, 4), 8, min_aspect=0.0), ValueError, "aspect"),
        (
            lambda: block_masking(_K, 2, (4, 4), 8, min_aspect=2.0, max_aspect=1.0),
            ValueError,
            "min_aspect <= max_aspect",
        ),
        (lambda: block_masking(_K, 2, (4, 4), 8, min_num_patches=0), ValueError, "min_num"),
        (lambda: simmim_masking(_K, 2, 100), ValueError, "divisible by mask_patch_size"),
        (lambda: simmim_masking(_K, 2, 96, model_patch_size=5), ValueError, "multiple"),
        (lambda: simmim_masking(_K, 2, 96, mask_ratio=1.5), ValueError, r"\[0, 1\]"),
        (lambda: patch_dropout(_K, jnp.zeros((2, 5, 3)), 1.0), ValueError, r"\[0, 1\)"),
        (
            lambda: patch_dropout(_K, jnp.zeros((2, 5)), 0.5, num_prefix=5),
            ValueError,
            "no token to drop",
        ),
        (lambda: patch_dropout(_K, jnp.zeros((5,)), 0.5), ValueError, r"\[N, L, \.\.\.\]"),
        (lambda: patch_dropout(_K, [[1.0]], 0.5), ValueError, "num_prefix=1"),
        (lambda: patch_dropout(_K, jnp.zeros((2, 5, 3)), 0.5, ordered=1), TypeError, "bool"),
        (lambda: mask_schedule("tanh", 0.5), ValueError, "unknown schedule 'tanh'"),
        (lambda: mask_schedule("log", 0.5), ValueError, "num_tokens"),
        (lambda: mask_schedule("powx", 0.5), ValueError, "positive exponent"),
        (lambda: mask_schedule(3, 0.5), TypeError, "must be a str"),
        (lambda: variable_ratio_masking(_K, 2, 8, schedule="nope"), ValueError, "unknown"),
        (lambda: variable_ratio_masking(_K, 2, 8, r=jnp.ones(3)), ValueError, r"shape \(batch"),
        (
            lambda: variable_ratio_masking(_K, 2, 8, r=jnp.array([0.5, 1.5])),
            ValueError,
            r"in \[0, 1\]",
        ),
    ],
)
def test_errors_are_clear(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_traced_ratio_is_a_clear_type_error():
    with pytest.raises(TypeError, match="tube_masking: `mask_ratio` fixes"):
        jax.jit(lambda r: tube_masking(_K, 2, (2, 4, 4), r))(0.5)
    with pytest.raises(TypeError, match="patch_dropout: `prob` fixes"):
        jax.jit(lambda p: patch_dropout(_K, jnp.zeros((2, 5, 3)), p))(0.5)
    with pytest.raises(TypeError, match="`batch_size` fixes the output shape"):
        jax.jit(lambda n: simmim_masking(_K, n, 64))(2)


def test_public_names():
    for name in jgather.masking.__all__:
        assert getattr(jgather, name) is getattr(jgather.masking, name) and name in jgather.__all__
    assert isinstance(patch_dropout(_K, jnp.zeros((1, 3, 1)), 0.0), jgather.PatchDropoutOutput)
