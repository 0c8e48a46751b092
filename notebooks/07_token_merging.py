# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Token merging: ToMe in a jitted ViT
#
# ToMe (Bolya et al., *Token Merging: Your ViT but Faster*) merges the `r` most similar
# tokens in every block, between the attention and the MLP, so each block runs on fewer
# tokens. `jgather.tokens` states its matching and merge with jgather's gathers and
# scatters: `bipartite_soft_matching` returns a `Merge` (a pytree of indices),
# `merge_wavg` averages the merged tokens by their size, `merge_source` records which patches
# each token holds, and `proportional_attention_bias` is ToMe's `log(size)` term.
#
# This notebook builds a small ViT with random weights (no download), runs it on the
# photograph bundled with jgather at several `r`, draws which patches merged, and times the
# jitted forward pass against `r`.

# %%
import importlib.resources
import math
import statistics
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jgather
from jgather import tokens

with (importlib.resources.files("jgather") / "data" / "chelsea_224.npy").open(
    "rb"
) as f:
    photo = np.load(f)  # uint8 [224, 224, 3]; CC0, see jgather/data/NOTICE.md
P = 16  # 16-pixel patches: a 14 x 14 grid, 196 tokens and a class token

# %% tags=["parameters"]
DEPTH, WIDTH, HEADS = 4, 192, 3  # a small ViT (ViT-Ti's width, a third of its depth)
BATCH, ROUNDS = 8, 5  # images per timed call, timed rounds per r
R_VALUES = [0, 8, 16, 24]

# %% [markdown]
# ## A ViT with ToMe
#
# The block is ToMe's patch of timm's: attention (with the size term once tokens have
# merged), the keys averaged over heads as the similarity metric, then the merge, then the
# MLP. `r` and the schedule are Python ints: they fix the shapes, so each `r` is its own
# compiled program.


# %%
def init(key, depth=DEPTH, width=WIDTH):
    keys = iter(jax.random.split(key, 3 + 4 * depth))
    dense = lambda i, o: jax.random.normal(next(keys), (i, o)) / math.sqrt(i)
    blocks = [
        dict(
            qkv=dense(width, 3 * width),
            proj=dense(width, width),
            fc1=dense(width, 4 * width),
            fc2=dense(4 * width, width),
        )
        for _ in range(depth)
    ]
    return dict(
        embed=dense(P * P * 3, width),
        cls=jax.random.normal(next(keys), (1, 1, width)) * 0.02,
        pos=jax.random.normal(next(keys), (1, 197, width)) * 0.02,
        blocks=blocks,
    )


def norm(x):
    return (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(
        x.var(-1, keepdims=True) + 1e-6
    )


def forward(params, images, schedule, heads=HEADS):
    """Class-token features and ToMe's source map ([N, T_final, 197])."""
    n = images.shape[0]
    x = jgather.patchify(images, P) @ params["embed"]
    x = jnp.concatenate([jnp.broadcast_to(params["cls"], (n, 1, x.shape[-1])), x], 1)
    x = x + params["pos"]
    size = source = None
    for block, r in zip(params["blocks"], schedule, strict=True):
        t, d = x.shape[1], x.shape[2]
        qkv = (norm(x) @ block["qkv"]).reshape(n, t, 3, heads, d // heads)
        q, k, v = qkv.transpose(2, 0, 3, 1, 4)
        logits = q @ k.swapaxes(-1, -2) / math.sqrt(d // heads)
        if size is not None:
            logits = logits + tokens.proportional_attention_bias(size)
        a = jax.nn.softmax(logits, -1) @ v
        x = x + a.transpose(0, 2, 1, 3).reshape(n, t, d) @ block["proj"]
        if r > 0:
            m = tokens.bipartite_soft_matching(k.mean(1), r, class_token=True)
            source = tokens.merge_source(m, x, source)
            x, size = tokens.merge_wavg(m, x, size)
        x = x + jax.nn.gelu(norm(x) @ block["fc1"]) @ block["fc2"]
    if source is None:
        source = jnp.broadcast_to(jnp.eye(x.shape[1]), (n, x.shape[1], x.shape[1]))
    return norm(x[:, 0]), source


def compiled(r):
    schedule = tokens.r_schedule(DEPTH, r)
    return jax.jit(lambda p, im: forward(p, im, schedule))


params = init(jax.random.key(0))
image = jnp.asarray(photo, jnp.float32)[None] / 255.0
image = (image - image.mean()) / image.std()
programs = {r: compiled(r) for r in R_VALUES}  # one program per r
sources = {}
for r, program in programs.items():
    feats, sources[r] = program(params, image)
    schedule = tokens.r_schedule(DEPTH, r)
    print(f"r={r:2d}: schedule {schedule}, tokens left {sources[r].shape[1]}")


# %% [markdown]
# ## Which patches merged
#
# `merge_source` keeps, for every token left, the original tokens it holds. Painting each
# patch with the mean colour of its group, with a white line between patches held by
# different tokens, shows the merges. With random weights the keys are random projections of
# the patches (plus position embeddings), so patches that look alike tend to merge first.

# %%
patch_rgb = jgather.patchify(jnp.asarray(photo, jnp.float32)[None], P)[0]
patch_rgb = patch_rgb.reshape(196, P * P, 3)


def painted(source):
    group = jnp.argmax(source[0, :, 1:], axis=0)  # the token each patch ended in
    mean = jgather.segment.scatter_mean(
        patch_rgb.mean(1), group, 0, dim_size=source.shape[1]
    )
    tiles = jnp.broadcast_to(mean[group][:, None, :], (196, P * P, 3))
    return np.asarray(jgather.unpatchify(tiles.reshape(1, 196, -1), P, 3)[0])


def draw(ax, source):
    ax.imshow(painted(source).astype(np.uint8))
    group = np.asarray(jnp.argmax(source[0, :, 1:], axis=0)).reshape(14, 14)
    for i in range(14):  # a line between neighbouring patches of different tokens
        for j in range(14):
            if j < 13 and group[i, j] != group[i, j + 1]:
                ax.plot(
                    [(j + 1) * P - 0.5] * 2,
                    [i * P - 0.5, (i + 1) * P - 0.5],
                    "w",
                    lw=0.6,
                )
            if i < 13 and group[i, j] != group[i + 1, j]:
                ax.plot(
                    [j * P - 0.5, (j + 1) * P - 0.5],
                    [(i + 1) * P - 0.5] * 2,
                    "w",
                    lw=0.6,
                )
    ax.set_xlim(-0.5, 223.5)
    ax.set_ylim(223.5, -0.5)
    ax.axis("off")


fig, axes = plt.subplots(1, len(R_VALUES), figsize=(3.5 * len(R_VALUES), 3.8))
for ax, (r, source) in zip(np.atleast_1d(axes), sources.items(), strict=True):
    draw(ax, source)
    ax.set_title(f"r = {r}: {source.shape[1] - 1} patch tokens")
plt.show()

# %% [markdown]
# ## Throughput against r
#
# Each `r` is timed on a batch of `BATCH` images, the programs interleaved round by round in
# a fresh random order (medians). The first row of the table is the full-token model.

# %%
batch = jnp.broadcast_to(image, (BATCH, 224, 224, 3))
for fn in programs.values():
    jax.block_until_ready(
        fn(params, batch)
    )  # compile for this batch outside the timing
times = {r: [] for r in R_VALUES}
rng = np.random.default_rng(0)
for _ in range(ROUNDS):
    for r in rng.permutation(R_VALUES):
        t0 = time.perf_counter()
        jax.block_until_ready(programs[int(r)](params, batch)[0])
        times[int(r)].append(time.perf_counter() - t0)
speed = {r: BATCH / statistics.median(v) for r, v in times.items()}
for r, s in speed.items():
    print(f"r={r:2d}: {s:7.1f} images/s, {s / speed[R_VALUES[0]]:.2f}x")

plt.figure(figsize=(5, 3))
plt.plot(list(speed), list(speed.values()), "o-")
plt.xlabel("r (tokens merged per block)")
plt.ylabel("images / s")
plt.title(f"ViT depth {DEPTH}, width {WIDTH}, {jax.default_backend()}")
plt.show()

# %% [markdown]
# The speed-up grows with `r` because each block after a merge runs on fewer tokens; the
# matching itself (a normalisation, one `[T/2, T/2]` similarity product, a sort) and the
# merge (two gathers and one scatter of whole rows) are small next to the block. The
# benchmark `python -m benchmarks.tokens` times the same at ViT-B/16's size.
