"""Benchmark of jgather.segment (torch_scatter's API) on a GNN-size job.

Run from the repository root::

    python -m benchmarks.segment            # 1M edges x 64 features into 100k nodes
    python -m benchmarks.segment --quick    # 100k edges x 16 into 10k nodes, few rounds

Every case times, in one process and interleaved round by round (benchmarks/_timing.py):

* ``jgather``: the ``jgather.segment`` call inside ``jax.jit`` (static ``dim_size``), as in a
  model; an eager call adds the concrete-index bounds check (a host read of the index);
* ``jax_ops``: the same job written with ``jax.ops.segment_*`` (what a JAX port writes today:
  segment_max has no argmax, so that case adds the usual compare-and-segment_min re-statement;
  softmax is segment_max, exp, segment_sum and two gathers);
* ``torch``: torch's native equivalent on CPU (``index_add_``, ``index_reduce_``,
  ``scatter_reduce``, ``segment_reduce``), when torch is installed. torch_scatter itself is not
  timed (a compiled extension that is not installed here).

Unsorted cases draw edge targets uniformly; sorted cases sort them (``segment_coo``) or turn
them into CSR pointers (``segment_csr``). Writes ``benchmarks/results/segment.json``
(``--quick``: ``segment_quick.json``) and prints a markdown table of medians and ratios.
benchmarks/accelerator.py runs the same cases on a GPU or TPU (``main``'s ``target``).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jgather.segment as seg
from benchmarks._timing import (
    Target,
    geomean,
    interleaved,
    metadata,
    optional_torch,
    ready,
    to_numpy,
    torch_line,
    write_results,
)

torch = optional_torch()  # optional; the ratios against it are then null


def _jax_cases(n):
    """The jax.ops.segment_* re-statements, jitted with a static segment count."""

    @jax.jit
    def add(src, idx):
        return jax.ops.segment_sum(src, idx, num_segments=n)

    @jax.jit
    def mean(src, idx):
        total = jax.ops.segment_sum(src, idx, num_segments=n)
        count = jax.ops.segment_sum(jnp.ones(idx.shape, src.dtype), idx, num_segments=n)
        return total / jnp.maximum(count, 1)[:, None]

    @jax.jit
    def argmax(src, idx):
        best = jax.ops.segment_max(src, idx, num_segments=n)
        e = src.shape[0]
        pos = jnp.where(src == best[idx], jnp.arange(e, dtype=jnp.int32)[:, None], e)
        arg = jnp.minimum(jax.ops.segment_min(pos, idx, num_segments=n), e)  # empty: sentinel
        return jnp.where(arg < e, best, 0), arg

    @jax.jit
    def softmax(src, idx):
        m = jax.ops.segment_max(src, idx, num_segments=n)
        e = jnp.exp(src - m[idx])
        return e / jax.ops.segment_sum(e, idx, num_segments=n)[idx]

    @jax.jit
    def sorted_add(src, idx):
        return jax.ops.segment_sum(src, idx, num_segments=n, indices_are_sorted=True)

    return add, mean, argmax, softmax, sorted_add


def _torch_cases(n, f):
    """torch's equivalents; new tensors go on the inputs' device."""

    def add(src, idx):
        return torch.zeros(n, f, device=src.device).index_add_(0, idx, src)

    def mean(src, idx):
        out = torch.zeros(n, f, device=src.device)
        return out.index_reduce_(0, idx, src, "mean", include_self=False)

    def argmax(src, idx):
        best = torch.zeros(n, f, device=src.device)
        best = best.index_reduce_(0, idx, src, "amax", include_self=False)
        e = src.shape[0]
        pos = torch.arange(e, device=src.device).unsqueeze(1).expand_as(src)
        cand = torch.where(src == best.index_select(0, idx), pos, e)
        arg = torch.full((n, f), e, device=src.device).scatter_reduce_(
            0, idx.unsqueeze(1).expand_as(src), cand, "amin"
        )
        return best, arg

    def softmax(src, idx):
        m = torch.full((n, f), -torch.inf, device=src.device)
        m = m.index_reduce_(0, idx, src, "amax")
        ex = (src - m.index_select(0, idx)).exp()
        total = torch.zeros(n, f, device=src.device).index_add_(0, idx, ex)
        return ex / total.index_select(0, idx)

    def csr_sum(src, indptr):
        return torch.segment_reduce(src, "sum", offsets=indptr, axis=0)

    return add, mean, argmax, softmax, csr_sum


def _record(case, shape, med, note=""):
    t, j = med.get("torch"), med.get("jax_ops")
    row = {
        "case": case,
        "shape": shape,
        "note": note,
        "median_s": med,
        "speedup_vs_torch": None if t is None else t / med["jgather"],
        "speedup_vs_jax_ops": None if j is None else j / med["jgather"],
    }
    ms = lambda v: "-" if v is None else f"{v * 1e3:.1f}"
    ratio = lambda v: "-" if v is None else f"{v:.2f}x"
    print(
        f"| {case} | {ms(med['jgather'])} | {ms(j)} | {ms(t)} | "
        f"{ratio(row['speedup_vs_jax_ops'])} | {ratio(row['speedup_vs_torch'])} |",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None, target: Target | None = None) -> dict[str, Any]:
    """Runs the cases and returns the results (also written to JSON unless ``--no-write``).

    ``target``: see benchmarks/_timing.py (the default is the command-line run).
    """
    target = target or Target()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    args = parser.parse_args(argv)
    q = args.quick
    e, f, n = (100_000, 16, 10_000) if q else (1_000_000, 64, 100_000)
    rounds = 5 if q else 11
    threads = os.cpu_count() or 1
    if torch is not None:
        torch.set_num_threads(threads)
    print(torch_line(torch))
    rng = np.random.default_rng(0)
    src = rng.standard_normal((e, f), dtype=np.float32)
    idx = rng.integers(0, n, e).astype(np.int32)
    order = np.argsort(idx, kind="stable")
    sidx, ssrc = idx[order], src[order]
    indptr = np.searchsorted(sidx, np.arange(n + 1)).astype(np.int32)
    shape = f"src [{e}, {f}] -> [{n}, {f}], dim 0"
    js, ji = jnp.asarray(src), jnp.asarray(idx)
    jss, jsi, jptr = jnp.asarray(ssrc), jnp.asarray(sidx), jnp.asarray(indptr)
    j_add, j_mean, j_arg, j_soft, j_sadd = _jax_cases(n)
    g_sum = jax.jit(lambda s, i: seg.scatter_sum(s, i, 0, dim_size=n))
    g_mean = jax.jit(lambda s, i: seg.scatter_mean(s, i, 0, dim_size=n))
    g_arg = jax.jit(lambda s, i: seg.scatter_max(s, i, 0, dim_size=n))
    g_soft = jax.jit(lambda s, i: seg.scatter_softmax(s, i, 0, dim_size=n))
    g_coo = jax.jit(lambda s, i: seg.segment_coo(s, i, dim_size=n))
    g_csr = jax.jit(seg.segment_csr)
    if torch is not None:
        ts, ti = target.to_torch(src), target.to_torch(idx.astype(np.int64))
        tss, tsi = target.to_torch(ssrc), target.to_torch(sidx.astype(np.int64))
        tptr = target.to_torch(indptr.astype(np.int64))
        t_add, t_mean, t_arg, t_soft, t_csr = _torch_cases(n, f)

    specs = [
        ("scatter_sum (unsorted)", lambda: g_sum(js, ji),
         lambda: j_add(js, ji), (lambda: t_add(ts, ti)) if torch else None, "torch: index_add_"),
        ("scatter_mean (unsorted)", lambda: g_mean(js, ji),
         lambda: j_mean(js, ji), (lambda: t_mean(ts, ti)) if torch else None,
         "torch: index_reduce_('mean')"),
        ("scatter_max + argmax (unsorted)", lambda: g_arg(js, ji),
         lambda: j_arg(js, ji), (lambda: t_arg(ts, ti)) if torch else None,
         "jax/torch: max, then compare + min of positions"),
        ("scatter_softmax (unsorted)", lambda: g_soft(js, ji),
         lambda: j_soft(js, ji), (lambda: t_soft(ts, ti)) if torch else None,
         "max, exp, sum, gathers"),
        ("segment_coo sum (sorted)", lambda: g_coo(jss, jsi),
         lambda: j_sadd(jss, jsi), (lambda: t_add(tss, tsi)) if torch else None,
         "jax: indices_are_sorted=True; torch: index_add_"),
        ("segment_csr sum (sorted)", lambda: g_csr(jss, jptr),
         lambda: j_sadd(jss, jsi), (lambda: t_csr(tss, tptr)) if torch else None,
         "jax: segment_sum on the sorted ids; torch: segment_reduce(offsets=)"),
    ]  # fmt: skip
    print(f"{shape}; {rounds} interleaved rounds, medians\n")
    print("| case | jgather ms | jax.ops ms | torch ms | vs jax.ops | vs torch |")
    print("|---|---|---|---|---|---|")
    cases = []
    for name, jg, jx, tt, note in specs:
        if not target.has_time(name):
            continue
        with target.guard(name):
            fns = {"jgather": ready(jg), "jax_ops": ready(jx)}
            if tt is not None:
                fns["torch"] = target.timed(tt)  # on CUDA: synchronized
            a, b = (
                jax.tree.map(np.asarray, fns["jgather"]()),
                jax.tree.map(np.asarray, fns["jax_ops"]()),
            )
            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
                np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=name)
            if tt is not None:
                c = jax.tree.map(to_numpy, tt())
                c = c if isinstance(c, tuple) else (c,)
                for x, y in zip(jax.tree.leaves(a), c, strict=True):
                    np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5, err_msg=name)
            cases.append(_record(name, shape, interleaved(fns, rounds=rounds, warmup=1), note))
    summary: dict[str, Any] = {}
    if cases:  # none: every case skipped (time budget) or failed
        summary["geomean_speedup_vs_jax_ops"] = geomean([c["speedup_vs_jax_ops"] for c in cases])
    summary["threads"] = {"xla_cpu": threads, "torch": torch.get_num_threads() if torch else None}
    if cases and torch is not None:
        summary["geomean_speedup_vs_torch"] = geomean([c["speedup_vs_torch"] for c in cases])
    print()
    for key, value in summary.items():
        print(f"{key}: {value if isinstance(value, dict) else f'{value:.2f}'}")
    meta = {**metadata(), **target.meta(), "rounds": rounds, "quick": q,
            "edges": e, "features": f, "nodes": n}  # fmt: skip
    payload = {"meta": meta, "cases": cases, "summary": summary}
    if not args.no_write:
        print(f"wrote {write_results(target.results_name('segment', q), payload)}")
    return payload


if __name__ == "__main__":
    main()
