"""Shared timing harness for the benchmarks: same process, interleaved rounds, medians.

Absolute times on shared machines mean little; every benchmark here reports the *ratio*
of medians of implementations timed side by side, round-robin, in one process.

Every benchmark script uses this module for its timing (``interleaved``, ``ready``), its
optional torch (``optional_torch``, ``torch_line``) and its results (``metadata``,
``write_results``). Run the scripts from the repository root as modules
(``python -m benchmarks.ops``); ``--quick`` runs write ``<name>_quick.json`` (git-ignored) and
``--no-write`` writes nothing, so only full runs replace the committed results.
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def ready(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    """A zero-argument callable for ``interleaved``: ``fn(*args, **kwargs)``, blocked until ready.

    ``ready(lambda: f(x))`` and ``ready(f, x)`` are the same.
    """
    return lambda: jax.block_until_ready(fn(*args, **kwargs))


def optional_torch() -> Any:
    """The torch module, or None when it is not installed (the torch columns are then null)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def torch_line(torch: Any) -> str:
    """One line for a script's output saying whether torch was timed."""
    if torch is None:
        return "torch: not installed; torch columns are '-' here and null in the JSON"
    return f"torch: {torch.__version__}, {torch.get_num_threads()} threads"


def interleaved(
    fns: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 15,
    warmup: int = 2,
    inner: int = 1,
) -> dict[str, float]:
    """Times each zero-argument callable round by round and returns the median seconds per call.

    Each callable must block until its result is ready (wrap JAX calls with
    ``jax.block_until_ready``). Every round runs each callable once, in an order drawn afresh
    (seeded, so runs repeat): a fixed cyclic order would always put the same implementation
    right after torch, whose OpenMP threads keep spinning for a while after each op and slow
    whatever runs next (rotating the start alone keeps that successor fixed).
    """
    names = list(fns)
    rng = random.Random(0)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        order = rng.sample(names, len(names))
        for name in order:
            fn = fns[name]
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            samples[name].append((time.perf_counter() - t0) / inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def metadata() -> dict[str, Any]:
    """Versions and machine facts recorded next to every result."""
    meta: dict[str, Any] = {
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    torch = optional_torch()
    meta["torch"] = None if torch is None else torch.__version__  # null: torch not installed
    if torch is not None:
        meta["torch_threads"] = torch.get_num_threads()
    return meta


def write_results(name: str, payload: Mapping[str, Any]) -> Path:
    """Writes ``benchmarks/results/<name>.json`` (read by notebooks/03_performance.ipynb).

    Quick runs pass ``<script>_quick``: those files are git-ignored.
    """
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return path


def geomean(values: list[float]) -> float:
    return statistics.geometric_mean(values)
