# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Performance
#
# Plots of the benchmark results stored in `benchmarks/results/`. Nothing is timed here: the numbers
# come from the JSON files that the benchmark scripts write (same process, interleaved rounds,
# medians; see `benchmarks/_timing.py`). If a file is missing, the notebook says so and skips its
# plots; regenerate the files with the benchmark scripts and re-run this notebook.
#
# * **speedup vs torch** = torch's median time / jgather's (above 1: jgather is faster);
# * **speedup vs idiomatic JAX** (ops) = the fastest median of the JAX a user would write for the
#   same job (`jnp.take_along_axis`, `x.at[...].add`, `jax.ops.segment_sum`) / jgather's;
# * **ratio to the copy floor** = jgather's median / the time of a plain copy of the kept tokens
#   (1.0 would mean masking costs no more than moving its output).

# %%
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
    print(
        f"{path}: {len(data.get('cases', []))} cases; "
        + ", ".join(f"{k}={v}" for k, v in meta.items())
    )
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

# %% [markdown]
# ## Core ops vs torch and vs idiomatic JAX


# %%
def speedup_bars(data, title, key="speedup_vs_torch", against="torch"):
    cases = [c for c in data["cases"] if c.get(key) is not None]
    if not cases:
        print(f"{title}: no case has a {against} timing")
        return
    labels = [f"{c['op']}: {c['case']}" for c in cases]
    values = np.array([c[key] for c in cases], float)
    _, ax = plt.subplots(figsize=(8, 0.35 * len(cases) + 1.2))
    # Bars grow from 1x: right (green) where jgather is faster, left (red) where slower.
    ax.barh(labels, values - 1.0, left=1.0, color=np.where(values >= 1, "tab:green", "tab:red"))
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ticks = ratio_ticks(values)
    log_ticks(ax.xaxis, ticks, lambda v: f"{v:g}x")
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_xlabel(f"speedup vs {against} (its median / jgather's, log scale)")
    ax.invert_yaxis()
    ax.set_title(title)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}x", va="center", fontsize=8)
    plt.tight_layout()
    plt.show()


if ops is None:
    print("skipped: ops.json is missing")
else:
    speedup_bars(ops, "gather / scatter ops vs torch", "vs_torch")
    speedup_bars(ops, "gather / scatter ops vs idiomatic JAX", "vs_jax", "idiomatic JAX")
    print("summary:", json.dumps(ops.get("summary", {}), indent=1))

# %% [markdown]
# ## Masking vs torch and vs the copy floor

# %%
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
        listed = ", ".join(
            f"{k} {v / 2**20:.2f} MiB" for k, v in sizes.items() if isinstance(v, (int, float))
        )
        print(f"memory, {case}: {listed}")

# %% [markdown]
# How to read the copy-floor ratio: for the image shape, masking moves the kept tokens and little
# else, so a ratio near 1 means the permutation is nearly free. For long sequences the copy is
# small (few tokens kept) while each sample still needs a random permutation of all `L` tokens:
# there the sort, not the memory traffic, sets the floor, and the ratio to a plain copy is
# expected to be well above 1.

# %% [markdown]
# ## Scaling with sequence length `L` and batch size `N`
#
# From the `scaling` section of `masking.json`: one line per implementation, log-log. The left
# plot varies the sequence length `L` with the other settings held fixed, the right one the batch
# size `N`.

# %%
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
            points = [
                (r[vary], r["median_s"][impl])
                for r in chosen
                if r["median_s"].get(impl) is not None
            ]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=impl)
        ax.set_xscale("log")
        ax.set_yscale("log")
        log_ticks(ax.xaxis, [r[vary] for r in chosen], lambda v: f"{v:g}")
        ax.set_xlabel(vary)
        ax.set_ylabel("median seconds")
        ax.set_title(
            f"varying {vary} ("
            + ", ".join(f"{k}={v}" for k, v in zip(held_keys, held, strict=True))
            + ")"
        )
        ax.legend()
    plt.tight_layout()
    plt.show()
