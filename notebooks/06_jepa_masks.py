# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # JEPA masks: I-JEPA and V-JEPA on a photograph and a clip
#
# I-JEPA (Assran et al., *Self-Supervised Learning from Images with a Joint-Embedding
# Predictive Architecture*) and V-JEPA (Bardes et al., *Revisiting Feature Prediction for
# Learning Visual Representations from Video*) hide a few large blocks of an image or a clip
# (the *targets*) and train a predictor to guess their representations from what is left (the
# *context*). Their references draw these masks in the data loader's collator, on the host;
# `jgather.multiblock_masking` draws them from a key, with static shapes, inside the jitted
# step. This notebook draws both on the photograph bundled with jgather and on a short clip
# made from it, then feeds the context/target split to a tiny predictor in a jitted step.

# %%
import importlib.resources

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

import jgather

with (importlib.resources.files("jgather") / "data" / "chelsea_224.npy").open(
    "rb"
) as f:
    photo = np.load(f)  # uint8 [224, 224, 3]; CC0, see jgather/data/NOTICE.md
P = 16  # 16-pixel patches: a 14 x 14 token grid
G = 224 // P

# %% [markdown]
# ## I-JEPA: four targets and a context
#
# The ViT-H/14 setup: 4 target blocks at 15-20 % of the image, aspect ratio 0.75-1.5, all of
# one size per batch (one uniform draw sets both scale and aspect ratio), and one context block
# at 85-100 % with the targets cut out. Corners are drawn from `randint(0, H - h)`, so no block
# reaches the last row or column.

# %%
key = jax.random.key(0)
out = jgather.multiblock_masking(key, 1, (G, G), preset="ijepa")
print(
    "context tokens:",
    int(out.context_valid.sum()),
    "of capacity",
    out.context_ids.shape[1],
)
print(
    "target tokens:",
    out.target_valid.sum(-1)[0].tolist(),
    "capacity",
    out.target_ids.shape[2],
)


def show(ax, image, context, boxes, title):
    """The image, darkened outside the context, with each target block outlined."""
    shade = np.where(
        np.repeat(np.repeat(context.reshape(G, G), P, 0), P, 1)[..., None], 1, 0.35
    )
    ax.imshow((image * shade).astype(np.uint8))
    colors = plt.cm.tab10.colors
    for i, b in enumerate(boxes):
        top, left, h, w = (int(v) * P for v in b)
        ax.add_patch(Rectangle((left, top), w, h, fill=False, lw=2, ec=colors[i % 10]))
    ax.set_title(title, fontsize=9)
    ax.axis("off")


fig, axes = plt.subplots(1, 3, figsize=(9, 3))
for ax, k in zip(axes, range(3), strict=True):
    o = jgather.multiblock_masking(jax.random.key(k), 1, (G, G))
    show(
        ax,
        photo,
        np.asarray(o.context_mask[0]),
        np.asarray(o.target_boxes[0, :, 0]),
        f"key {k}",
    )
plt.suptitle("I-JEPA: context bright, targets outlined", fontsize=10)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## V-JEPA on a clip
#
# A short clip: 8 frames panning across the photograph, in tubelets of 2 frames, so a
# `(4, 14, 14)` token grid. V-JEPA draws two configurations per clip, 8 blocks at 15 % of each
# frame (`preset="vjepa"`) and 2 blocks at 70 % (`preset="vjepa_long"`), each spanning every
# frame; the target is the union of the blocks and the context the rest. Corners come from
# `randint(0, H - h + 1)`: here a block may touch the far edge. The reference seeds both
# configurations' size draws from the same iteration counter, so both take their block sizes
# from the same uniforms (both tall, or both wide): one `size_key` for the two calls gives
# that, a different `key` each gives independent positions.

# %%
shift = np.arange(8) * 4
padded = np.pad(photo, ((0, 0), (0, 32), (0, 0)), mode="edge")
clip = np.stack([padded[:, s : s + 224] for s in shift])  # [T=8, 224, 224, 3]
grid = (4, G, G)
fig, axes = plt.subplots(2, 4, figsize=(10, 5))
size_key, k_short, k_long = jax.random.split(jax.random.key(1), 3)
draws = {
    preset: jgather.multiblock_masking(k, 8, grid, preset=preset, size_key=size_key)
    for preset, k in (("vjepa", k_short), ("vjepa_long", k_long))
}
for preset, o in draws.items():
    print(preset, "block (t, h, w):", o.target_boxes[0, 0, 0, 3:].tolist())
for row, (preset, o) in enumerate(draws.items()):
    context = np.asarray(o.context_mask[0]).reshape(4, G * G)
    for t in range(4):
        show(axes[row, t], clip[2 * t], context[t], [], f"{preset}, tubelet {t}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Index sets, padded or cut to the batch's shortest
#
# The references turn every mask into a list of token indices and cut all lists of a batch to
# the shortest (`cm[:min_keep]`), which drops the bottom-right tokens of the larger ones. By
# default jgather pads them to a static capacity instead and marks the real entries in
# `valid`, so the encoder sees every context token: with I-JEPA's preset on this grid at
# batch size 256, about 82 context tokens per image against the collator's 48.
# `truncate="batch_min"` reproduces the cut (eagerly: its length depends on the draw);
# `truncate="batch_min_valid"` keeps the same tokens in the padded shapes, marking the
# others invalid, and runs under `jax.jit`.

# %%
padded_sets = draws["vjepa"]
cut = jgather.multiblock_masking(
    k_short, 8, grid, preset="vjepa", size_key=size_key, truncate="batch_min"
)
print("context counts:", padded_sets.context_valid.sum(-1).tolist())
print("padded:", padded_sets.context_ids.shape, " batch_min:", cut.context_ids.shape)

# %% [markdown]
# ## A predictor step, masks drawn inside `jax.jit`
#
# A toy JEPA step: a frozen linear "encoder" embeds the patches; the context tokens are
# gathered with `apply_masks` (the references' function), the predictor (a linear map of the
# mean context token plus a positional embedding of each target position) predicts the target
# tokens, and the loss averages over the valid target slots only. The masks are drawn from
# `fold_in(key, step)` inside the compiled step, cut to the batch's shortest sets as the
# reference's (`truncate="batch_min_valid"`): no collator.

# %%
D = 32
tokens = jgather.patchify(
    jnp.asarray(photo, jnp.float32)[None] / 255.0, P
)  # [1, 196, 768]
tokens = jnp.repeat(tokens, 4, axis=0)  # a batch of 4 (the same image)
encoder = jax.random.normal(jax.random.key(1), (tokens.shape[-1], D)) / 28.0
params = {
    "w": jnp.zeros((D, D)),
    "pos": jax.random.normal(jax.random.key(2), (G * G, D)) * 0.02,
}


@jax.jit
def step(params, step_key):
    masks = jgather.multiblock_masking(  # drawn on device
        step_key, 4, (G, G), truncate="batch_min_valid"
    )
    h = tokens @ encoder  # [N, L, D], the target encoder's output (frozen here)
    # target_ids is [N, M, Kt]; the rows come out mask-major, [M * N, Kt, D]
    targets = jgather.apply_masks(h, masks.target_ids, layout="NMK")
    target_ids = jnp.swapaxes(masks.target_ids, 0, 1)  # [M, N, Kt], the rows' order
    valid = jnp.swapaxes(masks.target_valid, 0, 1).reshape(-1, target_ids.shape[-1])

    def loss_fn(params):
        ctx = jgather.apply_masks(h, masks.context_ids)  # [N, Kc, D]: one set
        cv = masks.context_valid[..., None]
        summary = (ctx * cv).sum(1) / cv.sum(1)  # the mean context token of each image
        pred = (
            jnp.tile(summary @ params["w"], (4, 1))[:, None]
            + params["pos"][target_ids.reshape(-1, target_ids.shape[-1])]
        )
        err = ((pred - targets) ** 2).mean(-1)
        return (err * valid).sum() / valid.sum()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    return jax.tree.map(lambda p, g: p - 0.5 * g, params, grads), loss


base = jax.random.key(3)
losses = []
for i in range(60):
    params, loss = step(params, jax.random.fold_in(base, i))
    losses.append(float(loss))
print(f"loss: step 0 {losses[0]:.4f} -> step 59 {losses[-1]:.4f}")
plt.figure(figsize=(4, 2.5))
plt.plot(losses)
plt.xlabel("step")
plt.ylabel("masked loss")
plt.tight_layout()
plt.show()

# %% [markdown]
# `unapply_masks` puts the predictor's rows back at their token positions (zeros elsewhere), for
# a picture of the predictions or a loss written over the full sequence:

# %%
masks = jgather.multiblock_masking(jax.random.key(4), 1, (G, G))
rows = jgather.apply_masks(tokens[:1], masks.target_ids, layout="NMK")
back = jgather.unapply_masks(
    rows, masks.target_ids, G * G, valid=masks.target_valid, layout="NMK"
)
print(back.shape)  # [M * N, L, 768] with N = 1
same = (back != 0).any(-1) == jnp.swapaxes(masks.target_masks, 0, 1).reshape(-1, G * G)
print(bool(same.all()))
