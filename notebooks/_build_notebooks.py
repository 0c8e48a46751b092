"""Writes the exploration notebooks (and, with --execute, runs them and saves their outputs).

The notebooks are kept as plain Python here so that they review as code and diff cleanly;
the .ipynb files next to this script are generated from it:

    python notebooks/_build_notebooks.py            # write the .ipynb files, no outputs
    python notebooks/_build_notebooks.py --execute  # write, run top to bottom, save outputs

Execution uses a fresh kernel per notebook with notebooks/ as the working directory, the same
way tests/test_notebooks.py runs them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# =============================================================================================
# 01 gather explained
# =============================================================================================

GATHER = [
    md("""
# 01 · `gather`, forwards and backwards

`torch.gather(input, dim, index)` collects values from `input` along one axis. This notebook reads
it two ways, following the worked example that motivated jgather:

1. **forwards** — for a given output cell, which input cell does it copy?
2. **backwards** — given an input and an output, which `dim` and `index` produce it?

It then lists where `torch.gather` and `jnp.take_along_axis` part ways, and shows that the
gradient of a gather is a scatter-add (the two are adjoint linear maps).
"""),
    code("""
import itertools
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from jax.experimental import checkify
from matplotlib.patches import ConnectionPatch, Rectangle

import jgather

try:  # torch is optional: only used to show that the numbers agree
    import torch
except ImportError:
    torch = None
print("jax", jax.__version__, "| torch", torch.__version__ if torch else "not installed")
"""),
    md("""
## The example

A `2 × 3 × 4` input, and an index that picks row 0 and then row 2 of every `3 × 4` slice.
The output takes the *index's* shape, `2 × 2 × 4`.
"""),
    code("""
x = jnp.arange(24).reshape(2, 3, 4)
index = jnp.array([[[0, 0, 0, 0], [2, 2, 2, 2]],
                   [[0, 0, 0, 0], [2, 2, 2, 2]]])
out = jgather.gather(x, 1, index)
print("input:", x, "", "out = gather(input, dim=1, index):", out, sep="\\n")
"""),
    md("""
## Forwards: one cell at a time

Take an output position `[i, j, k]`. Without `dim`, the natural guess would be `input[i, j, k]`;
gather instead **replaces the coordinate along `dim` by the index value stored at that
position**. With `dim=1`, `out[i][j][k] = input[i][index[i][j][k]][k]`.
`jgather.explain` prints this substitution for any cell:
"""),
    code("""
print(jgather.explain(x, 1, index, (0, 1, 0)))
"""),
    code("""
for position in itertools.product(*map(range, out.shape)):
    print(jgather.explain(x, 1, index, position))
"""),
    md("""
The same rule for the other axes, side by side (`dim=0` swaps the first coordinate, `dim=2` the
last). Here the index reads the 3 × 4 slices in reverse order (`dim=0`) and reverses each row
(`dim=2`):
"""),
    code("""
flip_slices = jnp.broadcast_to(jnp.array([1, 0])[:, None, None], (2, 3, 4))
print(jgather.explain(x, 0, flip_slices, (0, 2, 3)))
reverse_rows = jnp.broadcast_to(jnp.arange(3, -1, -1), (2, 3, 4))
print(jgather.explain(x, 2, reverse_rows, (1, 0, 0)))
"""),
    md("""
### A picture

Each arrow starts at an output cell and ends at the input cell it copies; its colour is the index
value. Input cells nobody reads are left white.
"""),
    code("""
def draw_gather(x, dim, index, title):
    \"\"\"Arrows from every cell of gather(x, dim, index) to the input cell it reads (3-D only).\"\"\"
    x, index = np.asarray(x), np.asarray(index)
    out = np.asarray(jgather.gather(x, dim, index))
    rows = max(x.shape[0], out.shape[0])
    height = max(x.shape[1], out.shape[1])
    width = max(x.shape[2], out.shape[2])
    fig, axes = plt.subplots(rows, 2, figsize=(7, 1.9 * rows), squeeze=False)
    colour = plt.get_cmap("tab10")
    read = np.zeros(x.shape, bool)
    sources = {}
    for pos in np.ndindex(*index.shape):
        src = list(pos)
        src[dim] = int(index[pos])
        sources[pos] = tuple(src)
        read[tuple(src)] = True
    for column, (array, name) in enumerate(((x, "input"), (out, "out"))):
        for i in range(rows):
            ax = axes[i, column]
            ax.set_xlim(-0.55, width - 0.45)
            ax.set_ylim(height - 0.45, -0.55)
            ax.set_aspect("equal")
            ax.axis("off")
            if i >= array.shape[0]:
                continue
            ax.set_title(f"{name}[{i}]", fontsize=10)
            for j, k in np.ndindex(*array.shape[1:]):
                shade = "#dbe9f6" if column == 1 or read[i, j, k] else "white"
                ax.add_patch(Rectangle((k - 0.5, j - 0.5), 1, 1, facecolor=shade, edgecolor="0.3"))
                ax.text(k, j, str(array[i, j, k]), ha="center", va="center", fontsize=9)
    for (i, j, k), (si, sj, sk) in sources.items():
        # Arrows leave from just below each number and bend by column, so they stay apart.
        arrow = ConnectionPatch(
            xyA=(k, j + 0.3), coordsA=axes[i, 1].transData,
            xyB=(sk, sj + 0.3), coordsB=axes[si, 0].transData,
            arrowstyle="->", color=colour(int(index[i, j, k]) % 10), alpha=0.6, lw=1.2,
            connectionstyle=f"arc3,rad={-0.08 - 0.05 * k}",
        )
        fig.add_artist(arrow)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


draw_gather(x, 1, index, "gather(input, dim=1, index): row j of out[i] copies row index[i, j, :] of input[i]")
plt.show()
"""),
    code("""
draw_gather(x, 2, jnp.array([[[3, 0], [1, 1], [2, 0]], [[0, 3], [3, 2], [1, 1]]]),
            "dim=2: each cell picks a column of its own row (an index may repeat)")
plt.show()
"""),
    md("""
## Backwards: from input and output to `dim` and `index`

Reading the example backwards: `out[0, 0, :]` equals `input[0, 0, :]`, so the first row says
nothing yet. At `out[0, 1, 0] = 8` the value sits at `input[0, 2, 0]`: only the coordinate along
axis 1 changed (1 → 2), so `dim = 1` and `index[0, 1, 0] = 2`. Doing that for every cell rebuilds
the whole index.

`jgather.infer_gather` automates the search. For every candidate `dim` it looks up each output
value in the input fibre through that cell along `dim`, and returns every `(dim, index)` that
works — all of them, because more than one can.
"""),
    code("""
for dim, found in jgather.infer_gather(x, out):
    print(f"dim={dim}\\nindex=\\n{found}")
    assert (jgather.gather(x, dim, found) == out).all()
"""),
    md("""
The same question for MAE's masking, which gathers the kept patch tokens of a sequence:
`x = arange(64).reshape(1, 16, 4)` is a sequence of 16 "patches" of 4 values, and the encoder
received the four rows below. Which patches were kept?
"""),
    code("""
tokens = jnp.arange(64).reshape(1, 16, 4)
x_masked = jnp.array([[[40, 41, 42, 43], [48, 49, 50, 51], [16, 17, 18, 19], [52, 53, 54, 55]]])
((dim, found),) = jgather.infer_gather(tokens, x_masked)
print("dim =", dim, "| kept patches:", found[0, :, 0].tolist())
print(found)
"""),
    md("""
When values repeat, several answers are possible. Here both axes explain the output, and within
a fibre the **first** matching position is returned:
"""),
    code("""
a = jnp.array([[1, 2, 2], [2, 1, 1]])
b = jnp.array([[2, 1], [1, 2]])
for dim, found in jgather.infer_gather(a, b):
    print(f"dim={dim}: index={found.tolist()}")
"""),
    md("And when no gather can produce the output, the error says why for each axis:"),
    code("""
try:
    jgather.infer_gather(x, out + 100)
except ValueError as err:
    print("ValueError:", err)
"""),
    md("""
The search is vectorised — a handful of sampled cells rules out most wrong axes at once, and each
remaining axis costs one sort of every fibre merged with the values looked up in it — so it stays
interactive on arrays of a million elements:
"""),
    code("""
rng = np.random.default_rng(0)
big = rng.standard_normal((1000, 1000)).astype(np.float32)
big_index = rng.integers(0, 1000, big.shape)
big_out = np.take_along_axis(big, big_index, axis=1)
start = time.perf_counter()
solutions = jgather.infer_gather(big, big_out)
print(f"{big.size:,} elements: {time.perf_counter() - start:.2f} s; dims found: {[d for d, _ in solutions]}")
# Float values can repeat within a row, where the first match may differ from big_index;
# what must hold is that the recovered index reproduces the output.
assert (np.take_along_axis(big, np.asarray(solutions[0][1]), axis=1) == big_out).all()
"""),
    md("""
## `torch.gather` is not `jnp.take_along_axis`

They agree whenever `index` and `input` have the same shape except along `dim` and every index is
in range — the common case. They differ at the edges, and those edges are where ports break
silently. `jgather.gather` follows torch.

**1. Smaller index off `dim`.** torch only requires `index.size(d) <= input.size(d)` for
`d != dim`, and reads the leading block of `input`. `take_along_axis` demands broadcast-compatible
shapes.
"""),
    code("""
m = jnp.arange(12).reshape(3, 4)
corner = jnp.array([[3, 0], [2, 1]])  # 2 x 2 index into a 3 x 4 input, dim=1
print("jgather.gather:\\n", jgather.gather(m, 1, corner))
if torch is not None:
    print("torch.gather:\\n", torch.gather(torch.arange(12).reshape(3, 4), 1, torch.tensor(np.asarray(corner))))
try:
    jnp.take_along_axis(m, corner, axis=1)
except ValueError as err:
    print("take_along_axis: ValueError:", err)
"""),
    md("""
**2. Broadcasting.** An index with a size-1 axis is *broadcast* by `take_along_axis`, but taken
literally by torch (one row out):
"""),
    code("""
one_row = jnp.array([[2, 0, 1]])  # shape [1, 3]
print("take_along_axis:", jnp.take_along_axis(m, one_row, axis=1).shape, "(broadcast to every row)")
print("jgather.gather: ", jgather.gather(m, 1, one_row).shape, jgather.gather(m, 1, one_row).tolist())
if torch is not None:
    print("torch.gather:   ", tuple(torch.gather(torch.arange(12).reshape(3, 4), 1, torch.tensor([[2, 0, 1]])).shape))
"""),
    md("""
**3. Out-of-range and negative indices.** torch raises. `take_along_axis` wraps negative indices
(NumPy style) and *fills* out-of-range ones with NaN (or the smallest integer) without a word.
`jgather.gather` raises like torch when the index is concrete; under `jit` values cannot raise,
so it fills and `checkify` reports the bad index. `mode='clip'` and `mode='fill'` choose a
behaviour explicitly.
"""),
    code("""
mf = m.astype(jnp.float32)
bad = jnp.array([[0, 5], [0, -1], [0, 1]])
print("take_along_axis:\\n", jnp.take_along_axis(mf, bad, axis=1))
for label, call in [
    ("torch.gather", lambda: torch.gather(torch.tensor(np.asarray(mf)), 1, torch.tensor(np.asarray(bad)))),
    ("jgather.gather", lambda: jgather.gather(mf, 1, bad)),
]:
    if label.startswith("torch") and torch is None:
        continue
    try:
        call()
    except (IndexError, RuntimeError) as err:
        print(f"{label}: {type(err).__name__}: {str(err).splitlines()[0]}")
print("jgather.gather(mode='clip'):\\n", jgather.gather(mf, 1, bad, mode="clip"))
jitted = jax.jit(lambda t, i: jgather.gather(t, 1, i))
error, result = checkify.checkify(jitted, errors=checkify.index_checks)(mf, bad)
print("under jit:\\n", result)
print("checkify:", error.get().splitlines()[0])
"""),
    md("""
**4. Index dtype.** torch insists on int64 indices; JAX is happy with int32, its default (and the
cheaper choice on accelerators).
"""),
    md("""
## Scatter is gather's adjoint

A gather is linear in `input`: `gather(·, dim, index)` is a matrix `G` with one 1 per row. Its
transpose `Gᵀ` sends each output cell's value back to the input cell it was read from, **adding**
where several output cells read the same input cell — that is `scatter_add` into zeros. Reverse-mode
autodiff computes exactly `Gᵀ g` for a cotangent `g`, so the gradient of a gather is a scatter-add.

Check it numerically, with an index that reads some cells several times:
"""),
    code("""
xf = jnp.arange(24, dtype=jnp.float32).reshape(2, 3, 4)
repeat_index = jnp.array([[[0, 0, 1, 2], [0, 2, 2, 2]], [[1, 1, 1, 1], [0, 0, 2, 0]]])
g = jax.random.normal(jax.random.key(0), repeat_index.shape)

_, pullback = jax.vjp(lambda t: jgather.gather(t, 1, repeat_index), xf)
(grad_x,) = pullback(g)
via_scatter = jgather.scatter_add(jnp.zeros_like(xf), 1, repeat_index, g)
print("vjp(gather) == scatter_add(zeros, dim, index, g):", bool(jnp.allclose(grad_x, via_scatter)))

# The defining identity of an adjoint: <G y, g> = <y, Gᵀ g> for any y.
y = jax.random.normal(jax.random.key(1), xf.shape)
lhs = jnp.vdot(jgather.gather(y, 1, repeat_index), g)
rhs = jnp.vdot(y, via_scatter)
print(f"<gather(y), g> = {float(lhs):.6f}   <y, scatter_add(g)> = {float(rhs):.6f}")

if torch is not None:
    xt = torch.tensor(np.asarray(xf), requires_grad=True)
    torch.gather(xt, 1, torch.tensor(np.asarray(repeat_index))).backward(torch.tensor(np.asarray(g)))
    print("torch's gradient agrees:", np.allclose(xt.grad.numpy(), np.asarray(grad_x), atol=1e-6))
"""),
    md("""
With a cotangent of ones the gradient simply counts how often each input cell is read:
"""),
    code("""
(counts,) = pullback(jnp.ones_like(g))
print(counts.astype(int))
"""),
    md("And the compiled backward pass is indeed one `scatter-add`:"),
    code("""
print(jax.make_jaxpr(pullback)(g).pretty_print(use_color=False))
"""),
]


# =============================================================================================
# 02 MAE masking
# =============================================================================================

MASKING = [
    md("""
# 02 · MAE masking on a photograph

MAE (He et al., *Masked Autoencoders Are Scalable Vision Learners*) hides 75 % of an image's
patch tokens and trains an encoder on the rest. Its `random_masking` is a per-sample random
permutation built from `argsort` of uniform noise, and a `gather`. This notebook runs it step by
step on the photograph bundled with jgather, checks each step against `jgather.random_masking`,
puts the tokens back with `unshuffle`, and closes with a gallery of the masking family.
"""),
    code("""
import importlib.resources

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import jgather

with (importlib.resources.files("jgather") / "data" / "chelsea_224.npy").open("rb") as f:
    photo = np.load(f)  # uint8 [224, 224, 3]; CC0, see jgather/data/NOTICE.md
print(photo.shape, photo.dtype)
plt.figure(figsize=(3, 3))
plt.imshow(photo)
plt.axis("off")
plt.show()
"""),
    md("""
## Tokens

With 16-pixel patches the 224 × 224 image becomes a 14 × 14 grid, i.e. a sequence of
`L = 196` tokens of `D = 16 · 16 · 3 = 768` values each (MAE's layout: pixels of a patch in
`(row, column, channel)` order, tokens row-major).
"""),
    code("""
P = 16
images = jnp.asarray(photo, jnp.float32)[None] / 255.0  # NHWC, [1, 224, 224, 3]
tokens = jgather.patchify(images, P)
N, L, D = tokens.shape
G = 224 // P
print(f"tokens: [N, L, D] = {tokens.shape}")
"""),
    md("""
## Random masking, one step at a time

1. **noise** — one uniform number per token;
2. **ids_shuffle** = `argsort(noise)`: tokens ordered by their noise, smallest first;
3. **ids_keep** = the first `len_keep = int(L * (1 - mask_ratio))` of them;
4. **x_masked** = `gather` of the kept tokens, in shuffled order — what the encoder sees;
5. **ids_restore** = `argsort(ids_shuffle)`, the inverse permutation;
6. **mask** — 0 for the first `len_keep` shuffled positions, 1 for the rest, put back in the
   original token order by gathering with `ids_restore`.
"""),
    code("""
mask_ratio = 0.75
key = jax.random.key(0)
noise = jax.random.uniform(key, (N, L))
ids_shuffle = jnp.argsort(noise, axis=1)
ids_restore = jnp.argsort(ids_shuffle, axis=1)
len_keep = int(L * (1 - mask_ratio))
ids_keep = ids_shuffle[:, :len_keep]
x_masked = jgather.gather(tokens, 1, jnp.broadcast_to(ids_keep[..., None], (N, len_keep, D)))
mask = jgather.gather(jnp.arange(L)[None] >= len_keep, 1, ids_restore).astype(jnp.float32)
print(f"len_keep = {len_keep}, x_masked {x_masked.shape}, mask {mask.shape} with {int(mask.sum())} ones")
print("first kept token ids:", ids_keep[0, :10].tolist())
"""),
    code("""
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
panels = [
    (noise[0], "noise", "viridis"),
    (ids_restore[0], "rank of each token in ids_shuffle\\n(= ids_restore)", "magma"),
    (ids_restore[0] < len_keep, f"kept: rank < len_keep = {len_keep}", "gray"),
    (mask[0], "mask (1 = removed)", "gray_r"),
]
for ax, (values, title, cmap) in zip(axes, panels, strict=True):
    im = ax.imshow(np.asarray(values).reshape(G, G), cmap=cmap)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    fig.colorbar(im, ax=ax, fraction=0.046)
plt.show()
"""),
    md("""
`jgather.random_masking` does all of this in one jit-compiled call. Given the same noise, its
three outputs are identical to the step-by-step ones:
"""),
    code("""
result = jgather.random_masking(key, tokens, mask_ratio, noise=noise)
print("x_masked equal:   ", bool((result.x_masked == x_masked).all()))
print("mask equal:       ", bool((result.mask == mask).all()))
print("ids_restore equal:", bool((result.ids_restore == ids_restore).all()))
"""),
    md("""
## What the encoder sees, and putting tokens back

`x_masked` is a short sequence of 49 tokens in shuffled order. The decoder appends a mask token
for each of the 147 removed positions and *unshuffles* with `ids_restore` — a second gather — so
every token returns to its place. Here the mask token is a flat grey patch. `unshuffle` takes
the whole masking result in place of `ids_restore`: it records how many prefix (cls) tokens
lead `x_masked` and how many tokens were kept, so a cls token prepended without
`num_prefix=1` is an error rather than a silently shifted sequence.
"""),
    code("""
def to_image(seq):
    return np.asarray(jnp.clip(jgather.unpatchify(seq, P, 3)[0], 0, 1))

grey = jnp.full((D,), 0.5)
restored = jgather.unshuffle(result.x_masked, result, grey)  # the result in place of ids_restore
visible_strip = np.asarray(result.x_masked[0]).reshape(7, 7, P, P, 3).transpose(0, 2, 1, 3, 4).reshape(7 * P, 7 * P, 3)
pixel_mask = np.kron(np.asarray(result.mask[0]).reshape(G, G), np.ones((P, P)))[..., None]

fig, axes = plt.subplots(1, 4, figsize=(13, 3.8), layout="constrained")
for ax, image, title in zip(
    axes,
    [photo / 255, photo / 255 * (1 - 0.7 * pixel_mask), visible_strip, to_image(restored)],
    ["original", "masked (removed: dimmed)", "x_masked: 49 tokens,\\nencoder order", "unshuffle(x_masked,\\nresult, grey)"],
    strict=True,
):
    ax.imshow(image)
    ax.set_title(title, fontsize=10)
    ax.axis("off")
plt.show()

kept = np.asarray(result.mask[0]) == 0
same = np.asarray(restored[0])[kept] == np.asarray(tokens[0])[kept]
print("kept tokens are restored exactly:", bool(same.all()))
"""),
    md("""
Removing tokens and restoring them are both gathers, so the whole round trip is differentiable:
the gradient reaches exactly the kept tokens.
"""),
    code("""
def loss(t):
    out = jgather.random_masking(key, t, mask_ratio, noise=noise)
    return jgather.unshuffle(out.x_masked, out, grey).sum()

touched = (jax.grad(loss)(tokens)[0] != 0).any(axis=-1)
print("gradient is nonzero exactly on kept tokens:", bool((touched == kept).all()))
"""),
    md("""
## The family

Later methods changed *which* tokens to hide. Each is a jit-compiled function of an explicit key
returning a boolean mask `[N, L]` (True = masked); `jgather.apply_mask` turns a fixed-count mask
into the same `(x_masked, mask, ids_restore)` triple that `unshuffle` takes.

* **random** (MAE): uniform, per sample;
* **tube** (VideoMAE): one spatial mask for all frames of a clip (for a still, every frame looks alike);
* **running cell** (VideoMAE V2): which half of every 2 × 2 cell is hidden changes from frame to frame;
* **block** (BEiT): unions of random rectangles;
* **SimMIM**: random cells of a coarser grid, upsampled to the token grid;
* **variable ratio** (MaskGIT): a per-sample masked count from a schedule, e.g. cosine.
"""),
    code("""
keys = jax.random.split(jax.random.key(7), 8)
gallery = {
    "random (MAE)": np.asarray(jgather.random_masking(keys[0], tokens, 0.75).mask[0]).astype(bool),
    "tube, frame 0": np.asarray(jgather.tube_masking(keys[1], 1, (2, G, G), 0.75)).reshape(2, L)[0],
    "block (BEiT)": np.asarray(jgather.block_masking(keys[2], 1, (G, G), 98)[0]),
    "SimMIM, 32 px cells": np.asarray(jgather.simmim_masking(keys[3], 1, 224, mask_patch_size=32, model_patch_size=P, mask_ratio=0.6)[0]),
}
cells = np.asarray(jgather.running_cell_masking(keys[4], 1, (2, G, G), 0.5)).reshape(2, L)
gallery["running cell, frame 0"] = cells[0]
gallery["running cell, frame 1"] = cells[1]
variable = jgather.variable_ratio_masking(keys[5], 2, L, schedule="cosine")
for i in range(2):
    gallery[f"cosine schedule, sample {i}"] = np.asarray(variable.mask[i])

fig, axes = plt.subplots(2, 4, figsize=(13, 7.6), layout="constrained")
for ax, (title, m) in zip(axes.ravel(), gallery.items(), strict=True):
    pm = np.kron(m.reshape(G, G), np.ones((P, P)))[..., None]
    ax.imshow(photo / 255 * (1 - 0.75 * pm))
    ax.set_title(f"{title}\\n{int(m.sum())} of {L} masked", fontsize=10)
    ax.axis("off")
plt.show()
"""),
    md("""
Any fixed-count mask feeds the same encoder/decoder plumbing. For example, SimMIM's mask through
`apply_mask` and back through `unshuffle`:
"""),
    code("""
simmim = jnp.asarray(gallery["SimMIM, 32 px cells"])[None]
num_keep = int(L - simmim.sum())
triple = jgather.apply_mask(tokens, simmim, num_keep)
back = jgather.unshuffle(triple.x_masked, triple, grey)
print("x_masked", triple.x_masked.shape, "| mask matches:", bool((triple.mask.astype(bool) == simmim).all()))
plt.figure(figsize=(3, 3))
plt.imshow(to_image(back))
plt.axis("off")
plt.show()
"""),
    md("""
## Per-sample mask ratios in fixed shapes

MAE uses one ratio for the whole batch because `x_masked` needs one static length; MAR draws a
ratio per sample (from `[0.7, 1.0]`). `jgather.random_masking_per_sample` keeps the shapes
static with a `capacity` of kept slots: sample `i` keeps `int(L * (1 - r_i))` tokens in the
first slots of its row and the remaining slots are zeros. `valid` [N, capacity] marks the filled
slots: pass it to the encoder as its attention mask, so that no token attends to an empty slot.
`unshuffle` takes the result as it is and puts the mask token at every removed position.

The keys come from the examples' dataset ids (`jgather.example_keys`, a `fold_in` per id), so a
mask belongs to its example: it stays the same whatever the batch size, the example's position
in the batch, or the number of devices the batch is sharded over. The ratios are drawn from a
second base key, so that ratio and shuffle are independent.
"""),
    code("""
# Per-sample mask ratios in one fixed-shape batch (MAR draws ratios from [0.7, 1.0]).
n, patch = 6, 16
tokens = jgather.patchify(jnp.broadcast_to(images, (n, 224, 224, 3)), patch)  # [6, 196, 768]
L = tokens.shape[1]
ids = jnp.arange(n)  # the examples' dataset ids: each mask belongs to its example
base = jax.random.key(0)
ratio_keys = jgather.example_keys(jax.random.fold_in(base, 1), ids)  # not the masks' keys
ratios = jgather.sample_mask_ratios(ratio_keys, n, low=0.5, high=0.95)
capacity = int(L * (1 - 0.5))  # slots for the lowest ratio: nothing is ever clipped
out = jgather.random_masking_per_sample(jgather.example_keys(base, ids), tokens, ratios, capacity=capacity)
restored = jgather.unshuffle(out.x_masked, out, jnp.full((tokens.shape[-1],), 0.5))
images_back = np.asarray(jgather.unpatchify(restored, patch, 3, grid=(14, 14)))
fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 3.4), height_ratios=[4, 1])
for i in range(n):
    axes[0, i].imshow(np.clip(images_back[i], 0, 1))
    axes[0, i].set_title(f"r = {float(ratios[i]):.2f}: {int(out.len_keep[i])} of {L} kept", fontsize=8)
    axes[1, i].imshow(np.asarray(out.valid[i])[None], aspect="auto", cmap="Greens", vmin=0, vmax=1.3)
    axes[1, i].set_title(f"valid: {int(out.valid[i].sum())} of {capacity} slots", fontsize=8)
for ax in axes.ravel():
    ax.set_xticks([]); ax.set_yticks([])
fig.suptitle(f"random_masking_per_sample: one ratio per image, x_masked {tuple(out.x_masked.shape)}")
plt.show()
"""),
]


# =============================================================================================
# 03 performance
# =============================================================================================

PERFORMANCE = [
    md("""
# 03 · Performance

Plots of the benchmark results stored in `benchmarks/results/`. Nothing is timed here: the numbers
come from the JSON files that the benchmark scripts write (same process, interleaved rounds,
medians; see `benchmarks/_timing.py`). If a file is missing, the notebook says so and skips its
plots; regenerate the files with the benchmark scripts and re-run this notebook.

* **speedup vs torch** = torch's median time / jgather's (above 1: jgather is faster);
* **ratio to the copy floor** = jgather's median / the time of a plain copy of the kept tokens
  (1.0 would mean masking costs no more than moving its output).
"""),
    code("""
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

# JGATHER_RESULTS points the notebook at another results folder (the test suite uses it to
# exercise the plots on a synthetic file); by default, the repository's benchmarks/results/.
RESULTS = Path(os.environ.get("JGATHER_RESULTS", Path("..") / "benchmarks" / "results"))


def load(name):
    path = RESULTS / name
    if not path.exists():
        print(
            f"MISSING: {path} does not exist yet. Write it with `python -m benchmarks.{path.stem}` "
            "from the repository root, then re-run this notebook."
        )
        return None
    data = json.loads(path.read_text())
    meta = data.get("meta", {})
    print(f"{path}: {len(data.get('cases', []))} cases; " + ", ".join(f"{k}={v}" for k, v in meta.items()))
    return data


def log_ticks(axis, ticks, label):
    # Readable ticks on a log axis: only the given values, formatted by `label`.
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    axis.set_minor_locator(NullLocator())


def ratio_ticks(values):
    # Powers of two that span the values and 1.
    lo = np.floor(np.log2(min(values.min(), 1.0)))
    hi = np.ceil(np.log2(max(values.max(), 1.0)))
    return [2.0**e for e in np.arange(lo, hi + 1)]


ops = load("ops.json")
masking = load("masking.json")
"""),
    md("## Core ops vs torch"),
    code("""
def speedup_bars(data, title):
    cases = [c for c in data["cases"] if c.get("speedup_vs_torch") is not None]
    if not cases:
        print(f"{title}: no case has a torch timing")
        return
    labels = [f"{c['op']}: {c['case']}" for c in cases]
    values = np.array([c["speedup_vs_torch"] for c in cases], float)
    _, ax = plt.subplots(figsize=(8, 0.35 * len(cases) + 1.2))
    # Bars grow from 1x: right (green) where jgather is faster, left (red) where slower.
    ax.barh(labels, values - 1.0, left=1.0, color=np.where(values >= 1, "tab:green", "tab:red"))
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ticks = ratio_ticks(values)
    log_ticks(ax.xaxis, ticks, lambda v: f"{v:g}x")
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_xlabel("speedup vs torch (median_s[torch] / median_s[jgather], log scale)")
    ax.invert_yaxis()
    ax.set_title(title)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}x", va="center", fontsize=8)
    plt.tight_layout()
    plt.show()


if ops is None:
    print("skipped: ops.json is missing")
else:
    speedup_bars(ops, "gather / scatter ops")
    print("summary:", json.dumps(ops.get("summary", {}), indent=1))
"""),
    md("## Masking vs torch and vs the copy floor"),
    code("""
if masking is None:
    print("skipped: masking.json is missing")
else:
    speedup_bars(masking, "masking routines")
    with_floor = [c for c in masking["cases"] if c.get("ratio_to_copy") is not None]
    if with_floor:
        _, ax = plt.subplots(figsize=(8, 0.35 * len(with_floor) + 1.2))
        values = np.array([c["ratio_to_copy"] for c in with_floor], float)
        ax.barh([f"{c['case']} ({c['shape']})" for c in with_floor], values, color="tab:blue")
        ax.axvline(1.0, color="k", lw=1)
        ax.set_xlabel("jgather time / copy-floor time (1.0 = as cheap as copying the kept tokens)")
        ax.invert_yaxis()
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.2f}", va="center", fontsize=8)
        plt.tight_layout()
        plt.show()
    for c in masking["cases"]:
        times = ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in c["median_s"].items())
        print(f"{c['case']:>24}  {c['shape']}: {times}")
    memory = masking.get("memory") or {}
    for case, sizes in (memory.get("by_case") or {"all cases": memory}).items():
        listed = ", ".join(f"{k} {v / 2**20:.2f} MiB" for k, v in sizes.items() if isinstance(v, (int, float)))
        print(f"memory, {case}: {listed}")
"""),
    md("""
How to read the copy-floor ratio: for the image shape, masking moves the kept tokens and little
else, so a ratio near 1 means the permutation is nearly free. For long sequences the copy is
small (few tokens kept) while each sample still needs a random permutation of all `L` tokens:
there the sort, not the memory traffic, sets the floor, and the ratio to a plain copy is
expected to be well above 1.
"""),
    md("""
## Scaling with sequence length `L` and batch size `N`

From the `scaling` section of `masking.json`: one line per implementation, log-log. The left
plot varies the sequence length `L` with the other settings held fixed, the right one the batch
size `N`.
"""),
    code("""
rows = (masking or {}).get("scaling") or []
if not rows:
    print("skipped: masking.json is missing or has no 'scaling' section")
else:
    _, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, vary in zip(axes, ["L", "N"], strict=True):
        # Hold everything else fixed: group the rows by the other settings and plot the
        # group with the most distinct values of the varied one.
        held_keys = [k for k in ("N", "L", "D", "mask_ratio") if k != vary]
        groups = {}
        for r in rows:
            groups.setdefault(tuple(r[k] for k in held_keys), []).append(r)
        held, chosen = max(groups.items(), key=lambda kv: len({r[vary] for r in kv[1]}))
        chosen = sorted(chosen, key=lambda r: r[vary])
        if len(chosen) < 2:
            ax.set_title(f"fewer than two points varying {vary}")
            continue
        for impl in chosen[0]["median_s"]:
            points = [(r[vary], r["median_s"][impl]) for r in chosen if r["median_s"].get(impl) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=impl)
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_ticks(ax.xaxis, [r[vary] for r in chosen], lambda v: f"{v:g}")
        ax.set_xlabel(vary)
        ax.set_ylabel("median seconds")
        ax.set_title(f"varying {vary} (" + ", ".join(f"{k}={v}" for k, v in zip(held_keys, held, strict=True)) + ")")
        ax.legend()
    plt.tight_layout()
    plt.show()
"""),
]


NOTEBOOKS = {
    "01_gather_explained.ipynb": GATHER,
    "02_mae_masking.ipynb": MASKING,
    "03_performance.ipynb": PERFORMANCE,
}


def build(name: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=NOTEBOOKS[name])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> None:
    from nbclient import NotebookClient

    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--execute", action="store_true", help="run each notebook and save outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebooks to build")
    args = parser.parse_args(argv)
    for name in args.names:
        nb = build(name)
        if args.execute:
            start = time.perf_counter()
            execute(nb)
            print(f"{name}: executed in {time.perf_counter() - start:.1f} s")
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        if shutil.which("ruff"):  # keep the code cells ruff-formatted; outputs are untouched
            subprocess.run(["ruff", "format", "-q", str(HERE / name)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
