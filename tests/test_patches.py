"""patchify / unpatchify against a NumPy re-statement of MAE's layout (and its video variant)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jgather

# ----------------------------------------------------------------------------------------------
# Reference: MAE's patchify on NCHW, 'nchpwq->nhwpqc', re-stated in NumPy; MAE-ST's video
# variant 'nctuhpwq->nthwupqc'.


def patchify_reference_nchw(imgs, p, q):
    n, c, hh, ww = imgs.shape
    h, w = hh // p, ww // q
    x = imgs.reshape(n, c, h, p, w, q)
    x = np.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, h * w, p * q * c)


def patchify_reference_video(vids, u, p, q):
    n, c, tt, hh, ww = vids.shape
    t, h, w = tt // u, hh // p, ww // q
    x = vids.reshape(n, c, t, u, h, p, w, q)
    x = np.einsum("nctuhpwq->nthwupqc", x)
    return x.reshape(n, t * h * w, u * p * q * c)


def images(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    ("hw", "patch"),
    [((32, 32), 16), ((32, 48), 16), ((12, 8), (4, 2)), ((224, 224), 16)],
)
def test_patchify_matches_mae_layout(hw, patch):
    p, q = (patch, patch) if isinstance(patch, int) else patch
    imgs = images((2, *hw, 3))
    tokens = jgather.patchify(imgs, patch)
    expected = patchify_reference_nchw(imgs.transpose(0, 3, 1, 2), p, q)
    np.testing.assert_array_equal(tokens, expected)
    grid = (hw[0] // p, hw[1] // q)
    back = jgather.unpatchify(tokens, patch, 3, grid=grid)
    np.testing.assert_array_equal(back, imgs)
    if grid[0] == grid[1]:
        np.testing.assert_array_equal(jgather.unpatchify(tokens, patch, 3), imgs)


def test_token_order_by_hand():
    # 1 channel, 4x4 image, 2x2 patches: token 1 is the top-right patch, read row by row.
    img = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    tokens = jgather.patchify(img, 2)
    np.testing.assert_array_equal(tokens[0, 1], [2, 3, 6, 7])
    np.testing.assert_array_equal(tokens[0, 2], [8, 9, 12, 13])
    # Channels vary fastest inside a patch: (p, q, c).
    img = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(jgather.patchify(img, 2)[0, 0], np.arange(8))


@pytest.mark.parametrize(("thw", "u", "patch"), [((4, 8, 8), 2, 4), ((2, 8, 12), 1, (4, 2))])
def test_video_tubelets(thw, u, patch):
    p, q = (patch, patch) if isinstance(patch, int) else patch
    vids = images((2, *thw, 3))
    tokens = jgather.patchify(vids, patch, tubelet_size=u)
    expected = patchify_reference_video(vids.transpose(0, 4, 1, 2, 3), u, p, q)
    np.testing.assert_array_equal(tokens, expected)
    grid = (thw[0] // u, thw[1] // p, thw[2] // q)
    back = jgather.unpatchify(tokens, patch, 3, grid=grid, tubelet_size=u)
    np.testing.assert_array_equal(back, vids)


def test_jit_vmap_and_dtypes():
    imgs = images((2, 8, 8, 3))
    eager = jgather.patchify(imgs, 4)
    np.testing.assert_array_equal(jax.jit(jgather.patchify, static_argnums=1)(imgs, 4), eager)
    grouped = jax.vmap(lambda im: jgather.patchify(im, 4))(np.stack([imgs, imgs[::-1]]))
    np.testing.assert_array_equal(grouped[0], eager)
    np.testing.assert_array_equal(grouped[1], eager[::-1])
    back = jax.jit(lambda t: jgather.unpatchify(t, 4, 3))(eager)
    np.testing.assert_array_equal(back, imgs)
    ints = jnp.arange(2 * 8 * 8 * 3, dtype=jnp.int32).reshape(2, 8, 8, 3)
    assert jgather.patchify(ints, 4).dtype == jnp.int32
    np.testing.assert_array_equal(jgather.unpatchify(jgather.patchify(ints, 4), 4, 3), ints)


def test_errors():
    imgs = images((1, 8, 12, 3))
    with pytest.raises(ValueError, match="must divide"):
        jgather.patchify(imgs, 5)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        jgather.patchify(imgs[0], 4)
    with pytest.raises(ValueError, match="tubelet_size"):
        jgather.patchify(images((1, 2, 8, 8, 3)), 4)
    with pytest.raises(ValueError, match="must divide the number of frames"):
        jgather.patchify(images((1, 3, 8, 8, 3)), 4, tubelet_size=2)
    with pytest.raises(TypeError, match="patch_size"):
        jgather.patchify(imgs, 4.0)
    tokens = jgather.patchify(imgs, 4)  # grid 2 x 3
    with pytest.raises(ValueError, match="not a square grid"):
        jgather.unpatchify(tokens, 4, 3)
    with pytest.raises(ValueError, match="holds 4 tokens"):
        jgather.unpatchify(tokens, 4, 3, grid=(2, 2))
    with pytest.raises(ValueError, match="token width"):
        jgather.unpatchify(tokens, 4, 1, grid=(2, 3))
    with pytest.raises(ValueError, match=r"grid=\(t, h, w\)"):
        jgather.unpatchify(tokens, 4, 3, tubelet_size=1)
