"""The ops, segment and masking benchmarks on the accelerator JAX finds, against torch on CUDA.

Run from the repository root, on the machine with the GPU or TPU::

    python -m benchmarks.accelerator                       # full shapes, within 450 s
    python -m benchmarks.accelerator --quick               # small shapes, few rounds (smoke test)
    python -m benchmarks.accelerator --budget-seconds 300 --benchmarks ops,segment

It runs the cases of benchmarks/ops.py, benchmarks/segment.py and benchmarks/masking.py (their
own code, shapes and rounds, timed with benchmarks/_timing.py) on ``jax.devices()[0]``: a GPU
(platform ``gpu``), a TPU (``tpu``), or the CPU (``cpu``, for trying the script out). The torch
columns run on the torch CUDA device when ``torch.cuda.is_available()`` (inputs copied there
once, each timed torch call ending in ``torch.cuda.synchronize()``); on a JAX CPU run, or
without CUDA, torch runs on the CPU as in the scripts themselves. JAX's GPU memory
preallocation is turned off (``XLA_PYTHON_CLIENT_PREALLOCATE=false`` unless set) so that
torch's CUDA allocations fit next to JAX's.

The time budget (``--budget-seconds``, default 450) is shared out between the scripts (what one
leaves unused passes to the next); a case starts only while its script's share lasts, and the
remaining cases are skipped with a printed note. A case is never cut short, so a run ends
within about one case's time (seconds on an accelerator) of the budget: under 8 minutes with
the default. A case that raises is reported and the run goes on.

Writes ``benchmarks/results/<name>_<platform>.json`` (``ops_gpu.json``, ``segment_gpu.json``,
``masking_gpu.json``; with ``--quick``, ``<name>_<platform>_quick.json``, git-ignored;
``--no-write``: nothing), in the scripts' own format; their ``meta`` adds the platform, the
JAX device kind, the torch device and its name, and the cases skipped or failed. Ends with a
markdown table of every case's ratios (> 1: jgather faster).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import jax

from benchmarks import masking, ops, segment
from benchmarks._timing import Target, optional_torch

# Each script's share of the time left when it starts, relative to the scripts still to run.
WEIGHTS: dict[str, float] = {"ops": 0.4, "segment": 0.15, "masking": 0.45}
MAINS: dict[str, Callable[[list[str], Target], dict[str, Any]]] = {
    "ops": ops.main,
    "segment": segment.main,
    "masking": masking.main,
}


def platform_name(platform: str) -> str:
    """The results-file name of a JAX platform: ``gpu`` for CUDA, else the platform itself."""
    return "gpu" if platform in ("gpu", "cuda") else platform


def choose_torch_device(torch: Any, platform: str) -> str:
    """``cuda`` when torch sees a CUDA device and JAX runs on an accelerator, else ``cpu``."""
    if torch is not None and platform != "cpu" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def summary_rows(name: str, payload: dict[str, Any]) -> list[str]:
    """Markdown rows, one per case: jgather and torch medians, ratios vs torch and vs JAX."""
    rows = []
    for case in payload.get("cases", []):
        med = case["median_s"]
        if name == "ops":
            torch_s, vs_torch, vs_jax = med.get("torch"), case["vs_torch"], case["vs_jax"]
            note = f"JAX: {' / '.join(case['idiomatic'])}; pib vs JAX {case['pib_vs_jax']:.2f}x"
        elif name == "segment":
            torch_s = med.get("torch")
            vs_torch, vs_jax = case["speedup_vs_torch"], case["speedup_vs_jax_ops"]
            note = "JAX: jax.ops.segment_*"
        else:
            torch_s = med.get("torch_reference")
            vs_torch, vs_jax = case["speedup_vs_torch"], case["speedup_vs_port"]
            note = f"JAX: line-by-line port; {case['ratio_to_copy']:.2f}x a copy"
        rows.append(
            f"| {name} | {case['case']} | {_ms(med['jgather'])} | {_ms(torch_s)} | "
            f"{_ratio(vs_torch)} | {_ratio(vs_jax)} | {note} |"
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON files")
    parser.add_argument(
        "--budget-seconds",
        type=float,
        default=450.0,
        help="no case starts after this many seconds (default 450)",
    )
    parser.add_argument(
        "--benchmarks",
        default=",".join(MAINS),
        help=f"comma-separated scripts to run, in this order (default {','.join(MAINS)})",
    )
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.benchmarks.split(",") if n.strip()]
    unknown = [n for n in names if n not in MAINS]
    if unknown:
        parser.error(f"unknown benchmarks {unknown}; choose from {list(MAINS)}")

    # Before JAX creates its GPU client (importing jgather and the scripts creates none).
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    start = time.monotonic()
    deadline = start + args.budget_seconds
    device = jax.devices()[0]
    platform = platform_name(device.platform)
    torch = optional_torch()
    torch_device = choose_torch_device(torch, device.platform)
    if torch is None:
        torch_desc = "not installed (torch columns null)"
    elif torch_device == "cuda":
        torch_desc = f"{torch.__version__} on {torch.cuda.get_device_name()}"
    else:
        torch_desc = f"{torch.__version__} on CPU, {torch.get_num_threads()} threads"
    header = f"JAX {jax.__version__} on {device.device_kind} ({device.platform})"
    header += f"; torch {torch_desc}"
    print(f"# {header}; budget {args.budget_seconds:.0f} s{'; quick' if args.quick else ''}\n")

    payloads: dict[str, dict[str, Any]] = {}
    problems: list[str] = []
    for i, name in enumerate(names):
        now = time.monotonic()
        if now >= deadline:
            print(f"skipped {name}: time budget spent\n", flush=True)
            problems.append(f"{name}: skipped whole (time budget spent)")
            continue
        later = sum(WEIGHTS[n] for n in names[i:])
        share = (deadline - now) * WEIGHTS[name] / later
        print(f"## {name} ({share:.0f} s of the {deadline - now:.0f} s left)\n", flush=True)
        target = Target(
            torch_device=torch_device, deadline=now + share, platform=platform, keep_going=True
        )
        argv_i = (["--quick"] if args.quick else []) + (["--no-write"] if args.no_write else [])
        try:
            payloads[name] = MAINS[name](argv_i, target)
        except Exception as err:  # outside any one case (set-up, summary, writing)
            problems.append(f"{name}: failed outside its cases: {type(err).__name__}: {err}")
            print(f"FAILED {name}: {type(err).__name__}: {err}", flush=True)
        problems += [f"{name}: {case}: skipped (time budget spent)" for case in target.skipped]
        problems += [f"{name}: {case}: failed: {msg}" for case, msg in target.errors.items()]
        print(f"\n{name} took {time.monotonic() - now:.0f} s\n", flush=True)

    print(f"## Summary: {header}\n")
    print("| benchmark | case | jgather ms | torch ms | vs torch | vs JAX | |")
    print("|---|---|---|---|---|---|---|")
    for name, payload in payloads.items():
        for row in summary_rows(name, payload):
            print(row)
    print()
    for name, payload in payloads.items():
        means = {
            k: v
            for k, v in payload.get("summary", {}).items()
            if "geomean" in k and isinstance(v, float)
        }
        print(f"- {name}: " + (", ".join(f"{k} {v:.2f}" for k, v in means.items()) or "no cases"))
    for problem in problems:
        print(f"- {problem}")
    print(f"\ntotal {time.monotonic() - start:.0f} s (budget {args.budget_seconds:.0f} s)")


if __name__ == "__main__":
    main()
