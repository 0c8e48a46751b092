"""Before/after benchmark: ``random_masking`` and ``unshuffle`` at a git ref against the tree.

A change to the ops must not slow the masking built on them. This script loads jgather twice
into one process -- the package as committed at ``--against`` (default ``ce540b8``, main before
issue 10's lowering changes) and the working tree's -- and times both, interleaved round by
round (benchmarks/_timing.py), on MAE's shapes. The old copy is extracted with ``git archive``
into a temporary folder and imported first; its functions keep their own module globals, so
the two copies coexist once ``sys.modules`` is cleared between the imports.

Run from the repository root (a git checkout): ``python -m benchmarks.masking_regression``
(``--quick``: small shapes, few rounds, written to masking_regression_quick.json;
``--no-write``: nothing written). Prints a markdown table; ``after_vs_before`` above 1 means
the tree is faster.
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import geomean, interleaved, metadata, ready, write_results

ROOT = Path(__file__).resolve().parent.parent


def _drop_jgather() -> None:
    for name in [m for m in sys.modules if m == "jgather" or m.startswith("jgather.")]:
        del sys.modules[name]


def _load_at(ref: str, folder: Path) -> Any:
    """jgather as committed at ``ref``, imported from ``folder``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "jgather"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    _drop_jgather()
    sys.path.insert(0, str(folder))
    try:
        module = importlib.import_module("jgather")
    finally:
        sys.path.remove(str(folder))
    assert Path(module.__file__).resolve().is_relative_to(folder.resolve()), module.__file__
    _drop_jgather()
    return module


def _load_tree() -> Any:
    _drop_jgather()
    sys.path.insert(0, str(ROOT))
    try:
        module = importlib.import_module("jgather")
    finally:
        sys.path.remove(str(ROOT))
    assert Path(module.__file__).resolve().is_relative_to(ROOT), module.__file__
    return module


def _cases(before: Any, after: Any, n: int, length: int, d: int, ratio: float, rounds: int):
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (n, length, d), jnp.float32)
    token = jnp.zeros((d,), jnp.float32)
    out = []
    for name, make in (
        ("random_masking", lambda jg: jax.jit(lambda k, x: jg.random_masking(k, x, ratio))),
        (
            "unshuffle",
            lambda jg: jax.jit(lambda xm, ids: jg.unshuffle(xm, ids, token, num_prefix=0)),
        ),
    ):
        fb, fa = make(before), make(after)
        if name == "random_masking":
            args: tuple[Any, ...] = (key, x)
            np.testing.assert_array_equal(np.asarray(fb(*args)[0]), np.asarray(fa(*args)[0]))
        else:
            masked = after.random_masking(key, x, ratio)
            args = (masked.x_masked, masked.ids_restore)
            np.testing.assert_array_equal(np.asarray(fb(*args)), np.asarray(fa(*args)))
        med = interleaved(
            {"before": ready(fb, *args), "after": ready(fa, *args)}, rounds=rounds, warmup=2
        )
        case = {
            "fn": name,
            "shape": [n, length, d],
            "mask_ratio": ratio,
            "median_s": med,
            "after_vs_before": med["before"] / med["after"],
        }
        print(
            f"| {name} | [{n}, {length}, {d}] | {med['before'] * 1e3:.3f} | "
            f"{med['after'] * 1e3:.3f} | {case['after_vs_before']:.2f}x |",
            flush=True,
        )
        out.append(case)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", default="ce540b8", help="git ref of the 'before' copy")
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 21
    shapes = [(16, 196, 768)] if args.quick else [(256, 196, 768), (64, 1568, 384), (1024, 64, 64)]
    with tempfile.TemporaryDirectory() as tmp:
        before = _load_at(args.against, Path(tmp))
        after = _load_tree()
        print(f"before: jgather at {args.against}; after: the working tree")
        print("| function | x | before ms | after ms | after vs before |")
        print("|---|---|---|---|---|")
        cases = []
        for n, length, d in shapes:
            cases += _cases(before, after, n, length, d, 0.75, rounds)
    summary = {"geomean_after_vs_before": geomean([c["after_vs_before"] for c in cases])}
    print(f"\ngeomean after vs before: {summary['geomean_after_vs_before']:.2f}")
    meta = {**metadata(), "rounds": rounds, "quick": args.quick, "against": args.against}
    if not args.no_write:
        name = "masking_regression_quick" if args.quick else "masking_regression"
        path = write_results(name, {"meta": meta, "cases": cases, "summary": summary})
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
