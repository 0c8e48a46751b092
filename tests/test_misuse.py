"""The traps a MAE port falls into, each now a right answer or a clear error.

1. ``unshuffle`` after prepending a cls token, without ``num_prefix``: the masking result
   records the prefix and kept counts and ``unshuffle`` checks them; with a raw
   ``ids_restore`` array, ``num_prefix`` is required.
2. ``patchify`` of NCHW images read as NHWC: ``channels_first=``, and an error when the
   default layout looks wrong.
3. ``mae_loss`` with MAE's ``forward_loss(imgs, pred, mask)`` order: keyword-only.
4. ``mask`` in bfloat16: float32 by default, ``mask_dtype=`` to choose.
5. MAE-order ``random_masking(x, ratio)``: an error that names the key-first signature.
6. MAE's formula keeping no token: an empty ``x_masked``, as MAE, and ``unshuffle`` of it.
"""

from __future__ import annotations

import inspect

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather


def tokens(n, length, d, seed=0):
    return np.random.default_rng(seed).standard_normal((n, length, d)).astype(np.float32)


def noise_for(n, length, seed=1):
    return np.random.default_rng(seed).random((n, length), dtype=np.float32)  # no ties


def mae_random_masking_numpy(x, mask_ratio, noise):
    """MAE's random_masking (models_mae.py), re-stated in NumPy, given the noise."""
    n, length, _ = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = np.argsort(noise, axis=1, kind="stable")
    ids_restore = np.argsort(ids_shuffle, axis=1, kind="stable")
    x_masked = np.take_along_axis(x, ids_shuffle[:, :len_keep, None], axis=1)
    mask = np.ones((n, length), np.float32)
    mask[:, :len_keep] = 0
    return x_masked, np.take_along_axis(mask, ids_restore, axis=1), ids_restore


# ----------------------------------------------------------------------------------------------
# Trap 1: the prefix count of unshuffle.


def test_unshuffle_after_prepending_cls_checks_the_token_count():
    n, length, d = 2, 16, 3
    x, noise = tokens(n, length, d), noise_for(n, length)
    token = np.full((d,), -1.0, np.float32)
    masked = jgather.random_masking(None, x, 0.75, noise=noise)  # MAE's order: mask, then cls
    with_cls = jnp.concatenate([jnp.zeros((n, 1, d)), masked.x_masked], axis=1)
    # Before: unshuffle(with_cls, ids_restore, token) silently put the cls token among the
    # kept tokens and dropped the last kept one. Now the masking result knows better ...
    with pytest.raises(ValueError, match=r"1 more tokens .* prepend 1 cls .* num_prefix=1"):
        jgather.unshuffle(with_cls, masked, token)
    # ... and a raw ids_restore array needs num_prefix, naming both forms.
    with pytest.raises(ValueError, match=r"in place of ids_restore.*num_prefix=0.*num_prefix=1"):
        jgather.unshuffle(with_cls, masked.ids_restore, token)
    # The right calls agree with each other and with MAE's concatenate-and-gather.
    full = jgather.unshuffle(with_cls, masked, token, num_prefix=1)
    raw = jgather.unshuffle(with_cls, masked.ids_restore, token, num_prefix=1)
    np.testing.assert_array_equal(full, raw)
    np.testing.assert_array_equal(full[:, 0], 0.0)
    removed = np.asarray(masked.mask)[..., None] == 1
    np.testing.assert_array_equal(full[:, 1:], np.where(removed, token, x))
    # Without a cls token, the recorded count is used as is.
    np.testing.assert_array_equal(jgather.unshuffle(masked.x_masked, masked, token), full[:, 1:])


def test_unshuffle_with_prefix_masking_checks_dropped_prefix():
    n, length, d = 2, 16, 3
    x = tokens(n, 1 + length, d)
    masked = jgather.random_masking(None, x, 0.75, noise=noise_for(n, length), num_prefix=1)
    token = np.zeros((d,), np.float32)
    assert (masked.num_prefix, masked.len_keep) == (1, 4)
    full = jgather.unshuffle(masked.x_masked, masked, token)  # num_prefix=1 recorded
    np.testing.assert_array_equal(full[:, :1], x[:, :1])
    with pytest.raises(ValueError, match=r"1 fewer tokens .* num_prefix=0"):
        jgather.unshuffle(masked.x_masked[:, 1:], masked, token)
    np.testing.assert_array_equal(
        jgather.unshuffle(masked.x_masked[:, 1:], masked, token, num_prefix=0), full[:, 1:]
    )
    with pytest.raises(ValueError, match="the masking kept 4"):
        jgather.unshuffle(masked.x_masked[:, :3], masked, token, num_prefix=0)
    # apply_mask records its counts too.
    out = jgather.apply_mask(x, np.asarray(masked.mask), 4, num_prefix=1)
    assert (out.num_prefix, out.len_keep) == (1, 4)
    with pytest.raises(ValueError, match="prepend 1 cls"):
        jgather.unshuffle(jnp.concatenate([x[:, :1], out.x_masked], 1), out, token)


def test_padded_masked_tokens_are_checked_too():
    n, length, d, capacity = 3, 16, 2, 8
    x = tokens(n, length, d)
    out = jgather.random_masking_per_sample(
        None, x, np.array([0.5, 0.75, 1.0]), capacity=capacity, noise=noise_for(n, length)
    )
    assert (out.num_prefix, out.capacity) == (0, capacity)
    token = np.full((d,), 9.0, np.float32)
    full = jgather.unshuffle(out.x_masked, out, token)
    np.testing.assert_array_equal(
        full, jgather.unshuffle(out.x_masked, out.ids_restore, token, num_prefix=0)
    )
    with_cls = jnp.concatenate([jnp.zeros((n, 1, d)), out.x_masked], axis=1)
    with pytest.raises(ValueError, match=r"prepend 1 cls .* num_prefix=1"):
        jgather.unshuffle(with_cls, out, token)
    np.testing.assert_array_equal(
        jgather.unshuffle(with_cls, out, token, num_prefix=1)[:, 1:], full
    )
    np.testing.assert_array_equal(full[2], np.broadcast_to(token, (length, d)))  # ratio 1.0


def test_masked_tokens_unpack_and_survive_jit_vmap_tree_map():
    x = tokens(4, 16, 2)
    key = jax.random.key(0)
    out = jgather.random_masking(key, x, 0.75, num_prefix=1)
    x_masked, mask, ids_restore = out  # MAE's 3-tuple
    assert len(out) == 3 and out[0] is x_masked and out[2] is ids_restore
    assert [a.shape for a in out[:2]] == [(4, 4, 2), (4, 15)]
    assert len(jax.tree.leaves(out)) == 3
    assert (out.num_prefix, out.len_keep) == (1, 3)
    # jit: the static facts come back with the arrays.
    again = jax.jit(lambda k, x: jgather.random_masking(k, x, 0.75, num_prefix=1))(key, x)
    chex.assert_trees_all_equal(again, out)
    assert (again.num_prefix, again.len_keep) == (1, 3)
    # tree_map and a jitted identity keep them; _replace keeps them.
    doubled = jax.tree.map(lambda a: a * 2, out)
    assert isinstance(doubled, jgather.MaskedTokens) and doubled.len_keep == 3
    assert jax.jit(lambda o: o)(out).num_prefix == 1
    assert out._replace(mask=mask * 0).len_keep == 3
    # vmap over groups of batches: one masking per group, the facts shared.
    grouped = jax.vmap(lambda k, x: jgather.random_masking(k, x, 0.75, num_prefix=1))(
        jax.random.split(key, 2), np.stack([x, x])
    )
    assert grouped.x_masked.shape == (2, 4, 4, 2) and grouped.len_keep == 3
    # ... and unshuffle takes the result under jit and vmap.
    token = jnp.ones(2)
    eager = jgather.unshuffle(out.x_masked, out, token)
    np.testing.assert_array_equal(jax.jit(jgather.unshuffle)(out.x_masked, out, token), eager)
    mapped = jax.vmap(jgather.unshuffle, in_axes=(0, 0, None))(
        out.x_masked[:, None], jax.tree.map(lambda a: a[:, None], out), token
    )[:, 0]
    np.testing.assert_array_equal(mapped, eager)


# ----------------------------------------------------------------------------------------------
# Trap 2: the image layout of patchify.


def mae_patchify_numpy(imgs, p):
    """MAE's patchify on NCHW: 'nchpwq->nhwpqc'."""
    n, c, hh, ww = imgs.shape
    x = imgs.reshape(n, c, hh // p, p, ww // p, p)
    x = np.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (hh // p) * (ww // p), p * p * c)


def test_patchify_refuses_what_looks_channels_first():
    for c in (1, 3, 4):
        nchw = np.zeros((2, c, 32, 32), np.float32)
        with pytest.raises(
            ValueError,
            match=r"channels-first.*channels_first=True.*NCHW.*"
            r"channels_first=False.*NHWC",
        ):
            jgather.patchify(nchw, 4)  # before: (2, 8, 512) for c=4, "crop or pad" for c=3
    confirmed = jgather.patchify(np.zeros((2, 4, 32, 32)), 4, channels_first=False)
    assert confirmed.shape == (2, 8, 4 * 4 * 32)  # an NHWC image 4 pixels high, as asked
    video = np.zeros((1, 3, 4, 8, 8), np.float32)  # NCTHW
    with pytest.raises(ValueError, match="NCTHW"):
        jgather.patchify(video, 4, tubelet_size=2)
    assert jgather.patchify(video, 4, tubelet_size=2, channels_first=True).shape == (1, 8, 96)
    # Channels-last images pass the check whatever their size.
    assert jgather.patchify(np.zeros((2, 3, 32, 3)), 1).shape == (2, 96, 3)
    assert jgather.patchify(np.zeros((2, 32, 32, 3)), 4).shape == (2, 64, 48)


def test_patchify_channels_first_is_maes_patchify():
    rng = np.random.default_rng(0)
    imgs = rng.standard_normal((2, 3, 8, 12)).astype(np.float32)
    got = jgather.patchify(imgs, 4, channels_first=True)
    np.testing.assert_array_equal(got, mae_patchify_numpy(imgs, 4))
    np.testing.assert_array_equal(got, jgather.patchify(imgs.transpose(0, 2, 3, 1), 4))
    back = jgather.unpatchify(got, 4, 3, grid=(2, 3), channels_first=True)
    np.testing.assert_array_equal(back, imgs)
    jitted = jax.jit(lambda im: jgather.patchify(im, 4, channels_first=True))
    np.testing.assert_array_equal(jitted(imgs), got)
    # Video: NCTHW is NTHWC transposed.
    vids = rng.standard_normal((1, 3, 4, 8, 8)).astype(np.float32)
    got = jgather.patchify(vids, 4, tubelet_size=2, channels_first=True)
    np.testing.assert_array_equal(
        got, jgather.patchify(vids.transpose(0, 2, 3, 4, 1), 4, tubelet_size=2)
    )
    back = jgather.unpatchify(got, 4, 3, grid=(2, 2, 2), tubelet_size=2, channels_first=True)
    np.testing.assert_array_equal(back, vids)


def test_patchify_errors_name_the_layout():
    with pytest.raises(ValueError, match=r"read as NCHW.*channels_first=False"):
        jgather.patchify(np.zeros((2, 3, 30, 32)), 4, channels_first=True)
    with pytest.raises(ValueError, match=r"read as NHWC.*channels_first=True"):
        jgather.patchify(np.zeros((2, 30, 32, 3)), 4)
    with pytest.raises(ValueError, match=r"NCHW \[N, C, H, W\]"):
        jgather.patchify(np.zeros((2, 3, 32)), 4, channels_first=True)
    with pytest.raises(ValueError, match=r"T=3 .* read as NCTHW"):
        jgather.patchify(np.zeros((1, 3, 3, 8, 8)), 4, tubelet_size=2, channels_first=True)
    for fn in (
        lambda: jgather.patchify(np.zeros((2, 8, 8, 3)), 4, channels_first="yes"),
        lambda: jgather.unpatchify(np.zeros((2, 4, 48)), 4, 3, channels_first=1),
    ):
        with pytest.raises(TypeError, match="channels_first"):
            fn()


# ----------------------------------------------------------------------------------------------
# Trap 3: the roles of mae_loss's arguments.


def test_mae_loss_is_keyword_only():
    rng = np.random.default_rng(0)
    pred, target = rng.standard_normal((2, 2, 4, 6)).astype(np.float32)
    mask = np.array([[1.0, 0, 1, 1], [0, 1, 1, 0]], np.float32)
    with pytest.raises(
        TypeError,
        match=r"mae_loss\(pred=pred, target=target, mask=mask.*"
        r"forward_loss\(imgs, pred, mask\)",
    ):
        jgather.mae_loss(pred, target, mask)
    with pytest.raises(TypeError, match="keyword"):
        jgather.mae_loss(pred, target=target, mask=mask)
    with pytest.raises(TypeError, match="mask is None"):
        jgather.mae_loss(pred=pred, target=target)
    # The swap the keywords prevent is silent without normalisation, wrong with it.
    right = jgather.mae_loss(pred=pred, target=target, mask=mask, norm_pix_loss=True)
    swapped = jgather.mae_loss(pred=target, target=pred, mask=mask, norm_pix_loss=True)
    assert abs(float(right) - float(swapped)) > 1e-3
    params = inspect.signature(jgather.mae_loss).parameters
    assert list(params) == ["pred", "target", "mask", "norm_pix_loss", "channels"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


# ----------------------------------------------------------------------------------------------
# Trap 4: the mask's dtype.


def test_mask_is_float32_for_bfloat16_tokens():
    # The ViT-B batch: 256 images of 196 tokens, 147 of them removed each.
    x = jnp.zeros((256, 196, 1), jnp.bfloat16)
    out = jgather.random_masking(jax.random.key(0), x, 0.75)
    assert out.mask.dtype == jnp.float32 and out.x_masked.dtype == jnp.bfloat16
    assert float(out.mask.sum()) == 256 * 147
    # One sample fewer: a count bfloat16 cannot even hold, exact in the float32 mask.
    count = 255 * 147
    assert float(jnp.asarray(count, jnp.bfloat16)) != count
    assert float(out.mask[:255].sum()) == count
    # mask_dtype chooses; apply_mask and random_masking_per_sample agree.
    assert jgather.random_masking(jax.random.key(0), x, 0.75, mask_dtype=jnp.bfloat16).mask.dtype
    again = jgather.apply_mask(x, out.mask, 49)
    assert again.mask.dtype == jnp.float32
    assert jgather.apply_mask(x, out.mask, 49, mask_dtype=bool).mask.dtype == jnp.bool_
    padded = jgather.random_masking_per_sample(jax.random.key(0), x, 0.75, capacity=49)
    assert padded.mask.dtype == jnp.float32
    np.testing.assert_array_equal(padded.mask, out.mask)
    with pytest.raises(TypeError, match="mask_dtype"):
        jgather.random_masking(jax.random.key(0), x, 0.75, mask_dtype="not a dtype")


# ----------------------------------------------------------------------------------------------
# Trap 5: the key comes first.


def test_mae_order_call_names_the_key_first_signature():
    x = tokens(2, 16, 3)
    signature = r"random_masking\(key, x, mask_ratio\)"
    noise_form = r"random_masking\(None, x, mask_ratio, noise=noise\)"
    for bad in (x, x.astype(np.int32), x.astype(np.uint32), jnp.asarray(x, jnp.bfloat16)):
        with pytest.raises(TypeError, match=f"{signature}.*{noise_form}"):
            jgather.random_masking(bad, 0.75)  # MAE's random_masking(x, mask_ratio)
    with pytest.raises(TypeError, match=signature):
        jgather.random_masking(x, 0.75, noise=noise_for(2, 16))
    with pytest.raises(TypeError, match=r"random_masking_per_sample\(key, x, mask_ratio, "):
        jgather.random_masking_per_sample(x, 0.75, capacity=4)
    with pytest.raises(TypeError, match="mask_ratio is required"):
        jgather.random_masking_per_sample(jax.random.key(0), x, capacity=4)
    # Keys of every kind still pass.
    legacy = jax.random.PRNGKey(0)
    for key in (jax.random.key(0), legacy, jax.random.split(legacy, 2)):
        assert jgather.random_masking(key, x, 0.75).x_masked.shape == (2, 4, 3)
    assert jgather.random_masking_per_sample(legacy, x, 0.75, capacity=4).x_masked.shape == (
        2,
        4,
        3,
    )


# ----------------------------------------------------------------------------------------------
# Trap 6: MAE's formula keeping no token.

EDGE_CASES = [(4, 0.9), (4, 0.95), (4, 1.0), (16, 0.9), (16, 0.95), (16, 1.0)]


@pytest.mark.parametrize(("length", "ratio"), EDGE_CASES)
@pytest.mark.parametrize("num_prefix", [0, 1])
def test_high_ratios_match_mae(length, ratio, num_prefix):
    n, d = 3, 2
    x, noise = tokens(n, num_prefix + length, d), noise_for(n, length)
    len_keep = int(length * (1 - ratio))  # 0, except L=16 at 0.9 (1)
    want = mae_random_masking_numpy(x[:, num_prefix:], ratio, noise)
    for method in ("gather", "onehot"):
        out = jgather.random_masking(
            None, x, ratio, noise=noise, num_prefix=num_prefix, method=method
        )
        assert out.x_masked.shape == (n, num_prefix + len_keep, d) and out.len_keep == len_keep
        np.testing.assert_array_equal(out.x_masked[:, :num_prefix], x[:, :num_prefix])
        for got, ref in zip(
            (out.x_masked[:, num_prefix:], out.mask, out.ids_restore), want, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(got), ref)
        token = np.full((d,), -3.0, np.float32)
        full = jgather.unshuffle(out.x_masked, out, token, method=method)
        removed = want[1][..., None] == 1
        np.testing.assert_array_equal(
            full[:, num_prefix:], np.where(removed, token, x[:, num_prefix:])
        )
        np.testing.assert_array_equal(full[:, :num_prefix], x[:, :num_prefix])
    # The random draw keeps the same count, and apply_mask takes num_keep = 0 alike.
    drawn = jgather.random_masking(jax.random.key(0), x, ratio, num_prefix=num_prefix)
    assert drawn.x_masked.shape == (n, num_prefix + len_keep, d)
    assert float(drawn.mask.sum()) == n * (length - len_keep)
    # (With at most one kept token its order is MAE's too; ids_restore orders the removed
    # tokens differently, by position.)
    applied = jgather.apply_mask(x, want[1], len_keep, num_prefix=num_prefix)
    assert applied.len_keep == len_keep
    np.testing.assert_array_equal(np.asarray(applied.x_masked[:, num_prefix:]), want[0])
    np.testing.assert_array_equal(np.asarray(applied.mask), want[1])
    full = jgather.unshuffle(applied.x_masked, applied, token)
    np.testing.assert_array_equal(full[:, num_prefix:], np.where(removed, token, x[:, num_prefix:]))


def test_nothing_kept_under_jit_and_grad():
    x = jnp.asarray(tokens(2, 16, 3))
    # (A lambda: jit's cache of random_masking itself is shared with other tests that count
    # its traces.)
    out = jax.jit(lambda k, x: jgather.random_masking(k, x, 1.0))(jax.random.key(0), x)
    assert out.x_masked.shape == (2, 0, 3) and bool((out.mask == 1).all())

    def loss(x, token):
        o = jgather.random_masking(jax.random.key(0), x, 1.0)
        return jnp.sum(jgather.unshuffle(o.x_masked, o, token))

    gx, gt = jax.grad(loss, argnums=(0, 1))(x, jnp.zeros(3))
    np.testing.assert_array_equal(gx, 0.0)
    np.testing.assert_array_equal(gt, np.full(3, 2 * 16.0))


@pytest.mark.parametrize(("length", "ratio"), EDGE_CASES)
def test_high_ratios_match_torch_mae(length, ratio):
    torch = pytest.importorskip("torch")
    n, d = 3, 2
    x, noise = tokens(n, length, d), noise_for(n, length)
    # MAE's random_masking, models_mae.py, with the noise given.
    xt, nt = torch.from_numpy(x), torch.from_numpy(noise)
    len_keep = int(length * (1 - ratio))
    ids_shuffle = torch.argsort(nt, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(xt, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
    mask = torch.ones([n, length])
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    out = jgather.random_masking(None, x, ratio, noise=noise)
    for name, got, want in zip(out._fields, out, (x_masked, mask, ids_restore), strict=True):
        assert got.shape == tuple(want.shape), name
        np.testing.assert_array_equal(np.asarray(got), want.numpy(), err_msg=name)
    # MAE's decoder: cat([x, mask_tokens]) gathered by ids_restore.
    token = torch.full((1, 1, d), -3.0)
    cat = torch.cat([x_masked, token.repeat(n, length - len_keep, 1)], dim=1)
    want = torch.gather(cat, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, d))
    got = jgather.unshuffle(out.x_masked, out, token.numpy())
    np.testing.assert_array_equal(np.asarray(got), want.numpy())
