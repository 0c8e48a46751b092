# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance plots
#
# Plots of the benchmark results stored in `benchmarks/results/`. Nothing is timed here: the
# numbers come from the JSON files that the benchmark scripts write (same process, interleaved
# rounds, medians; see `benchmarks/_timing.py`). If a file is missing, the notebook says so and
# skips its plots; regenerate the files with the benchmark scripts and re-run this notebook.
#
# * **speedup vs torch** = torch's median time / jgather's (above 1: jgather is faster);
# * **speedup vs idiomatic JAX** (ops) = the fastest median of the JAX a user would write for
#   the same job (`jnp.take_along_axis`, `x.at[...].add`, `jax.ops.segment_sum`) / jgather's;
# * **ratio to the copy floor** = jgather's median / the time of a plain copy of the kept
#   tokens (1.0 would mean masking costs no more than moving its output).
#
# The plots are drawn by `performance_plots.py` next to this notebook, the module that also
# draws the documentation's Performance page.

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import performance_plots as plots

# %% tags=["parameters"]
RESULTS = Path("..") / "benchmarks" / "results"  # where the benchmark scripts write

# %%
ops = plots.load(RESULTS, "ops.json")
masking = plots.load(RESULTS, "masking.json")

# %% [markdown]
# ## Core ops vs torch and vs idiomatic JAX


# %%
if ops is None:
    print("skipped: ops.json is missing")
else:
    plots.speedup_bars(ops, "gather / scatter ops vs torch", "vs_torch")
    plots.speedup_bars(
        ops, "gather / scatter ops vs idiomatic JAX", "vs_jax", "idiomatic JAX"
    )
    plt.show()
    print("summary:", json.dumps(ops.get("summary", {}), indent=1))

# %% [markdown]
# ## Masking vs torch and vs the copy floor

# %%
if masking is None:
    print("skipped: masking.json is missing")
else:
    plots.speedup_bars(masking, "masking routines")
    plots.copy_floor_bars(masking)
    plt.show()
    for c in masking["cases"]:
        times = ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in c["median_s"].items())
        print(f"{c['case']:>24}  {c['shape']}: {times}")
    memory = masking.get("memory") or {}
    for case, sizes in (memory.get("by_case") or {"all cases": memory}).items():
        listed = ", ".join(
            f"{k} {v / 2**20:.2f} MiB"
            for k, v in sizes.items()
            if isinstance(v, (int, float))
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
if masking is None or plots.scaling_lines(masking) is None:
    print("skipped: masking.json is missing or has no 'scaling' section")
else:
    plt.show()
