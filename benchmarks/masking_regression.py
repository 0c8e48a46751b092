"""Before/after benchmark: ``random_masking`` and ``unshuffle`` at a git ref against the tree.

A change to the ops must not slow the masking built on them. A thin wrapper over
benchmarks/regression.py (which loads jgather twice into one process, checks that both copies
agree and times them interleaved round by round; its docstring defines the noise behind each
verdict), restricted to the masking, on MAE's image, video and small shapes, and compared by
default with ``ce540b8`` (main before an earlier lowering change).

Run from the repository root (a git checkout): ``python -m benchmarks.masking_regression``
(``--quick``: small shapes, few rounds, written to masking_regression_quick.json;
``--no-write``: nothing written). Prints a markdown table; ``after_vs_before`` above 1 means
the tree is faster.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._timing import geomean, metadata, write_results
from benchmarks.regression import Rounds, load_at, load_tree, masking_cases, run_case

RATIO = 0.75


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the cases and returns the results (also written to JSON unless ``--no-write``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", default="ce540b8", help="git ref of the 'before' copy")
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 21
    shapes = [(16, 196, 768)] if args.quick else [(256, 196, 768), (64, 1568, 384), (1024, 64, 64)]
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        before = load_at(args.against, Path(tmp))
        after = load_tree()
        print(f"before: jgather at {args.against}; after: the working tree; {rounds} rounds")
        print("| function | x | before ms | after ms | after vs before | verdict |")
        print("|---|---|---|---|---|---|")
        todo = list(masking_cases(shapes, RATIO, after))
        per_shape = len(todo) // len(shapes)
        for case, shape in zip(todo, [s for s in shapes for _ in range(per_shape)], strict=True):
            result = run_case(case, before, after, Rounds(rounds, rounds, 0))
            med = result["median_s"]
            cases.append(
                {
                    "fn": case.name,
                    "shape": list(shape),
                    "mask_ratio": RATIO,
                    "median_s": med,
                    "after_vs_before": result["speed"],
                    "noise": result["noise"],
                    "verdict": result["verdict"],
                }
            )
            print(
                f"| {case.name} | {list(shape)} | {med['before'] * 1e3:.3f} | "
                f"{med['after'] * 1e3:.3f} | {result['speed']:.2f}x | {result['verdict']} |",
                flush=True,
            )
    summary = {"geomean_after_vs_before": geomean([c["after_vs_before"] for c in cases])}
    print(f"\ngeomean after vs before: {summary['geomean_after_vs_before']:.2f}")
    meta = {**metadata(), "rounds": rounds, "quick": args.quick, "against": args.against}
    payload = {"meta": meta, "cases": cases, "summary": summary}
    if not args.no_write:
        name = "masking_regression_quick" if args.quick else "masking_regression"
        print(f"wrote {write_results(name, payload)}")
    return payload


if __name__ == "__main__":
    main()
