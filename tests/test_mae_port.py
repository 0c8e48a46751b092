"""A port check: the token path of MAE's MaskedAutoencoderViT in torch and with jgather.

The torch side re-states MAE's algorithm (He et al., 2021; facebookresearch/mae
``models_mae.py``): conv patch embedding of NCHW images, positional embedding, per-sample
random masking by argsort of the noise, the cls token (with its positional embedding)
concatenated after masking, the decoder's append-mask-tokens-and-unshuffle with the cls token
passed through, and ``forward_loss`` on ``patchify(imgs)`` with and without ``norm_pix_loss``.
The transformer blocks are replaced by tiny per-token layers with one cross-token term, so that
the check stays cheap but every gradient path (kept tokens, cls token, mask token, positional
embeddings) is exercised.

The jgather side is what a port would write: NHWC images (NCHW transposed), ``patchify``,
``random_masking(None, x, ratio, noise=noise)`` (MAE's order: mask, then the cls token; and the
prefix form: cls first, ``num_prefix=1``), ``unshuffle(x, masked, mask_token, num_prefix=1)``
(the masking result in place of ``ids_restore``, so the token count is checked) and
``mae_loss(pred=pred, target=target, mask=mask)``. Same weights and noise; values and gradients
are compared. NCHW input through ``patchify(..., channels_first=True)`` gives MAE's tokens.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather

torch = pytest.importorskip("torch")

N, C, H, W, PATCH = 3, 3, 8, 12, 2  # a non-square image: a 4 x 6 grid of 2 x 2 patches
GRID = (H // PATCH, W // PATCH)
L = GRID[0] * GRID[1]
E, ED = 8, 6  # encoder and decoder widths
PIX = PATCH * PATCH * C
RATIO = 0.75


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    r = lambda *shape: (0.3 * rng.standard_normal(shape)).astype(np.float32)
    return {
        "patch_w": r(E, C, PATCH, PATCH),  # Conv2d(C, E, PATCH, stride=PATCH), as PatchEmbed
        "patch_b": r(E),
        "cls_token": r(1, 1, E),
        "pos_embed": r(1, 1 + L, E),
        "enc_w": r(E, E),  # nn.Linear layout: [out, in]
        "enc_b": r(E),
        "dec_embed_w": r(ED, E),
        "dec_embed_b": r(ED),
        "mask_token": r(1, 1, ED),
        "dec_pos_embed": r(1, 1 + L, ED),
        "dec_w": r(ED, ED),
        "dec_b": r(ED),
        "pred_w": r(PIX, ED),
        "pred_b": r(PIX),
    }


# ----------------------------------------------------------------------------------------------
# torch: MAE's token path, re-stated.


def torch_patchify(imgs):
    n, c, h, w = imgs.shape
    gh, gw = h // PATCH, w // PATCH
    x = imgs.reshape(n, c, gh, PATCH, gw, PATCH)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, gh * gw, PATCH * PATCH * c)


def torch_random_masking(x, mask_ratio, noise):
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
    mask = torch.ones([n, length])
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return x_masked, mask, ids_restore


def torch_block(x, w, b):
    # Stand-in for the transformer blocks: a per-token layer plus one cross-token term.
    y = torch.tanh(x @ w.T + b)
    return x + y + y.mean(dim=1, keepdim=True)


def torch_mae(p, imgs, noise, norm_pix_loss):
    # forward_encoder
    x = torch.nn.functional.conv2d(imgs, p["patch_w"], p["patch_b"], stride=PATCH)
    x = x.flatten(2).transpose(1, 2)  # PatchEmbed: [N, L, E], row-major grid
    x = x + p["pos_embed"][:, 1:, :]
    x, mask, ids_restore = torch_random_masking(x, RATIO, noise)
    cls_token = p["cls_token"] + p["pos_embed"][:, :1, :]
    x = torch.cat((cls_token.expand(x.shape[0], -1, -1), x), dim=1)
    latent = torch_block(x, p["enc_w"], p["enc_b"])
    # forward_decoder
    x = latent @ p["dec_embed_w"].T + p["dec_embed_b"]
    mask_tokens = p["mask_token"].repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
    x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
    x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
    x = torch.cat([x[:, :1, :], x_], dim=1)
    x = x + p["dec_pos_embed"]
    decoded = x
    x = torch_block(x, p["dec_w"], p["dec_b"])
    pred = (x @ p["pred_w"].T + p["pred_b"])[:, 1:, :]
    # forward_loss
    target = torch_patchify(imgs)
    if norm_pix_loss:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    loss = ((pred - target) ** 2).mean(dim=-1)
    loss = (loss * mask).sum() / mask.sum()
    return loss, dict(mask=mask, ids_restore=ids_restore, decoded=decoded, pred=pred)


# ----------------------------------------------------------------------------------------------
# JAX with jgather, as a port would write it.


def linear(x, w, b):
    # nn.Linear on [N, L, in] (written out: the test session forbids implicit rank promotion).
    return jnp.einsum("nli,oi->nlo", x, w) + b[None, None, :]


def jax_block(x, w, b):
    y = jnp.tanh(linear(x, w, b))
    return x + y + y.mean(axis=1, keepdims=True)


def jax_mae(p, imgs_nhwc, noise, norm_pix_loss, prefix_form=False):
    # The conv patch embedding is a matrix product on MAE's (p, q, c) patches.
    w = jnp.transpose(p["patch_w"], (2, 3, 1, 0)).reshape(PIX, E)
    x = linear(jgather.patchify(imgs_nhwc, PATCH), w.T, p["patch_b"])
    x = x + p["pos_embed"][:, 1:, :]
    cls_token = jnp.broadcast_to(p["cls_token"] + p["pos_embed"][:, :1, :], (N, 1, E))
    if prefix_form:  # cls first, kept by num_prefix=1
        x = jnp.concatenate([cls_token, x], axis=1)
        masked = jgather.random_masking(None, x, RATIO, noise=noise, num_prefix=1)
        x, mask, ids_restore = masked
    else:  # MAE's order: mask the patch tokens, then put the cls token in front
        masked = jgather.random_masking(None, x, RATIO, noise=noise)
        x, mask, ids_restore = masked
        x = jnp.concatenate([cls_token, x], axis=1)
    latent = jax_block(x, p["enc_w"], p["enc_b"])
    x = linear(latent, p["dec_embed_w"], p["dec_embed_b"])
    x = jgather.unshuffle(x, masked, p["mask_token"], num_prefix=1)  # one cls token in front
    x = x + p["dec_pos_embed"]
    decoded = x
    x = jax_block(x, p["dec_w"], p["dec_b"])
    pred = linear(x, p["pred_w"], p["pred_b"])[:, 1:, :]
    target = jgather.patchify(imgs_nhwc, PATCH)
    loss = jgather.mae_loss(pred=pred, target=target, mask=mask, norm_pix_loss=norm_pix_loss)
    return loss, dict(mask=mask, ids_restore=ids_restore, decoded=decoded, pred=pred)


# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    imgs = rng.standard_normal((N, C, H, W)).astype(np.float32)
    noise = rng.random((N, L), dtype=np.float32)  # MAE's torch.rand; no ties here
    return make_params(), imgs, noise


def run_torch(params, imgs, noise, norm_pix_loss):
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x = torch.tensor(imgs, requires_grad=True)
    loss, parts = torch_mae(p, x, torch.from_numpy(noise), norm_pix_loss)
    loss.backward()
    grads = {k: v.grad.numpy() for k, v in p.items()}
    grads["imgs"] = x.grad.numpy()
    parts = {k: v.detach().numpy() for k, v in parts.items()}
    return float(loss.detach()), parts, grads


def run_jax(params, imgs, noise, norm_pix_loss, prefix_form):
    def f(p, imgs_nchw):
        imgs_nhwc = jnp.transpose(imgs_nchw, (0, 2, 3, 1))
        return jax_mae(p, imgs_nhwc, noise, norm_pix_loss, prefix_form)

    (loss, parts), (g_params, g_imgs) = jax.jit(
        jax.value_and_grad(f, argnums=(0, 1), has_aux=True)
    )(params, imgs)
    grads = {k: np.asarray(v) for k, v in g_params.items()}
    grads["imgs"] = np.asarray(g_imgs)
    return float(loss), {k: np.asarray(v) for k, v in parts.items()}, grads


@pytest.mark.parametrize("prefix_form", [False, True], ids=["mae-order", "num_prefix=1"])
@pytest.mark.parametrize("norm_pix_loss", [False, True])
def test_jgather_port_matches_mae_in_values_and_gradients(data, norm_pix_loss, prefix_form):
    params, imgs, noise = data
    t_loss, t_parts, t_grads = run_torch(params, imgs, noise, norm_pix_loss)
    j_loss, j_parts, j_grads = run_jax(params, imgs, noise, norm_pix_loss, prefix_form)
    # The masking is exact.
    np.testing.assert_array_equal(j_parts["ids_restore"], t_parts["ids_restore"])
    np.testing.assert_array_equal(j_parts["mask"], t_parts["mask"])
    assert j_parts["mask"].sum() == N * (L - int(L * (1 - RATIO)))
    # The rest is float32 arithmetic in two libraries.
    tol = dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(j_parts["decoded"], t_parts["decoded"], **tol)
    np.testing.assert_allclose(j_parts["pred"], t_parts["pred"], **tol)
    np.testing.assert_allclose(j_loss, t_loss, **tol)
    assert set(j_grads) == set(t_grads)
    for name in t_grads:
        assert np.abs(t_grads[name]).max() > 0, f"{name}: torch gradient is zero"
        np.testing.assert_allclose(j_grads[name], t_grads[name], err_msg=name, rtol=1e-4, atol=1e-6)


def test_patchify_of_nhwc_is_maes_patchify_of_nchw(data):
    _, imgs, _ = data
    want = torch_patchify(torch.from_numpy(imgs)).numpy()
    got = np.asarray(jgather.patchify(jnp.transpose(jnp.asarray(imgs), (0, 2, 3, 1)), PATCH))
    np.testing.assert_array_equal(got, want)
    back = jgather.unpatchify(jnp.asarray(got), PATCH, C, grid=GRID)
    np.testing.assert_array_equal(np.asarray(back), imgs.transpose(0, 2, 3, 1))


def test_patchify_channels_first_is_maes_patchify(data):
    # MAE's patchify takes NCHW; channels_first=True reads the same array, token for token.
    _, imgs, _ = data
    want = torch_patchify(torch.from_numpy(imgs)).numpy()
    got = np.asarray(jgather.patchify(jnp.asarray(imgs), PATCH, channels_first=True))
    np.testing.assert_array_equal(got, want)
    back = jgather.unpatchify(jnp.asarray(got), PATCH, C, grid=GRID, channels_first=True)
    np.testing.assert_array_equal(np.asarray(back), imgs)


def test_masking_triple_is_maes_exactly(data):
    _, _, noise = data
    x = np.random.default_rng(2).standard_normal((N, L, E)).astype(np.float32)
    want = torch_random_masking(torch.from_numpy(x), RATIO, torch.from_numpy(noise))
    got = jgather.random_masking(None, x, RATIO, noise=noise)
    for name, a, b in zip(("x_masked", "mask", "ids_restore"), got, want, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b.numpy(), err_msg=name)
