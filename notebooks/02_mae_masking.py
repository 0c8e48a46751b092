# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MAE masking on a photograph
#
# MAE (He et al., *Masked Autoencoders Are Scalable Vision Learners*) hides 75 % of an image's
# patch tokens and trains an encoder on the rest. Its `random_masking` is a per-sample random
# permutation built from `argsort` of uniform noise, and a `gather`. This notebook runs it step by
# step on the photograph bundled with jgather, checks each step against `jgather.random_masking`,
# puts the tokens back with `unshuffle`, and closes with a gallery of the masking family.

# %%
import importlib.resources

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jgather

with (importlib.resources.files("jgather") / "data" / "chelsea_224.npy").open(
    "rb"
) as f:
    photo = np.load(f)  # uint8 [224, 224, 3]; CC0, see jgather/data/NOTICE.md
print(photo.shape, photo.dtype)
plt.figure(figsize=(3, 3))
plt.imshow(photo)
plt.axis("off")
plt.show()

# %% [markdown]
# ## Tokens
#
# With 16-pixel patches the 224 × 224 image becomes a 14 × 14 grid, i.e. a sequence of
# `L = 196` tokens of `D = 16 · 16 · 3 = 768` values each (MAE's layout: pixels of a patch in
# `(row, column, channel)` order, tokens row-major).

# %%
P = 16
images = jnp.asarray(photo, jnp.float32)[None] / 255.0  # NHWC, [1, 224, 224, 3]
tokens = jgather.patchify(images, P)
N, L, D = tokens.shape
G = 224 // P
print(f"tokens: [N, L, D] = {tokens.shape}")

# %% [markdown]
# ## Random masking, one step at a time
#
# 1. **noise** — one uniform number per token;
# 2. **ids_shuffle** = `argsort(noise)`: tokens ordered by their noise, smallest first;
# 3. **ids_keep** = the first `len_keep = int(L * (1 - mask_ratio))` of them;
# 4. **x_masked** = `gather` of the kept tokens, in shuffled order — what the encoder sees;
# 5. **ids_restore** = `argsort(ids_shuffle)`, the inverse permutation;
# 6. **mask** — 0 for the first `len_keep` shuffled positions, 1 for the rest, put back in the
#    original token order by gathering with `ids_restore`.

# %%
mask_ratio = 0.75
key = jax.random.key(0)
noise = jax.random.uniform(key, (N, L))
ids_shuffle = jnp.argsort(noise, axis=1)
ids_restore = jnp.argsort(ids_shuffle, axis=1)
len_keep = int(L * (1 - mask_ratio))
ids_keep = ids_shuffle[:, :len_keep]
x_masked = jgather.gather(
    tokens, 1, jnp.broadcast_to(ids_keep[..., None], (N, len_keep, D))
)
mask = jgather.gather(jnp.arange(L)[None] >= len_keep, 1, ids_restore).astype(
    jnp.float32
)
print(
    f"len_keep = {len_keep}, x_masked {x_masked.shape}, "
    f"mask {mask.shape} with {int(mask.sum())} ones"
)
print("first kept token ids:", ids_keep[0, :10].tolist())

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.8))
panels = [
    (noise[0], "noise", "viridis"),
    (ids_restore[0], "rank of each token in ids_shuffle\n(= ids_restore)", "magma"),
    (ids_restore[0] < len_keep, f"kept: rank < len_keep = {len_keep}", "gray"),
    (mask[0], "mask (1 = removed)", "gray_r"),
]
for ax, (values, title, cmap) in zip(axes, panels, strict=True):
    im = ax.imshow(np.asarray(values).reshape(G, G), cmap=cmap)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046)
plt.show()

# %% [markdown]
# `jgather.random_masking` does all of this in one jit-compiled call. Given the same noise, its
# three outputs are identical to the step-by-step ones:

# %%
result = jgather.random_masking(key, tokens, mask_ratio, noise=noise)
print("x_masked equal:   ", bool((result.x_masked == x_masked).all()))
print("mask equal:       ", bool((result.mask == mask).all()))
print("ids_restore equal:", bool((result.ids_restore == ids_restore).all()))

# %% [markdown]
# ## What the encoder sees, and putting tokens back
#
# `x_masked` is a short sequence of 49 tokens in shuffled order. The decoder appends a mask token
# for each of the 147 removed positions and *unshuffles* with `ids_restore` — a second gather — so
# every token returns to its place. Here the mask token is a flat grey patch. `unshuffle` takes
# the whole masking result in place of `ids_restore`: it records how many prefix (cls) tokens
# lead `x_masked` and how many tokens were kept, so a cls token prepended without
# `num_prefix=1` is an error rather than a silently shifted sequence.


# %%
def to_image(seq):
    return np.asarray(jnp.clip(jgather.unpatchify(seq, P, 3)[0], 0, 1))


grey = jnp.full((D,), 0.5)
restored = jgather.unshuffle(
    result.x_masked, result, grey
)  # the result in place of ids_restore
visible_strip = (
    np.asarray(result.x_masked[0])
    .reshape(7, 7, P, P, 3)
    .transpose(0, 2, 1, 3, 4)
    .reshape(7 * P, 7 * P, 3)
)
pixel_mask = np.kron(np.asarray(result.mask[0]).reshape(G, G), np.ones((P, P)))[
    ..., None
]

fig, axes = plt.subplots(1, 4, figsize=(9, 3.2), layout="constrained")
for ax, image, title in zip(
    axes,
    [
        photo / 255,
        photo / 255 * (1 - 0.7 * pixel_mask),
        visible_strip,
        to_image(restored),
    ],
    [
        "original",
        "masked (removed: dimmed)",
        "x_masked: 49 tokens,\nencoder order",
        "unshuffle(x_masked,\nresult, grey)",
    ],
    strict=True,
):
    ax.imshow(image)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
plt.show()

kept = np.asarray(result.mask[0]) == 0
same = np.asarray(restored[0])[kept] == np.asarray(tokens[0])[kept]
print("kept tokens are restored exactly:", bool(same.all()))

# %% [markdown]
# Removing tokens and restoring them are both gathers, so the whole round trip is differentiable:
# the gradient reaches exactly the kept tokens.


# %%
def loss(t):
    out = jgather.random_masking(key, t, mask_ratio, noise=noise)
    return jgather.unshuffle(out.x_masked, out, grey).sum()


touched = (jax.grad(loss)(tokens)[0] != 0).any(axis=-1)
print("gradient is nonzero exactly on kept tokens:", bool((touched == kept).all()))

# %% [markdown]
# ## The family
#
# Later methods changed *which* tokens to hide. Each is a jit-compiled function of an explicit key
# returning a boolean mask `[N, L]` (True = masked); `jgather.apply_mask` turns a fixed-count mask
# into the same `(x_masked, mask, ids_restore)` triple that `unshuffle` takes.
#
# * **random** (MAE): uniform, per sample;
# * **tube** (VideoMAE): one spatial mask for all frames of a clip (for a still, every frame looks alike);
# * **running cell** (VideoMAE V2): which half of every 2 × 2 cell is hidden changes from frame to frame;
# * **block** (BEiT): unions of random rectangles;
# * **SimMIM**: random cells of a coarser grid, upsampled to the token grid;
# * **variable ratio** (MaskGIT): a per-sample masked count from a schedule, e.g. cosine.

# %%
keys = jax.random.split(jax.random.key(7), 8)
gallery = {
    "random (MAE)": np.asarray(
        jgather.random_masking(keys[0], tokens, 0.75).mask[0]
    ).astype(bool),
    "tube, frame 0": np.asarray(
        jgather.tube_masking(keys[1], 1, (2, G, G), 0.75)
    ).reshape(2, L)[0],
    "block (BEiT)": np.asarray(jgather.block_masking(keys[2], 1, (G, G), 98)[0]),
    "SimMIM, 32 px cells": np.asarray(
        jgather.simmim_masking(
            keys[3], 1, 224, mask_patch_size=32, model_patch_size=P, mask_ratio=0.6
        )[0]
    ),
}
cells = np.asarray(jgather.running_cell_masking(keys[4], 1, (2, G, G), 0.5)).reshape(
    2, L
)
gallery["running cell, frame 0"] = cells[0]
gallery["running cell, frame 1"] = cells[1]
variable = jgather.variable_ratio_masking(keys[5], 2, L, schedule="cosine")
for i in range(2):
    gallery[f"cosine schedule, sample {i}"] = np.asarray(variable.mask[i])

fig, axes = plt.subplots(2, 4, figsize=(9, 5.6), layout="constrained")
for ax, (title, m) in zip(axes.ravel(), gallery.items(), strict=True):
    pm = np.kron(m.reshape(G, G), np.ones((P, P)))[..., None]
    ax.imshow(photo / 255 * (1 - 0.75 * pm))
    ax.set_title(f"{title}\n{int(m.sum())} of {L} masked", fontsize=10)
    ax.axis("off")
plt.show()

# %% [markdown]
# Any fixed-count mask feeds the same encoder/decoder plumbing. For example, SimMIM's mask through
# `apply_mask` and back through `unshuffle`:

# %%
simmim = jnp.asarray(gallery["SimMIM, 32 px cells"])[None]
num_keep = int(L - simmim.sum())
triple = jgather.apply_mask(tokens, simmim, num_keep)
back = jgather.unshuffle(triple.x_masked, triple, grey)
print(
    "x_masked",
    triple.x_masked.shape,
    "| mask matches:",
    bool((triple.mask.astype(bool) == simmim).all()),
)
plt.figure(figsize=(3, 3))
plt.imshow(to_image(back))
plt.axis("off")
plt.show()

# %% [markdown]
# ## Per-sample mask ratios in fixed shapes
#
# MAE uses one ratio for the whole batch because `x_masked` needs one static length; MAR draws a
# ratio per sample (from `[0.7, 1.0]`). `jgather.random_masking_per_sample` keeps the shapes
# static with a `capacity` of kept slots: sample `i` keeps `int(L * (1 - r_i))` tokens in the
# first slots of its row and the remaining slots are zeros. `valid` [N, capacity] marks the filled
# slots: pass it to the encoder as its attention mask, so that no token attends to an empty slot.
# `unshuffle` takes the result as it is and puts the mask token at every removed position.
#
# The keys come from the examples' dataset ids (`jgather.example_keys`, a `fold_in` per id), so a
# mask belongs to its example: it stays the same whatever the batch size, the example's position
# in the batch, or the number of devices the batch is sharded over. The ratios are drawn from a
# second base key, so that ratio and shuffle are independent.

# %%
# Per-sample mask ratios in one fixed-shape batch (MAR draws ratios from [0.7, 1.0]).
n, patch = 6, 16
tokens = jgather.patchify(
    jnp.broadcast_to(images, (n, 224, 224, 3)), patch
)  # [6, 196, 768]
L = tokens.shape[1]
ids = jnp.arange(n)  # the examples' dataset ids: each mask belongs to its example
base = jax.random.key(0)
ratio_keys = jgather.example_keys(
    jax.random.fold_in(base, 1), ids
)  # not the masks' keys
ratios = jgather.sample_mask_ratios(ratio_keys, n, low=0.5, high=0.95)
capacity = int(L * (1 - 0.5))  # slots for the lowest ratio: nothing is ever clipped
out = jgather.random_masking_per_sample(
    jgather.example_keys(base, ids), tokens, ratios, capacity=capacity
)
restored = jgather.unshuffle(out.x_masked, out, jnp.full((tokens.shape[-1],), 0.5))
images_back = np.asarray(jgather.unpatchify(restored, patch, 3, grid=(14, 14)))
fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 3.4), height_ratios=[4, 1])
for i in range(n):
    axes[0, i].imshow(np.clip(images_back[i], 0, 1))
    axes[0, i].set_title(
        f"r = {float(ratios[i]):.2f}: {int(out.len_keep[i])} of {L} kept", fontsize=9
    )
    axes[1, i].imshow(
        np.asarray(out.valid[i])[None], aspect="auto", cmap="Greens", vmin=0, vmax=1.0
    )
    axes[1, i].set_title(
        f"valid: {int(out.valid[i].sum())} of {capacity} slots", fontsize=9
    )
for ax in axes.ravel():
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(
    "random_masking_per_sample: one ratio per image, "
    f"x_masked {tuple(out.x_masked.shape)}"
)
plt.show()
