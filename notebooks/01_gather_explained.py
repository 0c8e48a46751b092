# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # `gather`, forwards and backwards
#
# `torch.gather(input, dim, index)` collects values from `input` along one axis. This notebook reads
# it two ways, on the `dim=1` example on `arange(24).reshape(2, 3, 4)`:
#
# 1. **forwards** — for a given output cell, which input cell does it copy?
# 2. **backwards** — given an input and an output, which `dim` and `index` produce it?
#
# It then lists where `torch.gather` and `jnp.take_along_axis` part ways, and shows that the
# gradient of a gather is a scatter-add (the two are adjoint linear maps).

# %%
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
print(
    "jax", jax.__version__, "| torch", torch.__version__ if torch else "not installed"
)

# %% [markdown]
# ## The example
#
# A `2 × 3 × 4` input, and an index that picks row 0 and then row 2 of every `3 × 4` slice.
# The output takes the *index's* shape, `2 × 2 × 4`.

# %%
x = jnp.arange(24).reshape(2, 3, 4)
index = jnp.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 0, 0, 0], [2, 2, 2, 2]]])
out = jgather.gather(x, 1, index)
print("input:", x, "", "out = gather(input, dim=1, index):", out, sep="\n")

# %% [markdown]
# ## Forwards: one cell at a time
#
# Take an output position `[i, j, k]`. Without `dim`, the natural guess would be `input[i, j, k]`;
# gather instead **replaces the coordinate along `dim` by the index value stored at that
# position**. With `dim=1`, `out[i][j][k] = input[i][index[i][j][k]][k]`.
# `jgather.explain` prints this substitution for any cell:

# %%
print(jgather.explain(x, 1, index, (0, 1, 0)))

# %%
for position in itertools.product(*map(range, out.shape)):
    print(jgather.explain(x, 1, index, position))

# %% [markdown]
# The same rule for the other axes, side by side (`dim=0` swaps the first coordinate, `dim=2` the
# last). Here the index reads the 3 × 4 slices in reverse order (`dim=0`) and reverses each row
# (`dim=2`):

# %%
flip_slices = jnp.broadcast_to(jnp.array([1, 0])[:, None, None], (2, 3, 4))
print(jgather.explain(x, 0, flip_slices, (0, 2, 3)))
reverse_rows = jnp.broadcast_to(jnp.arange(3, -1, -1), (2, 3, 4))
print(jgather.explain(x, 2, reverse_rows, (1, 0, 0)))

# %% [markdown]
# ### A picture
#
# Each arrow starts at an output cell and ends at the input cell it copies; its colour is the index
# value. Input cells nobody reads are left white. (The drawing code is folded on the
# documentation site.)


# %% tags=["hide-input"]
def draw_gather(x, dim, index, title):
    """Arrows from every cell of gather(x, dim, index) to the input cell it reads.

    3-D inputs only.
    """
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
                ax.add_patch(
                    Rectangle(
                        (k - 0.5, j - 0.5), 1, 1, facecolor=shade, edgecolor="0.3"
                    )
                )
                ax.text(k, j, str(array[i, j, k]), ha="center", va="center", fontsize=9)
    for (i, j, k), (si, sj, sk) in sources.items():
        # Arrows leave from just below each number and bend by column, so they stay
        # apart.
        arrow = ConnectionPatch(
            xyA=(k, j + 0.3),
            coordsA=axes[i, 1].transData,
            xyB=(sk, sj + 0.3),
            coordsB=axes[si, 0].transData,
            arrowstyle="->",
            color=colour(int(index[i, j, k]) % 10),
            alpha=0.6,
            lw=1.2,
            connectionstyle=f"arc3,rad={-0.08 - 0.05 * k}",
        )
        fig.add_artist(arrow)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


draw_gather(
    x,
    1,
    index,
    "gather(input, dim=1, index): "
    "row j of out[i] copies row index[i, j, :] of input[i]",
)
plt.show()

# %%
draw_gather(
    x,
    2,
    jnp.array([[[3, 0], [1, 1], [2, 0]], [[0, 3], [3, 2], [1, 1]]]),
    "dim=2: each cell picks a column of its own row (an index may repeat)",
)
plt.show()

# %% [markdown]
# ## Backwards: from input and output to `dim` and `index`
#
# Reading the example backwards: `out[0, 0, :]` equals `input[0, 0, :]`, so the first row says
# nothing yet. At `out[0, 1, 0] = 8` the value sits at `input[0, 2, 0]`: only the coordinate along
# axis 1 changed (1 → 2), so `dim = 1` and `index[0, 1, 0] = 2`. Doing that for every cell rebuilds
# the whole index.
#
# `jgather.infer_gather` automates the search. For every candidate `dim` it looks up each output
# value in the input fibre through that cell along `dim`, and returns every `(dim, index)` that
# works — all of them, because more than one can.

# %%
for dim, found in jgather.infer_gather(x, out):
    print(f"dim={dim}\nindex=\n{found}")
    assert (jgather.gather(x, dim, found) == out).all()

# %% [markdown]
# The same question for MAE's masking, which gathers the kept patch tokens of a sequence:
# `x = arange(64).reshape(1, 16, 4)` is a sequence of 16 "patches" of 4 values, and the encoder
# received the four rows below. Which patches were kept?

# %%
tokens = jnp.arange(64).reshape(1, 16, 4)
x_masked = jnp.array(
    [[[40, 41, 42, 43], [48, 49, 50, 51], [16, 17, 18, 19], [52, 53, 54, 55]]]
)
((dim, found),) = jgather.infer_gather(tokens, x_masked)
print("dim =", dim, "| kept patches:", found[0, :, 0].tolist())
print(found)

# %% [markdown]
# When values repeat, several answers are possible. Here both axes explain the output, and within
# a fibre the **first** matching position is returned:

# %%
a = jnp.array([[1, 2, 2], [2, 1, 1]])
b = jnp.array([[2, 1], [1, 2]])
for dim, found in jgather.infer_gather(a, b):
    print(f"dim={dim}: index={found.tolist()}")

# %% [markdown]
# And when no gather can produce the output, the error says why for each axis:

# %%
try:
    jgather.infer_gather(x, out + 100)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# The search is vectorised — a handful of sampled cells rules out most wrong axes at once, and each
# remaining axis costs one sort of every fibre merged with the values looked up in it — so it stays
# interactive on arrays of a million elements:

# %%
rng = np.random.default_rng(0)
big = rng.standard_normal((1000, 1000)).astype(np.float32)
big_index = rng.integers(0, 1000, big.shape)
big_out = np.take_along_axis(big, big_index, axis=1)
start = time.perf_counter()
solutions = jgather.infer_gather(big, big_out)
print(
    f"{big.size:,} elements: {time.perf_counter() - start:.2f} s; "
    f"dims found: {[d for d, _ in solutions]}"
)
# Float values can repeat within a row, where the first match may differ from big_index;
# what must hold is that the recovered index reproduces the output.
assert (np.take_along_axis(big, np.asarray(solutions[0][1]), axis=1) == big_out).all()

# %% [markdown]
# ## `torch.gather` is not `jnp.take_along_axis`
#
# They agree whenever `index` and `input` have the same shape except along `dim` and every index is
# in range — the common case. They differ at the edges, and those edges are where ports break
# silently. `jgather.gather` follows torch.
#
# **1. Smaller index off `dim`.** torch only requires `index.size(d) <= input.size(d)` for
# `d != dim`, and reads the leading block of `input`. `take_along_axis` demands broadcast-compatible
# shapes.

# %%
m = jnp.arange(12).reshape(3, 4)
corner = jnp.array([[3, 0], [2, 1]])  # 2 x 2 index into a 3 x 4 input, dim=1
print("jgather.gather:\n", jgather.gather(m, 1, corner))
if torch is not None:
    print(
        "torch.gather:\n",
        torch.gather(
            torch.arange(12).reshape(3, 4), 1, torch.tensor(np.asarray(corner))
        ),
    )
try:
    jnp.take_along_axis(m, corner, axis=1)
except ValueError as err:
    print("take_along_axis: ValueError:", err)

# %% [markdown]
# **2. Broadcasting.** An index with a size-1 axis is *broadcast* by `take_along_axis`, but taken
# literally by torch (one row out):

# %%
one_row = jnp.array([[2, 0, 1]])  # shape [1, 3]
print(
    "take_along_axis:",
    jnp.take_along_axis(m, one_row, axis=1).shape,
    "(broadcast to every row)",
)
print(
    "jgather.gather: ",
    jgather.gather(m, 1, one_row).shape,
    jgather.gather(m, 1, one_row).tolist(),
)
if torch is not None:
    print(
        "torch.gather:   ",
        tuple(
            torch.gather(
                torch.arange(12).reshape(3, 4), 1, torch.tensor([[2, 0, 1]])
            ).shape
        ),
    )

# %% [markdown]
# **3. Out-of-range and negative indices.** torch raises. `take_along_axis` wraps negative indices
# (NumPy style) and *fills* out-of-range ones with NaN (or the smallest integer) without a word.
# `jgather.gather` raises like torch when the index is concrete; under `jit` values cannot raise,
# so it fills and `checkify` reports the bad index. `mode='clip'` and `mode='fill'` choose a
# behaviour explicitly.

# %%
mf = m.astype(jnp.float32)
bad = jnp.array([[0, 5], [0, -1], [0, 1]])
print("take_along_axis:\n", jnp.take_along_axis(mf, bad, axis=1))
for label, call in [
    (
        "torch.gather",
        lambda: torch.gather(
            torch.tensor(np.asarray(mf)), 1, torch.tensor(np.asarray(bad))
        ),
    ),
    ("jgather.gather", lambda: jgather.gather(mf, 1, bad)),
]:
    if label.startswith("torch") and torch is None:
        continue
    try:
        call()
    except (IndexError, RuntimeError) as err:
        print(f"{label}: {type(err).__name__}: {str(err).splitlines()[0]}")
print("jgather.gather(mode='clip'):\n", jgather.gather(mf, 1, bad, mode="clip"))
jitted = jax.jit(lambda t, i: jgather.gather(t, 1, i))
error, result = checkify.checkify(jitted, errors=checkify.index_checks)(mf, bad)
print("under jit:\n", result)
print("checkify:", error.get().splitlines()[0])

# %% [markdown]
# **4. Index dtype.** torch insists on int64 indices; JAX is happy with int32, its default (and the
# cheaper choice on accelerators).

# %% [markdown]
# ## Scatter is gather's adjoint
#
# A gather is linear in `input`: `gather(·, dim, index)` is a matrix `G` with one 1 per row. Its
# transpose `Gᵀ` sends each output cell's value back to the input cell it was read from, **adding**
# where several output cells read the same input cell — that is `scatter_add` into zeros. Reverse-mode
# autodiff computes exactly `Gᵀ g` for a cotangent `g`, so the gradient of a gather is a scatter-add.
#
# Check it numerically, with an index that reads some cells several times:

# %%
xf = jnp.arange(24, dtype=jnp.float32).reshape(2, 3, 4)
repeat_index = jnp.array([[[0, 0, 1, 2], [0, 2, 2, 2]], [[1, 1, 1, 1], [0, 0, 2, 0]]])
g = jax.random.normal(jax.random.key(0), repeat_index.shape)

_, pullback = jax.vjp(lambda t: jgather.gather(t, 1, repeat_index), xf)
(grad_x,) = pullback(g)
via_scatter = jgather.scatter_add(jnp.zeros_like(xf), 1, repeat_index, g)
print(
    "vjp(gather) == scatter_add(zeros, dim, index, g):",
    bool(jnp.allclose(grad_x, via_scatter)),
)

# The defining identity of an adjoint: <G y, g> = <y, Gᵀ g> for any y.
y = jax.random.normal(jax.random.key(1), xf.shape)
lhs = jnp.vdot(jgather.gather(y, 1, repeat_index), g)
rhs = jnp.vdot(y, via_scatter)
print(f"<gather(y), g> = {float(lhs):.6f}   <y, scatter_add(g)> = {float(rhs):.6f}")

if torch is not None:
    xt = torch.tensor(np.asarray(xf), requires_grad=True)
    torch.gather(xt, 1, torch.tensor(np.asarray(repeat_index))).backward(
        torch.tensor(np.asarray(g))
    )
    print(
        "torch's gradient agrees:",
        np.allclose(xt.grad.numpy(), np.asarray(grad_x), atol=1e-6),
    )

# %% [markdown]
# With a cotangent of ones the gradient simply counts how often each input cell is read:

# %%
(counts,) = pullback(jnp.ones_like(g))
print(counts.astype(int))

# %% [markdown]
# And the compiled backward pass is indeed one `scatter-add`:

# %%
print(jax.make_jaxpr(pullback)(g).pretty_print(use_color=False))
