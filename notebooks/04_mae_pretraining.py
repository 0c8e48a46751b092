# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # MAE pretraining on CPU
#
# The earlier notebooks took `random_masking`, `unshuffle`, `patchify` and `mae_loss` apart one
# call at a time. Here they do their real job: the masking path of a masked autoencoder that is
# trained from scratch, the way a research codebase would import jgather.
#
# * **Data**: scikit-learn's bundled handwritten digits (1797 grayscale 8x8 images, no download),
#   scaled to [0, 1], split 80/20 into training and held-out images with a fixed seed.
# * **Tokens**: `jgather.patchify` with 2x2 patches, so every image is 16 tokens of 4 pixels.
# * **Model** (Flax NNX, in the example package `examples/mae_pretraining/`, installed with
#   jgather as `mae_pretraining`): a linear patch embedding
#   plus fixed 2-D sine-cosine positions; `jgather.random_masking` keeps a random subset of the
#   tokens; a small ViT encoder sees only those (plus a cls token added after masking);
#   `jgather.unshuffle` puts a learned mask token back at every removed position, the cls token
#   passing through in front (`num_prefix=1`); a one-block decoder predicts the pixels of every
#   patch, and `jgather.mae_loss` scores the removed ones.
# * **Training**: optax AdamW with warmup and cosine decay. One `jax.jit` holds the whole step
#   (batch sampling, masking, forward, backward, update) over the model's split parameter state;
#   the step's randomness is `jax.random.fold_in(key, step)`, so the run is reproducible from one
#   key.
#
# The full run below takes about a minute on two CPU cores.

# %%
import jax
import mae_pretraining as mp
import matplotlib.pyplot as plt
import numpy as np

import jgather

print(
    "jax",
    jax.__version__,
    "on",
    jax.default_backend(),
    "| jgather",
    jgather.__version__,
)

# %% [markdown]
# ## Data
#
# Each digit is 8x8; 2x2 patches give a 4x4 grid of tokens. At MAE's usual 75% masking only 4 of
# the 16 patches would stay visible, too little of an 8x8 digit to say much about the rest, so
# this run removes half: 8 visible, 8 to reconstruct.

# %%
train_images, heldout_images = mp.load_digits_split(heldout_fraction=0.2, seed=0)
print("train", train_images.shape, "held-out", heldout_images.shape, train_images.dtype)

config = mp.MAEConfig(mask_ratio=0.5)
params = mp.init_model(config)[1]
n_params = sum(x.size for x in jax.tree.leaves(params))
print(config)
print(
    f"{config.num_patches} tokens of {config.patch_dim} values; "
    f"{int(config.num_patches * (1 - config.mask_ratio))} visible per image; "
    f"{n_params:,} parameters"
)

# %% [markdown]
# ## Training
#
# 1000 steps of 128 images (sampled with replacement from the 1438 training digits). The time
# printed includes compiling the step.

# %% tags=["parameters"]
STEPS, BATCH = 1000, 128  # optimizer steps, images per step
STEPS_PER_CALL, ROUNDS = (
    20,
    7,
)  # the throughput comparison below: steps per timed call, rounds

# %%
result = mp.train(
    config, train_images=train_images, steps=STEPS, batch_size=BATCH, lr=3e-3, seed=0
)
history = result.history
print(
    f"{STEPS} steps in {float(history['seconds']):.1f} s; "
    f"all gradients finite: {bool(history['grads_finite'].all())}"
)

window = 25
smooth = np.convolve(history["loss"], np.ones(window) / window, mode="valid")
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(history["step"], history["loss"], alpha=0.5, label="per step")
ax.plot(history["step"][window - 1 :], smooth, label=f"mean of {window}")
ax.set(
    xlabel="step",
    ylabel="train loss (masked patches)",
    yscale="log",
    title="MAE on digits",
)
ax.legend()
plt.show()

# %% [markdown]
# ## Held-out reconstruction loss against two baselines
#
# All three numbers are `jgather.mae_loss` on the held-out digits: the mean squared error per
# pixel over the **removed** patches, with the same masks (four mask draws per image, averaged).
#
# * **patch mean (oracle)**: every removed patch predicted by its own mean pixel value, the
#   best constant for that patch. It peeks at the answer, so it is a demanding bar: its error is
#   only the variation *inside* each patch.
# * **training mean patch**: every removed patch predicted by the average training patch at that
#   position, the best guess that ignores the visible patches.
#
# A model below the second one uses the visible patches; a model below the first one predicts
# the shape inside each hidden patch better than someone who is told the patch's mean.

# %%
scores = mp.evaluate(
    result.graphdef, result.params, heldout_images, train_images=train_images
)
print(f"{'held-out MSE on removed patches':<36}{'':>4}")
print(f"  {'MAE (this run)':<34}{scores['loss']:.4f}")
print(f"  {'baseline: patch mean (oracle)':<34}{scores['patch_mean']:.4f}")
print(f"  {'baseline: training mean patch':<34}{scores['train_mean_patch']:.4f}")
print(
    f"MAE / patch-mean oracle = {scores['loss'] / scores['patch_mean']:.2f}; "
    f"MAE / training-mean patch = {scores['loss'] / scores['train_mean_patch']:.2f}"
)

# %% [markdown]
# ## What the model sees and what it fills in
#
# Eight held-out digits. Row 2 shows what the encoder gets (removed patches blank); row 3 keeps
# the visible patches and pastes the model's prediction into the removed ones; row 4 is the raw
# prediction for every patch. The loss only scores removed patches, so the predictions at visible
# positions are unconstrained and look like noise (MAE's reconstructions show the same).

# %%
shown = heldout_images[:8]
views = mp.reconstruct(result.graphdef, result.params, shown, seed=3)
rows = [
    ("original", views["original"]),
    ("masked", views["masked"]),
    ("reconstruction", views["reconstruction"]),
    ("prediction", views["prediction"]),
]
fig, axes = plt.subplots(
    len(rows), len(shown), figsize=(1.3 * len(shown), 1.4 * len(rows))
)
cmap = plt.get_cmap("gray_r").copy()
cmap.set_bad("#f4c7c3")  # removed patches
for r, (name, imgs) in enumerate(rows):
    for c in range(len(shown)):
        ax = axes[r, c]
        ax.imshow(imgs[c, :, :, 0], cmap=cmap, vmin=0, vmax=1)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[r, 0].set_ylabel(name, fontsize=9)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Throughput: jgather's masking against the straightforward port
#
# The same model, optimizer and starting parameters, with the masking swapped for the
# line-by-line JAX port of MAE's code (`argsort` of uniform noise, `argsort` again for
# `ids_restore`, `take_along_axis` for the kept tokens and for the decoder's unshuffle). Both
# train steps are timed in this process, interleaved round-robin with the repository's
# `mae_pretraining.interleaved` (medians), 20 steps per timed call.
#
# With 16 tokens per image the permutation is a tiny part of a train step, so expect the two to
# be close here: the masking benchmark (`benchmarks/masking.py`, notebook 3) measures the masking
# alone at ViT-B and video sizes, where it matters.

# %%
rates = mp.throughput(
    config,
    train_images=train_images,
    batch_size=BATCH,
    steps_per_call=STEPS_PER_CALL,
    rounds=ROUNDS,
)
print(
    f"train steps/s, batch {BATCH}: jgather {rates['jgather']:.1f} "
    f"| port {rates['port']:.1f} | jgather/port {rates['speedup']:.2f}x"
)

# %% [markdown]
# ## Summary
#
# * jgather's `random_masking`, `unshuffle`, `patchify` and `mae_loss` carry a complete MAE
#   training step under one `jax.jit`, with keys threaded explicitly, and gradients reach the
#   encoder through the masking gather and the unshuffle.
# * After about a minute of CPU training the held-out error on removed patches is printed above
#   next to both baselines; the model is compared with the training-mean patch (which ignores
#   the visible patches) and with the per-patch-mean oracle.
# * At this tiny token count the masking implementation hardly changes the speed of a train
#   step; the gains of jgather's permutation show at realistic sequence lengths (notebook 3).
# * `norm_pix_loss=True` trains through the same code (`MAEConfig(norm_pix_loss=True)`); the test
#   `tests/test_mae_training.py` runs a few steps of both settings.
