# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Graph attention with `jgather.segment`
#
# Graph code in PyTorch is written against `torch_scatter`: messages live on edges, and
# `scatter_softmax` / `scatter_sum` reduce them into nodes. `jgather.segment` is the same API
# on JAX, so a GAT layer ports line by line. This notebook
#
# 1. writes a two-layer GAT (Veličković et al., 2018) with `scatter_softmax` over each node's
#    incoming edges and `scatter_sum` for the weighted aggregation,
# 2. trains it with optax on Zachary's karate club (bundled with networkx; the labels are each
#    member's `club` after the split), from 4 labelled members,
# 3. plots the loss and the graph coloured by prediction, reads off each member's most
#    attended neighbour with `scatter_max`'s argmax, and
# 4. checks one GAT layer against a torch re-statement with the same weights (when torch is
#    installed).
#
# Under `jax.jit` the segment count is static: every call passes `dim_size=num_nodes`.

# %%
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import optax

import jgather.segment as seg

graph = nx.karate_club_graph()
num_nodes = graph.number_of_nodes()
clubs = sorted({graph.nodes[v]["club"] for v in graph})
labels = np.array([clubs.index(graph.nodes[v]["club"]) for v in graph], np.int32)

# Directed edges src -> dst both ways, plus a self loop per node (GAT attends to
# itself too).
pairs = np.array(graph.edges(), np.int32)
src = np.concatenate([pairs[:, 0], pairs[:, 1], np.arange(num_nodes)]).astype(np.int32)
dst = np.concatenate([pairs[:, 1], pairs[:, 0], np.arange(num_nodes)]).astype(np.int32)
features = np.eye(num_nodes, dtype=np.float32)  # no node features: one-hot identities
train = np.array([0, 1, 2, 3, 33, 32, 31, 30])  # 4 members of each club
print(
    f"{num_nodes} members, {len(src)} directed edges (with self loops), clubs {clubs}"
)
print("training on", train.tolist(), "with labels", labels[train].tolist())

# %% [markdown]
# ## The layer
#
# Per edge `j -> i` the attention logit is `LeakyReLU(a_src · W x_j + a_dst · W x_i)`; the
# weights are a softmax over the edges *into* `i` -- `scatter_softmax(logits, dst, dim=0)` --
# and node `i` receives `sum_j alpha_ij W x_j` -- `scatter_sum(alpha * messages, dst, dim=0)`.
# The 1-D edge index broadcasts over the head and feature axes (torch_scatter's rule).


# %%
def gat_layer(params, x, src, dst, num_nodes):
    """One multi-head GAT layer: x [N, D_in] -> [N, heads, D_out]."""
    heads, d_out = params["a_src"].shape
    h = (x @ params["w"]).reshape(x.shape[0], heads, d_out)  # [N, H, F]
    logits = (h * params["a_src"]).sum(-1)[src] + (h * params["a_dst"]).sum(-1)[
        dst
    ]  # [E, H]
    alpha = seg.scatter_softmax(
        jax.nn.leaky_relu(logits, 0.2), dst, dim=0, dim_size=num_nodes
    )
    messages = alpha[..., None] * h[src]  # [E, H, F]
    return seg.scatter_sum(messages, dst, dim=0, dim_size=num_nodes), alpha


def init_layer(key, d_in, heads, d_out):
    k1, k2, k3 = jax.random.split(key, 3)
    glorot = jax.nn.initializers.glorot_uniform()
    return {
        "w": glorot(k1, (d_in, heads * d_out)),
        "a_src": glorot(k2, (heads, d_out)),
        "a_dst": glorot(k3, (heads, d_out)),
    }


def gat(params, x, src, dst, num_nodes):
    """Two layers: 4 heads x 8 features (concatenated, ELU), then 1 head x 2 classes."""
    h, _ = gat_layer(params["l1"], x, src, dst, num_nodes)
    h = jax.nn.elu(h.reshape(num_nodes, -1))
    logits, alpha = gat_layer(params["l2"], h, src, dst, num_nodes)
    return logits[:, 0, :], alpha


key1, key2 = jax.random.split(jax.random.key(0))
params = {"l1": init_layer(key1, num_nodes, 4, 8), "l2": init_layer(key2, 32, 1, 2)}

# %% [markdown]
# ## Training
#
# Cross-entropy on the 8 labelled members, Adam with weight decay, 200 full-graph steps in one
# jitted function. The gradient flows through `scatter_softmax` and `scatter_sum` (both
# differentiable, deterministic).

# %%
x, s, d, y = map(jnp.asarray, (features, src, dst, labels))
optimizer = optax.adamw(0.01, weight_decay=5e-4)


def loss_fn(params):
    logits, _ = gat(params, x, s, d, num_nodes)
    return optax.softmax_cross_entropy_with_integer_labels(
        logits[train], y[train]
    ).mean()


@jax.jit
def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


opt_state = optimizer.init(params)
losses = []
start = time.perf_counter()
for _ in range(200):
    params, opt_state, loss = step(params, opt_state)
    losses.append(float(loss))
logits, alpha = gat(params, x, s, d, num_nodes)
pred = np.asarray(jnp.argmax(logits, -1))
print(f"200 steps in {time.perf_counter() - start:.1f} s (compile included)")
print(f"final training loss {losses[-1]:.4f}")
print(f"accuracy on all {num_nodes} members: {(pred == labels).mean():.0%}")

# %%
fig, (ax_loss, ax_graph) = plt.subplots(1, 2, figsize=(9, 4))
ax_loss.plot(losses)
ax_loss.set(xlabel="step", ylabel="training cross-entropy", yscale="log", title="loss")
pos = nx.spring_layout(graph, seed=7)
colors = np.array(["tab:blue", "tab:orange"])
nx.draw_networkx_edges(graph, pos, ax=ax_graph, alpha=0.5)
nx.draw_networkx_nodes(
    graph,
    pos,
    ax=ax_graph,
    node_color=colors[pred],
    edgecolors=colors[labels],
    linewidths=2.5,
)
nx.draw_networkx_nodes(
    graph,
    pos,
    nodelist=train.tolist(),
    ax=ax_graph,
    node_color="none",
    edgecolors="black",
    linewidths=1.0,
    node_size=500,
)
nx.draw_networkx_labels(graph, pos, ax=ax_graph, font_size=8)
ax_graph.set_title("fill: predicted club, ring: true club, black circle: labelled")
ax_graph.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Who listens to whom: `scatter_max` with its argmax
#
# `scatter_max` returns the winning *edge* per node (torch_scatter's argmax, the position along
# `dim`), so the most attended neighbour of each member is `src[argmax]`. A node with no
# incoming edge would get the sentinel `len(src)`; here every node has its self loop.

# %%
weight, best_edge = seg.scatter_max(alpha[:, 0], d, dim=0, dim_size=num_nodes)
most_attended = src[np.asarray(best_edge)]
for v in (0, 33, 8, 2):
    print(
        f"member {v:2d}: attends most to {most_attended[v]:2d} "
        f"(weight {float(weight[v]):.2f})"
    )

# %% [markdown]
# ## The same layer in torch
#
# With the trained first-layer weights, a torch re-statement of the GAT layer -- torch_scatter's
# `scatter_softmax` formula written with torch's native `scatter_reduce` / `index_add_` --
# gives the same output. (torch is optional here; CI's test extra has none.)

# %%
try:
    import torch
except ImportError:
    torch = None
    print("torch is not installed: skipping the side-by-side check")

if torch is not None:

    def torch_gat_layer(p, x, src, dst, num_nodes):
        heads, d_out = p["a_src"].shape
        h = (x @ p["w"]).reshape(x.shape[0], heads, d_out)
        e = torch.nn.functional.leaky_relu(
            (h * p["a_src"]).sum(-1)[src] + (h * p["a_dst"]).sum(-1)[dst], 0.2
        )
        idx = dst[:, None].expand_as(e)
        m = torch.full((num_nodes, heads), -torch.inf).scatter_reduce(0, idx, e, "amax")
        ex = (e - m.gather(0, idx)).exp()
        alpha = ex / torch.zeros(num_nodes, heads).index_add_(0, dst, ex).gather(0, idx)
        return torch.zeros(num_nodes, heads, d_out).index_add_(
            0, dst, alpha[..., None] * h[src]
        )

    tp = {k: torch.tensor(np.asarray(v)) for k, v in params["l1"].items()}
    want = torch_gat_layer(tp, torch.tensor(features), torch.tensor(src).long(),
                           torch.tensor(dst).long(), num_nodes)  # fmt: skip
    got, _ = gat_layer(params["l1"], x, s, d, num_nodes)
    diff = np.abs(np.asarray(got) - want.numpy()).max()
    print(f"layer 1, {tuple(got.shape)}: max |jgather - torch| = {diff:.2e}")
    assert diff < 1e-5
