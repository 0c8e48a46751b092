"""Shared timing harness for the benchmarks: same process, interleaved rounds, medians.

Absolute times on shared machines mean little; every benchmark here reports the *ratio*
of medians of implementations timed side by side, round-robin, in one process.

Every benchmark script uses this module for its timing (``interleaved``, or
``interleaved_samples`` for the per-round times; ``ready``), its optional torch
(``optional_torch``, ``torch_line``) and its results (``metadata``, ``write_results``). Run the
scripts from the repository root as modules (``python -m benchmarks.ops``); ``--quick`` runs
write ``<name>_quick.json`` (git-ignored) and ``--no-write`` writes nothing, so only full runs
replace the committed results.

A script's ``main`` also takes a ``Target`` (benchmarks/accelerator.py passes one): where its
torch side runs, a deadline after which its remaining cases are skipped, and the platform its
results file is named after. The default ``Target()`` is the command-line run: torch on CPU,
no deadline, ``<name>.json``.
"""

from __future__ import annotations

import contextlib
import json
import platform
import random
import statistics
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import numpy as np

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


def to_numpy(value: Any) -> np.ndarray:
    """A JAX or NumPy array, or a torch tensor on any device, as a NumPy array (for checks)."""
    if hasattr(value, "detach"):  # a torch tensor
        return np.asarray(value.detach().cpu().numpy())
    return np.asarray(value)


@dataclass
class Target:
    """Where a script's torch side runs, until when its cases start, and how its file is named.

    ``Target()`` is the scripts' command-line run: torch on CPU, no deadline, results in
    ``<name>.json``, and a case that raises stops the run. benchmarks/accelerator.py runs the
    scripts on an accelerator with ``torch_device="cuda"`` (torch inputs copied there and every
    timed torch call ending in ``torch.cuda.synchronize()``), a ``deadline``
    (``time.monotonic()``) after which the remaining cases are skipped, ``platform`` (results in
    ``<name>_<platform>.json``, the device facts in the metadata) and ``keep_going`` (a case
    that raises is recorded in ``errors`` and the run goes on).
    """

    torch_device: str = "cpu"
    deadline: float | None = None
    platform: str | None = None
    keep_going: bool = False
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def has_time(self, case: str) -> bool:
        """Whether ``case`` may start; past the deadline, notes it as skipped and says no."""
        if self.deadline is None or time.monotonic() < self.deadline:
            return True
        print(f"skipped {case}: time budget spent", flush=True)
        self.skipped.append(case)
        return False

    @contextlib.contextmanager
    def guard(self, case: str) -> Iterator[None]:
        """Runs the ``with`` body; with ``keep_going``, an exception is recorded, not raised."""
        if not self.keep_going:
            yield
            return
        try:
            yield
        except Exception as err:
            self.errors[case] = f"{type(err).__name__}: {err}"
            print(f"FAILED {case}:", flush=True)
            traceback.print_exc()

    def to_torch(self, array: np.ndarray) -> Any:
        """``torch.from_numpy(array)``, copied to ``torch_device`` when that is not the CPU."""
        tensor = optional_torch().from_numpy(array)
        return tensor if self.torch_device == "cpu" else tensor.to(self.torch_device)

    def timed(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        """A torch callable for ``interleaved``: ``fn`` itself on CPU, else ``fn`` then a sync."""
        if self.torch_device == "cpu":
            return fn
        torch = optional_torch()

        def call() -> Any:
            out = fn()
            torch.cuda.synchronize()
            return out

        return call

    def results_name(self, name: str, quick: bool) -> str:
        """``<name>[_<platform>][_quick]``: the results file's name, for ``write_results``."""
        suffix = "" if self.platform is None else f"_{self.platform}"
        return f"{name}{suffix}{'_quick' if quick else ''}"

    def meta(self) -> dict[str, Any]:
        """Facts for the results' metadata: none for the command-line run (no ``platform``)."""
        if self.platform is None:
            return {}
        torch = optional_torch()
        device = jax.devices()[0]
        return {
            "platform": self.platform,
            "jax_device": str(device.device_kind),
            "jax_device_count": jax.device_count(),
            "torch_device": None if torch is None else self.torch_device,
            "torch_device_name": (
                torch.cuda.get_device_name()
                if torch is not None and self.torch_device.startswith("cuda")
                else None
            ),
            "skipped_cases": list(self.skipped),
            "failed_cases": dict(self.errors),
        }


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
    samples = interleaved_samples(fns, rounds=rounds, warmup=warmup, inner=inner)
    return {name: statistics.median(v) for name, v in samples.items()}


def interleaved_samples(
    fns: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 15,
    warmup: int = 2,
    inner: int = 1,
) -> dict[str, list[float]]:
    """``interleaved``'s per-round times: for each callable, its seconds per call, round by round.

    ``samples[name][r]`` is the time of ``name`` in round ``r`` (the mean over ``inner`` calls),
    so the callables' times in one round can be compared with each other (the round-to-round
    spread of such comparisons is what benchmarks/regression.py calls noise).
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
    return samples


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
