"""The masked-token side of MAE / VideoMAE: the removed tokens in order, a loss on predictions
for those tokens only, both references' target normalisations, and masking every token.

The references are re-stated in torch (VideoMAE's ``engine_for_pretraining`` target and loss,
MAE's ``forward_loss``) and in NumPy (``patches[mask]`` is ``np.flatnonzero`` per row).
"""

from __future__ import annotations

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

import jgather

N, L, D = 8, 16, 3
RNG = np.random.default_rng(0)
X = RNG.standard_normal((N, L, D)).astype(np.float32)
KEYS = jgather.example_keys(jax.random.key(42), jnp.arange(N))
MASKED = jgather.random_masking(KEYS, X, 0.75)  # 12 removed tokens per sample


def removed_reference(mask):
    """[N, K] ids of each row's removed tokens, ascending (``np.flatnonzero``)."""
    return np.stack([np.flatnonzero(row) for row in np.asarray(mask) != 0])


# ----------------------------------------------------------------------------------------------
# masked_ids / take_masked.


def test_masked_ids_and_take_masked_are_patches_of_mask():
    ids = np.asarray(jgather.masked_ids(MASKED))
    want = removed_reference(MASKED.mask)
    assert ids.dtype == np.int32 and ids.shape == (N, 12)
    np.testing.assert_array_equal(ids, want)
    rows = np.asarray(jgather.take_masked(X, MASKED))
    np.testing.assert_array_equal(rows, X[np.asarray(MASKED.mask) != 0].reshape(N, 12, D))
    # The hand-written form it replaces (argsort of ids_restore, then a sort).
    by_hand = np.sort(np.argsort(np.asarray(MASKED.ids_restore), axis=1)[:, 4:], axis=1)
    np.testing.assert_array_equal(ids, by_hand)
    # Both methods of the gather give the same rows.
    np.testing.assert_array_equal(jgather.take_masked(X, MASKED, method="onehot"), rows)


@pytest.mark.parametrize("num_keep", [0, L])
def test_every_token_or_no_token_removed(num_keep):
    mask = np.full((N, L), num_keep == 0)
    out = jgather.apply_mask(X, mask, num_keep)
    ids = np.asarray(jgather.masked_ids(out))
    assert ids.shape == (N, L - num_keep)
    np.testing.assert_array_equal(ids, np.tile(np.arange(L - num_keep), (N, 1)))
    np.testing.assert_array_equal(jgather.take_masked(X, out), X[:, : L - num_keep])


def test_masked_positions_are_uniform():
    # Each position is removed with probability 12 / 16 under random_masking; over 2000
    # samples every position's frequency lies within 5 standard errors of it.
    out = jgather.random_masking(jax.random.key(3), np.zeros((2000, L, 1), np.float32), 0.75)
    ids = np.asarray(jgather.masked_ids(out))
    assert (np.diff(ids, axis=1) > 0).all()  # ascending, no repeats
    freq = np.bincount(ids.ravel(), minlength=L) / 2000
    se = np.sqrt(0.75 * 0.25 / 2000)
    assert np.abs(freq - 0.75).max() < 5 * se


def test_masked_ids_follow_the_example():
    ids = np.array([5, 0, 2])
    keys = jgather.example_keys(jax.random.key(42), jnp.asarray(ids))
    part = jgather.random_masking(keys, X[ids], 0.75)
    np.testing.assert_array_equal(
        jgather.masked_ids(part), np.asarray(jgather.masked_ids(MASKED))[ids]
    )
    np.testing.assert_array_equal(
        jgather.take_masked(X[ids], part), np.asarray(jgather.take_masked(X, MASKED))[ids]
    )


def test_jit_vmap_and_checkify():
    both = lambda x, m: (jgather.masked_ids(m), jgather.take_masked(x, m))
    eager = both(X, MASKED)
    chex.assert_trees_all_equal(jax.jit(both)(X, MASKED), eager)
    stacked = jax.tree.map(lambda a: jnp.stack([a, a]), MASKED)
    out = jax.vmap(both)(jnp.stack([X, X]), stacked)
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[1], out), eager)
    loss = lambda p, t, m: jgather.mae_loss(pred=p, target=t, mask=m, norm_pix_loss=True)
    for fn, args in ((both, (X, MASKED)), (loss, (X[:, :12], X, MASKED.mask))):
        err, got = jax.jit(checkify.checkify(fn, errors=checkify.index_checks))(*args)
        assert err.get() is None, err.get()
        chex.assert_trees_all_close(got, fn(*args), rtol=1e-6)


# ----------------------------------------------------------------------------------------------
# mae_loss: predictions for the masked tokens only; the two normalisations.


@pytest.mark.parametrize("norm", [False, True, "mae", "videomae"])
def test_masked_only_predictions_equal_the_full_form(norm):
    channels = 3 if norm == "videomae" else None
    target = RNG.standard_normal((N, L, 12)).astype(np.float32)
    full = RNG.standard_normal((N, L, 12)).astype(np.float32)
    mask = np.asarray(MASKED.mask)
    only = full[mask != 0].reshape(N, 12, 12)  # the decoder's rows, in token order
    kw = dict(target=target, mask=mask, norm_pix_loss=norm, channels=channels)
    np.testing.assert_allclose(
        jgather.mae_loss(pred=only, **kw), jgather.mae_loss(pred=full, **kw), rtol=1e-6
    )
    traced = jax.jit(lambda p, m: jgather.mae_loss(pred=p, target=target, mask=m,
                                                   norm_pix_loss=norm, channels=channels))  # fmt: skip
    np.testing.assert_allclose(traced(only, mask), jgather.mae_loss(pred=full, **kw), rtol=1e-6)


def _videomae_torch(torch, videos, bool_masked_pos, outputs, tubelet, patch, normalize):
    """VideoMAE's pretraining target and loss (engine_for_pretraining.py), re-stated with
    view/permute for its einops rearranges. ``videos`` is NCTHW, already in [0, 1]."""
    b, c, tt, hh, ww = videos.shape
    t, h, w = tt // tubelet, hh // patch, ww // patch
    # 'b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c'
    squeeze = videos.reshape(b, c, t, tubelet, h, patch, w, patch)
    squeeze = squeeze.permute(0, 2, 4, 6, 3, 5, 7, 1).reshape(b, t * h * w, -1, c)
    if normalize:
        squeeze = (squeeze - squeeze.mean(dim=-2, keepdim=True)) / (
            squeeze.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
        )
    videos_patch = squeeze.reshape(b, t * h * w, -1)  # 'b n p c -> b n (p c)'
    labels = videos_patch[bool_masked_pos].reshape(b, -1, videos_patch.shape[-1])
    return torch.nn.MSELoss()(input=outputs, target=labels), labels


@pytest.mark.parametrize("normalize", [False, True], ids=["pixels", "normalized"])
def test_videomae_target_and_loss_match_torch(normalize):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    # Channels of different scales, where per-channel and per-patch normalisation differ.
    scale = np.array([1.0, 0.1, 3.0], np.float32)
    clip = rng.random((2, 4, 8, 8, 3), dtype=np.float32) * scale  # [N, T, H, W, C]
    patches = jgather.patchify(clip, 4, tubelet_size=2)  # [2, 8, 96]
    tubes = jgather.tube_masking(jax.random.key(0), 2, (2, 2, 2), 0.75)
    out = jgather.apply_mask(patches, tubes, num_keep=2)
    pred = rng.standard_normal((2, 6, 96)).astype(np.float32)
    t_loss, t_labels = _videomae_torch(
        torch,
        torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 4, 1, 2, 3))),
        torch.from_numpy(np.array(tubes)),
        torch.from_numpy(pred),
        2,
        4,
        normalize,
    )
    norm = "videomae" if normalize else False
    loss = jgather.mae_loss(
        pred=pred, target=patches, mask=out.mask, norm_pix_loss=norm,
        channels=3 if normalize else None,
    )  # fmt: skip
    np.testing.assert_allclose(loss, t_loss.item(), rtol=1e-5)
    if not normalize:
        np.testing.assert_array_equal(jgather.take_masked(patches, out), t_labels.numpy())
    # The per-patch (MAE) normalisation is another target on such a clip.
    mae = jgather.mae_loss(pred=pred, target=patches, mask=out.mask, norm_pix_loss=True)
    if normalize:
        assert abs(float(mae) - t_loss.item()) > 1e-2


@pytest.mark.parametrize("norm", [True, "mae"])
def test_mae_norm_pix_loss_matches_torch(norm):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    target = (rng.random((N, L, 12), dtype=np.float32) * np.linspace(0.1, 2, 12)).astype(np.float32)
    pred = rng.standard_normal((N, L, 12)).astype(np.float32)
    mask = np.array(MASKED.mask)  # a writable copy for torch.from_numpy
    # MAE's forward_loss on patchified targets (models_mae.py).
    t = torch.from_numpy(target)
    mean, var = t.mean(dim=-1, keepdim=True), t.var(dim=-1, keepdim=True)
    t = (t - mean) / (var + 1.0e-6) ** 0.5
    per_patch = ((torch.from_numpy(pred) - t) ** 2).mean(dim=-1)
    m = torch.from_numpy(mask)
    want = ((per_patch * m).sum() / m.sum()).item()
    got = jgather.mae_loss(pred=pred, target=target, mask=mask, norm_pix_loss=norm)
    np.testing.assert_allclose(got, want, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# tube_masking at mask_ratio=1.0.


def test_tube_masking_masks_every_token_at_ratio_one():
    mask = np.asarray(jgather.tube_masking(jax.random.key(0), 2, (2, 3, 4), 1.0))
    assert mask.shape == (2, 24) and mask.all()
    # VideoMAE's TubeMaskingGenerator: int(1.0 * 12) masked per frame, the whole frame.
    assert int(1.0 * 12) == 12
    out = jgather.apply_mask(np.ones((2, 24, 1), np.float32), mask, 0)
    assert out.x_masked.shape == (2, 0, 1)
    np.testing.assert_array_equal(jgather.masked_ids(out), np.tile(np.arange(24), (2, 1)))


# ----------------------------------------------------------------------------------------------
# Sharding.

LEAKS = re.compile(r"all-gather|all-to-all|collective-permute|reduce-scatter")


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 devices (tests/conftest.py)")
@pytest.mark.parametrize("kind", ["explicit", "auto"])
def test_batch_sharded_on_both_mesh_kinds_without_collectives(kind):
    devices = jax.devices()[:8]
    if kind == "explicit":
        mesh = jax.make_mesh((8,), ("batch",), axis_types=(AxisType.Explicit,), devices=devices)
    else:
        mesh = Mesh(np.array(devices), ("batch",))
    sharding = NamedSharding(mesh, P("batch"))

    def fn(x, m, pred):
        loss = jgather.mae_loss(pred=pred, target=x, mask=m.mask, norm_pix_loss=True)
        return jgather.masked_ids(m), jgather.take_masked(x, m), loss

    pred = X[:, :12] + 1
    expected = fn(X, MASKED, pred)
    args = jax.device_put((X, MASKED, pred), sharding)
    compiled = users_compile(jax.jit(fn).lower(*args))
    ids, rows, loss = compiled(*args)
    chex.assert_trees_all_equal((ids, rows), expected[:2])
    np.testing.assert_allclose(loss, expected[2], rtol=1e-6)
    for a in (ids, rows):
        assert a.sharding.is_equivalent_to(sharding, a.ndim), a.sharding
    # Only the loss's scalar mean is reduced across devices; nothing is gathered.
    hlo = compiled.as_text()
    assert not LEAKS.findall(hlo)
    assert all("[] all-reduce" in line for line in hlo.splitlines() if "all-reduce(" in line)


# ----------------------------------------------------------------------------------------------
# Errors.

T = jnp.ones((2, 4, 6))
M = jnp.array([[1.0, 1, 0, 0], [1, 0, 1, 0]])


@pytest.mark.parametrize(
    ("call", "exc", "match"),
    [
        (lambda: jgather.mae_loss(pred=T[:, :1], target=T, mask=M), ValueError, "row 0 of mask"),
        (lambda: jgather.mae_loss(pred=jnp.ones((2, 5, 6)), target=T, mask=M), ValueError,
         "K <= L"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, norm_pix_loss="videomae"),
         ValueError, "channels=C"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, norm_pix_loss="videomae",
                                  channels=4), ValueError, "multiple"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, norm_pix_loss="videomae",
                                  channels=2.0), TypeError, "channels"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, channels=3), ValueError,
         "only read by"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, norm_pix_loss="pixel"), ValueError,
         "'videomae'"),
        (lambda: jgather.mae_loss(pred=T, target=T, mask=M, norm_pix_loss=1), TypeError,
         "bool"),
        (lambda: jgather.masked_ids(MASKED.mask), TypeError, "apply_mask"),
        (lambda: jgather.masked_ids(MASKED._replace(len_keep=None)), ValueError, "len_keep"),
        (lambda: jgather.take_masked(X[:, 1:], MASKED), ValueError, "prefix"),
        (lambda: jgather.take_masked(X, (1, 2, 3)), TypeError, "MaskedTokens"),
        (lambda: jgather.take_masked(X, MASKED, method="bogus"), ValueError, "method"),
    ],
)  # fmt: skip
def test_errors_name_the_function_and_the_fix(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert type(info.value) is exc
    assert re.match(r"^(mae_loss|masked_ids|take_masked): ", str(info.value)), str(info.value)
