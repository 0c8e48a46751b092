"""Benchmark of jgather's gather/scatter ops against torch (CPU) and a straightforward JAX port.

Run from the repository root::

    python -m benchmarks.ops            # full run (a few minutes on 2 cores)
    python -m benchmarks.ops --quick    # small shapes, few rounds (development)

Every case times, in one process and interleaved round by round (benchmarks/_timing.py):

* ``jgather``: the jitted jgather op;
* ``torch``: the torch op on CPU (when torch is installed), with as many intra-op threads as
  XLA's CPU backend uses (all cores);
* ``jax_port``: what a port usually writes: ``jnp.take_along_axis`` for gathers, a full iota
  index grid plus ``.at[].add`` for scatters.

Writes ``benchmarks/results/ops.json`` (``--quick`` writes ``ops_quick.json``) and prints a
markdown table of median times and ratios.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jgather
from benchmarks._timing import (
    geomean,
    interleaved,
    metadata,
    optional_torch,
    ready,
    torch_line,
    write_results,
)

torch = optional_torch()  # optional; the ratios against it are then null


def _port_gather(x, idx, dim):
    return jnp.take_along_axis(x, idx, axis=dim)


def _port_scatter_add(x, idx, src, dim):
    grid = list(jnp.meshgrid(*[jnp.arange(n) for n in idx.shape], indexing="ij"))
    grid[dim] = idx
    return x.at[tuple(grid)].add(src)


_jg_gather = jax.jit(lambda x, i, dim: jgather.gather(x, dim, i), static_argnums=2)
_jg_scatter_add = jax.jit(lambda x, i, s, dim: jgather.scatter_add(x, dim, i, s), static_argnums=3)
_jx_gather = jax.jit(_port_gather, static_argnums=2)
_jx_scatter_add = jax.jit(_port_scatter_add, static_argnums=3)


def _gather_case(name, shape, x, idx, dim, rounds):
    jx, ji = jnp.asarray(x), jnp.asarray(idx, jnp.int32)
    fns = {
        "jgather": ready(lambda: _jg_gather(jx, ji, dim)),
        "jax_port": ready(lambda: _jx_gather(jx, ji, dim)),
    }
    if torch is not None:
        tx, ti = torch.from_numpy(x), torch.from_numpy(idx.astype(np.int64))
        fns["torch"] = lambda: torch.gather(tx, dim, ti)
        np.testing.assert_array_equal(np.asarray(fns["jgather"]()), fns["torch"]().numpy())
    out_bytes = int(np.prod(idx.shape)) * x.dtype.itemsize
    return _record("gather", name, shape, out_bytes, interleaved(fns, rounds=rounds, warmup=1))


def _scatter_case(name, shape, nodes, idx, src, dim, rounds):
    x = np.zeros(nodes, src.dtype)
    jx, ji, js = jnp.asarray(x), jnp.asarray(idx, jnp.int32), jnp.asarray(src)
    fns = {
        "jgather": ready(lambda: _jg_scatter_add(jx, ji, js, dim)),
        "jax_port": ready(lambda: _jx_scatter_add(jx, ji, js, dim)),
    }
    if torch is not None:
        tx, ti, ts = (torch.from_numpy(x), torch.from_numpy(idx.astype(np.int64)),
                      torch.from_numpy(src))  # fmt: skip
        fns["torch"] = lambda: tx.scatter_add(dim, ti, ts)
        np.testing.assert_allclose(
            np.asarray(fns["jgather"]()), fns["torch"]().numpy(), rtol=1e-4, atol=1e-3
        )
    out_bytes = x.size * x.dtype.itemsize
    return _record("scatter_add", name, shape, out_bytes, interleaved(fns, rounds=rounds, warmup=1))


def _record(op, name, shape, out_bytes, med):
    t = med.get("torch")
    case = {
        "op": op,
        "case": name,
        "shape": shape,
        "output_bytes": out_bytes,
        "median_s": med,
        "speedup_vs_torch": None if t is None else t / med["jgather"],
        "speedup_vs_port": med["jax_port"] / med["jgather"],
    }
    ratio = "-" if t is None else f"{case['speedup_vs_torch']:.2f}x"
    print(
        f"| {op} | {name} | {shape} | {med['jgather'] * 1e3:.2f} | "
        f"{'-' if t is None else f'{t * 1e3:.2f}'} | {med['jax_port'] * 1e3:.2f} | {ratio} | "
        f"{case['speedup_vs_port']:.2f}x |",
        flush=True,
    )
    return case


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    q = args.quick
    rounds = 3 if q else 21
    threads = os.cpu_count() or 1
    if torch is not None:
        torch.set_num_threads(threads)
    print(torch_line(torch))
    rng = np.random.default_rng(0)
    print("| op | case | shape | jgather ms | torch ms | jax port ms | vs torch | vs port |")
    print("|---|---|---|---|---|---|---|---|")
    cases = []

    # MAE: keep 25% of the tokens of each image, torch-style index expanded over features.
    n, seq, d, keep = (32, 196, 768, 49) if q else (256, 196, 768, 49)
    x = rng.standard_normal((n, seq, d), np.float32)
    ids = np.argsort(rng.random((n, seq)), axis=1)[:, :keep]
    idx = np.broadcast_to(ids[:, :, None], (n, keep, d))
    cases.append(_gather_case(
        "mae_token_gather", f"x[{n},{seq},{d}] index[{n},{keep},{d}] dim=1", x, idx, 1, rounds
    ))  # fmt: skip

    m = 1024 if q else 4096
    x = rng.standard_normal((m, m), np.float32)
    idx = rng.integers(0, m, (m // 4, m))
    cases.append(_gather_case("row_gather", f"x[{m},{m}] index[{m // 4},{m}] dim=0", x, idx, 0,
                              rounds))  # fmt: skip
    idx = rng.integers(0, m, (m, m // 4))
    cases.append(_gather_case("column_gather", f"x[{m},{m}] index[{m},{m // 4}] dim=1", x, idx,
                              1, rounds))  # fmt: skip

    src_n, idx_n = (1 << 20, 1 << 18) if q else (1 << 24, 1 << 22)
    x = rng.standard_normal(src_n, np.float32)
    idx = rng.integers(0, src_n, idx_n)
    cases.append(_gather_case("gather_1d", f"x[{src_n}] index[{idx_n}] dim=0", x, idx, 0,
                              rounds))  # fmt: skip

    bt, vocab, k = (512, 8000, 8) if q else (4096, 32000, 8)
    x = rng.standard_normal((bt, vocab), np.float32)
    idx = rng.integers(0, vocab, (bt, k))
    cases.append(_gather_case("per_token_last_axis", f"logits[{bt},{vocab}] index[{bt},{k}] "
                              "dim=-1", x, idx, -1, rounds))  # fmt: skip

    # Graph message passing: E edge messages of F features summed into V nodes, torch-style
    # (the destination of each edge expanded over the features).
    e, f, v = (100_000, 64, 10_000) if q else (1_000_000, 64, 100_000)
    dst = rng.integers(0, v, e)
    src = rng.standard_normal((e, f), np.float32)
    cases.append(_scatter_case(
        "graph_scatter_add", f"nodes[{v},{f}] index[{e},{f}] (expanded) dim=0", (v, f),
        np.broadcast_to(dst[:, None], (e, f)), src, 0, rounds,
    ))  # fmt: skip
    e2 = e // 4
    idx = rng.integers(0, v, (e2, f))
    cases.append(_scatter_case(
        "scatter_add_random_index", f"nodes[{v},{f}] index[{e2},{f}] (per element) dim=0",
        (v, f), idx, src[:e2], 0, rounds,
    ))  # fmt: skip
    values = 1_000_000 if q else 10_000_000
    vals = rng.standard_normal(values, np.float32)
    for bins in (1_000, 100_000):
        idx = rng.integers(0, bins, values)
        cases.append(_scatter_case(
            f"histogram_{bins}_bins", f"bins[{bins}] index[{values}] dim=0", (bins,), idx,
            vals, 0, rounds,
        ))  # fmt: skip

    summary: dict[str, Any] = {}
    for op in ("gather", "scatter_add"):
        rs = [c["speedup_vs_torch"] for c in cases if c["op"] == op]
        if rs and None not in rs:
            summary[f"{op}_geomean_speedup_vs_torch"] = geomean(rs)
        summary[f"{op}_geomean_speedup_vs_port"] = geomean(
            [c["speedup_vs_port"] for c in cases if c["op"] == op]
        )
    summary["threads"] = {"xla_cpu": threads, "torch": torch.get_num_threads() if torch else None}
    print()
    for key, value in summary.items():
        print(f"{key}: {value if isinstance(value, dict) else f'{value:.2f}'}")
    meta = {**metadata(), "rounds": rounds, "quick": q}
    if not args.no_write:
        path = write_results("ops_quick" if q else "ops", {"meta": meta, "cases": cases,
                                                          "summary": summary})  # fmt: skip
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
