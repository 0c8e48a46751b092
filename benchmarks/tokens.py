"""Token merging: ToMe's merge + unmerge against torch, and a ViT's forward with ToMe against r = 0.

Two cases, each timed with the interleaved harness (fresh random order each round, medians):

* ToMe's bipartite matching, merge and unmerge, forward and backward, at ViT-B/16's shapes
  (``[256, 197, 768]``, class token, ``r = 16``), float32 on CPU: ``jgather.tokens`` jitted
  against a torch statement of ToMe's ``tome/merge.py`` written here (the same gathers, the
  same ``scatter_reduce(..., reduce='mean')``, vectorised over the batch as ToMe is). Both
  results are checked against each other before timing.
* A ViT-B/16 forward (random weights) written with ``jgather.tokens`` as ToMe patches timm's
  blocks (merge between attention and MLP, size-weighted average, proportional attention),
  jitted, at ``r = 16`` against ``r = 0``: the speed-up ToMe reports for its models, measured
  here on whatever JAX runs on.

Run from the repository root: ``python -m benchmarks.tokens`` (``--quick``: small shapes).
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import (
    Target,
    interleaved,
    metadata,
    optional_torch,
    ready,
    to_numpy,
    torch_line,
    write_results,
)
from jgather import tokens

torch = optional_torch()


# ----------------------------------------------------------------------------------------------
# Case 1: merge + unmerge, forward and backward.


def _jax_step(r: int):
    def loss(x, w):
        m = tokens.bipartite_soft_matching(x, r, class_token=True)
        return jnp.sum(tokens.unmerge(m, tokens.merge(m, x)) * w)

    return jax.jit(jax.value_and_grad(loss))


def _torch_step(r: int):
    """ToMe's matching, merge (mean) and unmerge in torch, then the backward pass."""

    def match(metric):
        with torch.no_grad():
            metric = metric / metric.norm(dim=-1, keepdim=True)
            scores = metric[:, ::2] @ metric[:, 1::2].transpose(-1, -2)
            scores[:, 0, :] = -math.inf  # the class token is never merged
            best, best_idx = scores.max(dim=-1)
            order = best.argsort(dim=-1, descending=True)[..., None]
            kept = order[:, r:].sort(dim=1).values
            merged = order[:, :r]
            into = best_idx[..., None].gather(dim=1, index=merged)
        return kept, merged, into

    def step(x, w):
        x = x.detach().requires_grad_(True)
        kept, merged, into = match(x)
        n, _, c = x.shape
        a, b = x[:, ::2], x[:, 1::2]
        stay = a.gather(1, kept.expand(n, -1, c))
        moved = a.gather(1, merged.expand(n, r, c))
        b = b.scatter_reduce(1, into.expand(n, r, c), moved, reduce="mean")
        y = torch.cat([stay, b], dim=1)
        u = stay.shape[1]
        out = torch.zeros_like(x)
        out[:, 1::2] = y[:, u:]
        out = out.scatter(1, (2 * kept).expand(n, u, c), y[:, :u])
        out = out.scatter(1, (2 * merged).expand(n, r, c), y[:, u:].gather(1, into.expand(n, r, c)))
        loss = (out * w).sum()
        loss.backward()
        return loss, x.grad

    return step


# ----------------------------------------------------------------------------------------------
# Case 2: a ViT with ToMe.


def vit_params(key: jax.Array, depth: int, width: int, patch: int, classes: int = 1000) -> Any:
    """Random ViT weights (no download): patch embedding, class token, blocks, head."""
    keys = iter(jax.random.split(key, 4 + 4 * depth))
    dense = lambda k, i, o: jax.random.normal(k, (i, o), jnp.float32) / math.sqrt(i)
    blocks = [
        dict(
            qkv=dense(next(keys), width, 3 * width),
            proj=dense(next(keys), width, width),
            fc1=dense(next(keys), width, 4 * width),
            fc2=dense(next(keys), 4 * width, width),
        )
        for _ in range(depth)
    ]
    tokens_ = (224 // patch) ** 2
    return dict(
        embed=dense(next(keys), patch * patch * 3, width),
        cls=jax.random.normal(next(keys), (1, 1, width)) * 0.02,
        pos=jax.random.normal(next(keys), (1, tokens_ + 1, width)) * 0.02,
        head=dense(next(keys), width, classes),
        blocks=blocks,
    )


def _norm(x):
    return (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-6)


def vit_forward(params: Any, images: jax.Array, schedule: list[int], heads: int) -> jax.Array:
    """Logits of a ViT whose block ``i`` merges ``schedule[i]`` tokens (ToMe's timm patch)."""
    patch = math.isqrt(params["embed"].shape[0] // 3)
    x = jnp.asarray(images)
    n, h, w, c = x.shape
    x = x.reshape(n, h // patch, patch, w // patch, patch, c).transpose(0, 1, 3, 2, 4, 5)
    x = x.reshape(n, -1, patch * patch * c) @ params["embed"]
    x = jnp.concatenate([jnp.broadcast_to(params["cls"], (n, 1, x.shape[-1])), x], 1)
    x = x + params["pos"]
    size = None
    for block, r in zip(params["blocks"], schedule, strict=True):
        t, d = x.shape[1], x.shape[2]
        q, k, v = (
            (_norm(x) @ block["qkv"]).reshape(n, t, 3, heads, d // heads).transpose(2, 0, 3, 1, 4)
        )
        logits = q @ k.swapaxes(-1, -2) / math.sqrt(d // heads)
        if size is not None:  # proportional attention
            logits = logits + tokens.proportional_attention_bias(size)
        a = jax.nn.softmax(logits, -1) @ v
        x = x + a.transpose(0, 2, 1, 3).reshape(n, t, d) @ block["proj"]
        if r > 0:
            m = tokens.bipartite_soft_matching(k.mean(1), r, class_token=True)
            x, size = tokens.merge_wavg(m, x, size)
        x = x + jax.nn.gelu(_norm(x) @ block["fc1"]) @ block["fc2"]
    return _norm(x[:, 0]) @ params["head"]


# ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, target: Target | None = None) -> dict[str, Any]:
    """Runs both cases; returns the results (also written to JSON unless ``--no-write``)."""
    target = target or Target()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    q = args.quick
    rounds = 3 if q else 7
    if torch is not None:
        torch.set_num_threads(os.cpu_count() or 1)
    print(torch_line(torch))
    cases = []

    n, t, c, r = (16, 197, 192, 16) if q else (256, 197, 768, 16)
    shape = f"x [{n}, {t}, {c}], r={r}, class token, float32"
    if target.has_time("merge"):
        rng = np.random.default_rng(0)
        x, w = rng.standard_normal((2, n, t, c), dtype=np.float32)
        jx, jw = jnp.asarray(x), jnp.asarray(w)
        jstep = _jax_step(r)
        fns = {"jgather": ready(jstep, jx, jw)}
        if torch is not None:
            tx, tw = target.to_torch(x), target.to_torch(w)
            tstep = _torch_step(r)
            (_, jg), (_, tg) = jstep(jx, jw), tstep(tx, tw)
            np.testing.assert_allclose(to_numpy(jg), to_numpy(tg), rtol=1e-5, atol=1e-5)
            fns["torch"] = target.timed(lambda: tstep(tx, tw))
        med = interleaved(fns, rounds=rounds, warmup=1)
        ratio = med["torch"] / med["jgather"] if "torch" in med else None
        cases.append(
            dict(case="tome merge+unmerge fwd+bwd", shape=shape, median_s=med, vs_torch=ratio)
        )
        print(f"{shape}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in med.items()))
        if ratio is not None:
            print(f"  jgather is {ratio:.2f}x torch")

    depth, width, heads, batch = (4, 192, 3, 4) if q else (12, 768, 12, 4)
    vit = f"ViT depth {depth}, width {width}, {heads} heads, patch 16, 224px, batch {batch}"
    if target.has_time("vit"):
        params = vit_params(jax.random.key(0), depth, width, 16)
        images = jax.random.normal(jax.random.key(1), (batch, 224, 224, 3))

        def forward(rr: int) -> Any:
            schedule = tokens.r_schedule(depth, rr)
            return jax.jit(lambda p, im: vit_forward(p, im, schedule, heads))

        fwd = {f"r={rr}": forward(rr) for rr in (0, 8, 16)}
        med = interleaved(
            {k: ready(f, params, images) for k, f in fwd.items()}, rounds=rounds, warmup=1
        )
        speedup = {k: med["r=0"] / v for k, v in med.items()}
        cases.append(
            dict(case="vit forward, tome r", shape=vit, median_s=med, speedup_vs_r0=speedup)
        )
        print(
            f"{vit}: "
            + ", ".join(f"{k} {v * 1e3:.0f} ms ({speedup[k]:.2f}x)" for k, v in med.items())
        )

    meta = {**metadata(), **target.meta(), "rounds": rounds, "load_avg_1min": os.getloadavg()[0]}
    payload = {"meta": meta, "cases": cases}
    if not args.no_write:
        print(f"wrote {write_results(target.results_name('tokens', q), payload)}")
    return payload


if __name__ == "__main__":
    main()
