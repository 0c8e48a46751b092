"""The benchmark plots: drawn from ``benchmarks/results/*.json`` for notebook 03 and the
documentation's Performance page (``docs/conf.py`` calls :func:`write_figures` at build time).

* **speedup vs torch** = torch's median time / jgather's (above 1: jgather is faster);
* **speedup vs idiomatic JAX** (ops) = the fastest median of the JAX a user would write for the
  same job (``jnp.take_along_axis``, ``x.at[...].add``, ``jax.ops.segment_sum``) / jgather's;
* **ratio to the copy floor** = jgather's median / the time of a plain copy of the kept tokens.

Every function returns a matplotlib ``Figure`` (or None when the data has nothing to plot);
the notebook shows it, :func:`write_figures` saves it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: The figures of :func:`write_figures`: file name -> (results file, what is drawn).
FIGURES = {
    "ops_vs_torch.png": "ops.json",
    "ops_vs_jax.png": "ops.json",
    "masking_vs_torch.png": "masking.json",
    "masking_copy_floor.png": "masking.json",
    "masking_scaling.png": "masking.json",
}


#: Each benchmark case as the Performance page's tables name it (the start of its "case"
#: cell there; tests/test_docs.py checks that the tables hold these names).
CASE_LABELS = {
    "mae_token_gather": "gather MAE tokens",
    "row_gather": "gather rows of 4096²",
    "column_gather": "gather columns of 4096²",
    "gather_1d": "gather 1-D",
    "per_token_logits": "gather per token",
    "last_axis_few": "gather last axis, few per row",
    "tiny_gather": "gather tiny",
    "graph_expand_outside": "scatter_add graph, 1M edges × 64 into 100k nodes",
    "graph_expand_inside": "scatter_add graph, same, index expanded inside jit",
    "per_element": "scatter_add per element",
    "many_per_row": "scatter_add many per row",
    "last_axis_scatter": "scatter_add last axis",
    "histogram_1k": "scatter_add histogram: 1M values into 1k bins",
    "histogram_100k": "scatter_add histogram: 10M values into 100k bins",
    "tiny_scatter": "scatter_add tiny",
    "mae_image_vitb": "image, ViT-B",
    "mae_video": "video",
}


def case_label(case: dict[str, Any]) -> str:
    """A case's name in the Performance page's tables (its benchmark name if it has none)."""
    return CASE_LABELS.get(case["case"], case["case"])


def load(results: Path, name: str, *, verbose: bool = True) -> dict[str, Any] | None:
    """``results/name`` parsed, or None (with a note naming the command that writes it)."""
    path = Path(results) / name
    if not path.exists():
        if verbose:
            print(
                f"MISSING: {path} does not exist yet. Write it with "
                f"`python -m benchmarks.{path.stem}` from the repository root."
            )
        return None
    data = json.loads(path.read_text())
    if verbose:
        meta = ", ".join(f"{k}={v}" for k, v in data.get("meta", {}).items())
        print(f"{path.name}: {len(data.get('cases', []))} cases; {meta}")
    return data


def _log_ticks(axis: Any, ticks: list[float], label: Any) -> None:
    """Readable ticks on a log axis: only the given values, formatted by ``label``."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: label(v)))
    axis.set_minor_locator(NullLocator())


def _ratio_ticks(values: np.ndarray) -> list[float]:
    """Powers of two that span the values and 1."""
    lo = np.floor(np.log2(min(values.min(), 1.0)))
    hi = np.ceil(np.log2(max(values.max(), 1.0)))
    return [float(2.0**e) for e in np.arange(lo, hi + 1)]


def speedup_bars(
    data: dict[str, Any],
    title: str,
    key: str = "speedup_vs_torch",
    against: str = "torch",
) -> Any:
    """Horizontal bars of one speedup per case, growing from 1x on a log axis."""
    import matplotlib.pyplot as plt

    cases = [c for c in data["cases"] if c.get(key) is not None]
    if not cases:
        print(f"{title}: no case has a {against} timing")
        return None
    labels = [case_label(c) for c in cases]
    values = np.array([c[key] for c in cases], float)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cases) + 1.2))
    # Right (green) where jgather is faster, left (red) where slower.
    colors = np.where(values >= 1, "tab:green", "tab:red")
    ax.barh(labels, values - 1.0, left=1.0, color=colors)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xscale("log")
    ticks = _ratio_ticks(values)
    _log_ticks(ax.xaxis, ticks, lambda v: f"{v:g}x")
    ax.set_xlim(ticks[0], ticks[-1])
    ax.set_xlabel(f"speedup vs {against} (its median / jgather's, log scale)")
    ax.invert_yaxis()
    ax.set_title(title)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}x", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def copy_floor_bars(masking: dict[str, Any]) -> Any:
    """jgather's time over the copy-floor time, per masking case."""
    import matplotlib.pyplot as plt

    cases = [c for c in masking["cases"] if c.get("ratio_to_copy") is not None]
    if not cases:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(cases) + 1.2))
    values = np.array([c["ratio_to_copy"] for c in cases], float)
    labels = [f"{case_label(c)} ({c['shape']})" for c in cases]
    ax.barh(labels, values, color="tab:blue")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_xlabel(
        "jgather time / copy-floor time (1.0 = as cheap as copying the kept tokens)"
    )
    ax.invert_yaxis()
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.2f}", va="center", fontsize=9)
    fig.tight_layout()
    return fig


def scaling_lines(masking: dict[str, Any]) -> Any:
    """Median time against sequence length ``L`` and batch size ``N``, log-log, one line
    per implementation, everything else held fixed."""
    import matplotlib.pyplot as plt

    rows = masking.get("scaling") or []
    if not rows:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, vary in zip(axes, ["L", "N"], strict=True):
        # Group the rows by the other settings; plot the group with the most distinct
        # values of the varied one.
        held_keys = [k for k in ("N", "L", "D", "mask_ratio") if k != vary]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
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
        _log_ticks(ax.xaxis, [r[vary] for r in chosen], lambda v: f"{v:g}")
        ax.set_xlabel(vary)
        ax.set_ylabel("median seconds")
        fixed = ", ".join(f"{k}={v}" for k, v in zip(held_keys, held, strict=True))
        ax.set_title(f"varying {vary} ({fixed})")
        ax.legend()
    fig.tight_layout()
    return fig


def figures(results: Path) -> dict[str, Any]:
    """Every figure of ``FIGURES`` whose results file exists, by file name."""
    ops = load(results, "ops.json", verbose=False)
    masking = load(results, "masking.json", verbose=False)
    drawn: dict[str, Any] = {}
    if ops is not None:
        drawn["ops_vs_torch.png"] = speedup_bars(
            ops, "gather / scatter ops vs torch", "vs_torch"
        )
        drawn["ops_vs_jax.png"] = speedup_bars(
            ops, "gather / scatter ops vs idiomatic JAX", "vs_jax", "idiomatic JAX"
        )
    if masking is not None:
        drawn["masking_vs_torch.png"] = speedup_bars(masking, "masking routines")
        drawn["masking_copy_floor.png"] = copy_floor_bars(masking)
        drawn["masking_scaling.png"] = scaling_lines(masking)
    return {name: fig for name, fig in drawn.items() if fig is not None}


def write_figures(results: Path, folder: Path) -> list[Path]:
    """Saves :func:`figures` of ``results`` as PNG files in ``folder``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures(results).items():
        paths.append(folder / name)
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
