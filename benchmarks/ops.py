"""Benchmark of jgather's gather/scatter ops against torch (CPU) and the JAX a user would write.

Run from the repository root::

    python -m benchmarks.ops            # full run (a few minutes on 2 cores)
    python -m benchmarks.ops --quick    # small shapes, few rounds (development)

Every case times, in one process and interleaved round by round (benchmarks/_timing.py):

* ``jgather``: the jgather op in its default mode (out-of-range values fill or drop, checkify
  can report them), inside ``jax.jit``;
* ``jgather_pib``: the same op with ``mode='promise_in_bounds'``;
* the idiomatic JAX for the same job, inside ``jax.jit``: ``jnp.take_along_axis`` for gathers;
  for scatters ``x.at[...].add`` with the natural index (the per-element index plus an iota
  for the other axis, or the edge destinations ``dst`` for the ``expand`` idiom) and
  ``jax.ops.segment_sum`` where it expresses the job;
* ``torch``: the torch op on CPU (when torch is installed), with as many intra-op threads as
  XLA's CPU backend uses (all cores);
* for some cases ``bound``: the leanest XLA lowering found for the job, with work done outside
  the timed call (pre-flattened keys and updates passed in as arguments), to show what bounds
  the case.

The graph and histogram cases aggregate into fresh zeros (made inside each jitted function;
``torch.zeros(...).scatter_add_`` for torch), as that job is written; the other scatters add
into an existing array that each implementation must leave intact (torch's out-of-place
``scatter_add``).

``tiny`` cases have outputs under 64 KiB; their target is the jitted op within 1.5x of the bare
jitted ``jnp`` op of the same job (``take_along_axis``, ``.at[].add``). They also time the eager
call of the public function (its argument checks, the host-side bounds check torch's
``IndexError`` needs, then the jitted core) and a bare jitted ``x + 1`` of the output's size.

The ratios: ``vs_torch`` is torch's median over jgather's, ``vs_jax`` the fastest idiomatic
JAX median over jgather's (> 1: jgather faster). Writes ``benchmarks/results/ops.json``
(``--quick`` writes ``ops_quick.json``) and prints a markdown table. benchmarks/accelerator.py
runs the same cases on a GPU or TPU (``main``'s ``target``).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jgather
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
from jgather import _rows

torch = optional_torch()  # optional; the ratios against it are then null

PIB = "promise_in_bounds"


def _jit_gather(dim: int, mode: str | None = None) -> Callable[..., Any]:
    return jax.jit(lambda x, i: jgather.gather(x, dim, i, mode=mode))


def _same(a: jax.Array) -> jax.Array:
    return a


def _jit_scatter_add(dim: int, mode: str | None = None, base: Any = _same) -> Callable[..., Any]:
    return jax.jit(lambda x, i, s: jgather.scatter_add(base(x), dim, i, s, mode=mode))


def _natural_at_add(dim: int, base: Any = _same) -> Callable[..., Any]:
    """``x.at[...].add(src)`` with the per-element index on ``dim`` and iotas elsewhere."""

    def f(x: jax.Array, i: jax.Array, s: jax.Array) -> jax.Array:
        grid = tuple(
            i if d == dim else lax.broadcasted_iota(jnp.int32, i.shape, d) for d in range(i.ndim)
        )
        return base(x).at[grid].add(s)

    return jax.jit(f)


def _bound_flat_scatter_add(base: Any = _same) -> Callable[..., Any]:
    """One ``lax.scatter_add`` on flat int32 keys and flat updates passed in as arguments."""
    dnums = lax.ScatterDimensionNumbers((), (0,), (0,))

    def f(x: jax.Array, keys: jax.Array, updates: jax.Array) -> jax.Array:
        out = lax.scatter_add(
            base(x).reshape(-1),
            keys[:, None],
            updates,
            dnums,
            mode=lax.GatherScatterMode.FILL_OR_DROP,
        )
        return out.reshape(x.shape)

    return jax.jit(f)


def _flat_keys(idx: np.ndarray, shape: tuple[int, ...], dim: int) -> np.ndarray:
    """Flat positions in an array of ``shape`` of a per-element index along ``dim``."""
    grid = np.indices(idx.shape, sparse=True)
    coords = [idx if d == dim else grid[d] for d in range(idx.ndim)]
    return np.ravel_multi_index(np.broadcast_arrays(*coords), shape).astype(np.int32).reshape(-1)


class Bench:
    def __init__(self, rounds: int, target: Target | None = None) -> None:
        self.rounds = rounds
        self.target = target or Target()
        self.cases: list[dict[str, Any]] = []

    def run(
        self,
        op: str,
        name: str,
        shape: str,
        fns: dict[str, Callable[[], Any]],
        *,
        idiomatic: tuple[str, ...],
        out_bytes: int,
        check: Callable[[Any, Any], None],
        tiny: bool = False,
    ) -> None:
        if "torch" in fns:  # on CUDA: synchronized
            fns["torch"] = self.target.timed(fns["torch"])
        with self.target.guard(name):
            self._run(op, name, shape, fns, idiomatic, out_bytes, check, tiny)

    def _run(
        self,
        op: str,
        name: str,
        shape: str,
        fns: dict[str, Callable[[], Any]],
        idiomatic: tuple[str, ...],
        out_bytes: int,
        check: Callable[[Any, Any], None],
        tiny: bool,
    ) -> None:
        ref = fns["jgather"]()
        for key, fn in fns.items():
            if key != "jgather" and not key.startswith("bare"):
                got = fn()
                if isinstance(got, tuple):  # a bound that also returns its test's result
                    got = got[0]
                check(to_numpy(got), np.asarray(ref))
        med = interleaved(fns, rounds=self.rounds, warmup=2, inner=20 if tiny else 1)
        jg = med["jgather"]
        best = min(med[k] for k in idiomatic)
        case: dict[str, Any] = {
            "op": op,
            "case": name,
            "shape": shape,
            "output_bytes": out_bytes,
            "tiny": tiny,
            "idiomatic": list(idiomatic),
            "median_s": med,
            "vs_torch": med["torch"] / jg if "torch" in med else None,
            "vs_jax": best / jg,
            # (ops without a mode= for out-of-range values have no promise_in_bounds time)
            "pib_vs_torch": med["torch"] / med["jgather_pib"]
            if "torch" in med and "jgather_pib" in med
            else None,
            "pib_vs_jax": best / med["jgather_pib"] if "jgather_pib" in med else None,
        }
        if "bound" in med:
            case["bound_vs_jgather"] = jg / med["bound"]
        if "bare_rows" in med:  # the row gather alone (embedding_bag's floor in JAX)
            case["rows_gather_s"] = med["bare_rows"]
        if "bare_jnp" in med:  # tiny: times of the bare jitted ops (< 1.5 is the target)
            case["jitted_over_idiomatic"] = jg / best
            case["eager_over_idiomatic"] = med["jgather_eager"] / best
            case["eager_over_bare_jnp"] = med["jgather_eager"] / med["bare_jnp"]
        self.cases.append(case)

        def ms(k: str) -> str:
            return f"{med[k] * 1e3:.3f}" if k in med else "-"

        def ratio(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}x"

        extra = ""
        if "bound" in med:
            extra = f"bound {ms('bound')} ms"
        if "bare_rows" in med:
            extra += f"; the row gather alone {ms('bare_rows')} ms"
        if "bare_jnp" in med:
            extra = (
                f"eager {ms('jgather_eager')} ms; jitted/eager over idiomatic "
                f"{case['jitted_over_idiomatic']:.2f}x/{case['eager_over_idiomatic']:.2f}x; "
                f"bare x+1 {ms('bare_jnp')} ms"
            )
        print(
            f"| {op} | {name} | {shape} | {ms('jgather')} | {ms('jgather_pib')} | "
            f"{' / '.join(ms(k) for k in idiomatic)} | {ms('torch')} | "
            f"{ratio(case['vs_torch'])} | {ratio(case['vs_jax'])} | {extra} |",
            flush=True,
        )


def _exact(a: Any, b: Any) -> None:
    np.testing.assert_array_equal(a, b)


def _close(a: Any, b: Any) -> None:
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)


def _gather_case(
    bench: Bench, name: str, x: np.ndarray, idx: np.ndarray, dim: int, tiny: bool = False
) -> None:
    jx, ji = jnp.asarray(x), jnp.asarray(idx, jnp.int32)
    shape = f"x{list(x.shape)} index{list(idx.shape)} dim={dim}"
    if tiny:  # also the eager call: the wrapper's checks plus the jitted core
        jg, jp = _jit_gather(dim), _jit_gather(dim, PIB)
        tal = jax.jit(lambda a, i: jnp.take_along_axis(a, i, axis=dim))
        bare = jax.jit(lambda a: a + 1)
        out_like = jnp.zeros(idx.shape, x.dtype)
        fns = {
            "jgather": ready(lambda: jg(jx, ji)),
            "jgather_pib": ready(lambda: jp(jx, ji)),
            "jgather_eager": ready(lambda: jgather.gather(jx, dim, ji)),
            "take_along_axis": ready(lambda: tal(jx, ji)),
            "bare_jnp": ready(lambda: bare(out_like)),
        }
    else:
        jg, jp = _jit_gather(dim), _jit_gather(dim, PIB)
        tal = jax.jit(lambda a, i: jnp.take_along_axis(a, i, axis=dim))
        fns = {
            "jgather": ready(lambda: jg(jx, ji)),
            "jgather_pib": ready(lambda: jp(jx, ji)),
            "take_along_axis": ready(lambda: tal(jx, ji)),
        }
    if torch is not None:
        tx, ti = bench.target.to_torch(x), bench.target.to_torch(idx.astype(np.int64))
        fns["torch"] = lambda: torch.gather(tx, dim, ti)
    bench.run(
        "gather",
        name,
        shape,
        fns,
        idiomatic=("take_along_axis",),
        out_bytes=idx.size * x.dtype.itemsize,
        check=_exact,
        tiny=tiny,
    )


def _scatter_case(
    bench: Bench,
    name: str,
    nodes: tuple[int, ...],
    idx: np.ndarray,
    src: np.ndarray,
    dim: int,
    *,
    expanded_from: np.ndarray | None = None,
    inside_jit: bool = False,
    bound: bool = False,
    tiny: bool = False,
    into_zeros: bool = False,
) -> None:
    """``expanded_from``: the index is ``dst`` broadcast over the trailing axes (torch's
    ``index.expand``); with ``inside_jit`` the broadcast happens inside the jitted function.
    ``into_zeros``: the job aggregates into fresh zeros (graph messages, histograms), made
    inside each jitted function (and ``torch.zeros(...).scatter_add_`` for torch); otherwise
    every implementation adds into an existing array ``x`` it must not overwrite."""
    x = np.zeros(nodes, src.dtype)

    def base(a: jax.Array) -> jax.Array:
        return jnp.zeros(nodes, a.dtype) if into_zeros else a

    jx, ji, js = jnp.asarray(x), jnp.asarray(idx, jnp.int32), jnp.asarray(src)
    shape = f"x{list(nodes)} index{list(idx.shape)} dim={dim}"
    fns: dict[str, Callable[[], Any]]
    idiomatic: tuple[str, ...]
    if tiny:  # also the eager call: the wrapper's checks plus the jitted core
        jg, jp = _jit_scatter_add(dim), _jit_scatter_add(dim, PIB)
        at_add = _natural_at_add(dim)
        bare = jax.jit(lambda a: a + 1)
        fns = {
            "jgather": ready(lambda: jg(jx, ji, js)),
            "jgather_pib": ready(lambda: jp(jx, ji, js)),
            "jgather_eager": ready(lambda: jgather.scatter_add(jx, dim, ji, js)),
            "at_add": ready(lambda: at_add(jx, ji, js)),
            "bare_jnp": ready(lambda: bare(jx)),
        }
        idiomatic = ("at_add",)
    elif expanded_from is not None:
        assert dim == 0
        jd = jnp.asarray(expanded_from, jnp.int32)
        v = nodes[0]
        seg = jax.jit(lambda s, d: jax.ops.segment_sum(s, d, num_segments=v))
        at_dst = jax.jit(lambda a, d, s: base(a).at[d].add(s))
        if inside_jit:
            shape += " (expanded inside jit)"

            def expand(d: jax.Array, s: jax.Array) -> jax.Array:
                return jnp.broadcast_to(d[:, None], s.shape)

            jg = jax.jit(lambda a, d, s: jgather.scatter_add(base(a), 0, expand(d, s), s))
            jp = jax.jit(lambda a, d, s: jgather.scatter_add(base(a), 0, expand(d, s), s, mode=PIB))
            fns = {
                "jgather": ready(lambda: jg(jx, jd, js)),
                "jgather_pib": ready(lambda: jp(jx, jd, js)),
            }
        else:
            shape += " (expanded outside jit)"
            jg, jp = _jit_scatter_add(0, base=base), _jit_scatter_add(0, PIB, base=base)
            fns = {
                "jgather": ready(lambda: jg(jx, ji, js)),
                "jgather_pib": ready(lambda: jp(jx, ji, js)),
            }

            def verified_segment_sum(i: jax.Array, s: jax.Array) -> Any:
                # The leanest exact lowering for an opaque index: read it once to learn
                # that it is expanded (one max/min pass), and segment_sum its first column,
                # with no conditional between them.
                high, low = _rows.row_extremes(i, 0)
                return jax.ops.segment_sum(s, high, num_segments=v), jnp.all(high == low)

            bound_fn = jax.jit(verified_segment_sum)
            fns["bound"] = ready(lambda: bound_fn(ji, js))
        fns["segment_sum"] = ready(lambda: seg(js, jd))
        fns["at_dst_add"] = ready(lambda: at_dst(jx, jd, js))
        idiomatic = ("segment_sum", "at_dst_add")
    else:
        jg, jp = _jit_scatter_add(dim, base=base), _jit_scatter_add(dim, PIB, base=base)
        at_add = _natural_at_add(dim, base=base)
        fns = {
            "jgather": ready(lambda: jg(jx, ji, js)),
            "jgather_pib": ready(lambda: jp(jx, ji, js)),
            "at_add": ready(lambda: at_add(jx, ji, js)),
        }
        idiomatic = ("at_add",)
        if idx.ndim == 1:
            v = nodes[0]
            seg = jax.jit(lambda s, d: jax.ops.segment_sum(s, d, num_segments=v))
            fns["segment_sum"] = ready(lambda: seg(js, ji))
            idiomatic = ("at_add", "segment_sum")
        if bound:
            keys = jnp.asarray(_flat_keys(idx, nodes, dim))
            flat_src = jnp.asarray(np.ascontiguousarray(src[tuple(slice(n) for n in idx.shape)]))
            flat_src = flat_src.reshape(-1)
            bf = _bound_flat_scatter_add(base)
            fns["bound"] = ready(lambda: bf(jx, keys, flat_src))
    if torch is not None:
        to_torch = bench.target.to_torch
        tx = to_torch(x)
        ti = to_torch(np.ascontiguousarray(idx).astype(np.int64))
        if expanded_from is not None:  # torch's idiom: a stride-0 expanded view of dst
            ti = to_torch(expanded_from.astype(np.int64))[:, None].expand(*idx.shape)
        ts = to_torch(src)
        if into_zeros:
            fns["torch"] = lambda: torch.zeros(nodes, device=ts.device).scatter_add_(dim, ti, ts)
        else:
            fns["torch"] = lambda: tx.scatter_add(dim, ti, ts)
    bench.run(
        "scatter_add",
        name,
        shape,
        fns,
        idiomatic=idiomatic,
        out_bytes=x.size * x.dtype.itemsize,
        check=_close,
        tiny=tiny,
    )


def _index_add_case(
    bench: Bench, name: str, x: np.ndarray, idx: np.ndarray, src: np.ndarray
) -> None:
    """``index_add`` of whole rows (dim 0) into an existing array; JAX's ``x.at[idx].add``."""
    jx, ji, js = jnp.asarray(x), jnp.asarray(idx, jnp.int32), jnp.asarray(src)
    jg = jax.jit(lambda a, i, s: jgather.index_add(a, 0, i, s))
    jp = jax.jit(lambda a, i, s: jgather.index_add(a, 0, i, s, mode=PIB))
    at_add = jax.jit(lambda a, i, s: a.at[i].add(s))
    fns = {
        "jgather": ready(lambda: jg(jx, ji, js)),
        "jgather_pib": ready(lambda: jp(jx, ji, js)),
        "at_add": ready(lambda: at_add(jx, ji, js)),
    }
    if torch is not None:
        tx, ts = bench.target.to_torch(x), bench.target.to_torch(src)
        ti = bench.target.to_torch(idx.astype(np.int64))
        fns["torch"] = lambda: torch.index_add(tx, 0, ti, ts)
    shape = f"x{list(x.shape)} index[{idx.size}] source{list(src.shape)}"
    bench.run("index_add", name, shape, fns, idiomatic=("at_add",),
              out_bytes=x.nbytes, check=_close)  # fmt: skip


def _index_put_case(
    bench: Bench, name: str, x: np.ndarray, rows: np.ndarray, cols: np.ndarray, v: np.ndarray
) -> None:
    """``index_put(..., accumulate=True)`` with two index arrays; JAX's ``x.at[r, c].add``."""
    jx, jv = jnp.asarray(x), jnp.asarray(v)
    jr, jc = jnp.asarray(rows, jnp.int32), jnp.asarray(cols, jnp.int32)
    jg = jax.jit(lambda a, r, c, v: jgather.index_put(a, (r, c), v, True))
    jp = jax.jit(lambda a, r, c, v: jgather.index_put(a, (r, c), v, True, mode=PIB))
    at_add = jax.jit(lambda a, r, c, v: a.at[r, c].add(v))
    fns = {
        "jgather": ready(lambda: jg(jx, jr, jc, jv)),
        "jgather_pib": ready(lambda: jp(jx, jr, jc, jv)),
        "at_add": ready(lambda: at_add(jx, jr, jc, jv)),
    }
    if torch is not None:
        tx, tv = bench.target.to_torch(x), bench.target.to_torch(v)
        tr = bench.target.to_torch(rows.astype(np.int64))
        tc = bench.target.to_torch(cols.astype(np.int64))
        fns["torch"] = lambda: torch.index_put(tx, (tr, tc), tv, accumulate=True)
    shape = f"x{list(x.shape)} indices 2 x [{rows.size}]"
    bench.run("index_put", name, shape, fns, idiomatic=("at_add",),
              out_bytes=x.nbytes, check=_close)  # fmt: skip


def _embedding_bag_case(
    bench: Bench, name: str, table: np.ndarray, idx: np.ndarray, offsets: np.ndarray
) -> None:
    """``embedding_bag`` mode='mean' of a 1-D index with offsets (torch's ``nn.EmbeddingBag``
    layout), against ``jax.ops.segment_sum`` over ``jnp.take`` divided by the bag sizes, with
    the bag ids computed from the offsets inside the jitted function as jgather must (and,
    as ``bound``, with the bag ids and sizes passed in); ``bare_rows`` is the row gather
    alone (``w.at[i].get`` promised in bounds), the floor of any JAX program for
    the job."""
    n, bags = idx.shape[0], offsets.shape[0]
    jw, ji, jo = jnp.asarray(table), jnp.asarray(idx, jnp.int32), jnp.asarray(offsets, jnp.int32)
    jg = jax.jit(lambda w, i, o: jgather.embedding_bag(i, w, o, mode="mean"))

    def bag_mean(w: jax.Array, i: jax.Array, ids: jax.Array, sizes: jax.Array) -> jax.Array:
        sums = jax.ops.segment_sum(jnp.take(w, i, axis=0), ids, bags, indices_are_sorted=True)
        return sums / jnp.maximum(sizes, 1)[:, None].astype(w.dtype)

    @jax.jit
    def segment_sum(w: jax.Array, i: jax.Array, o: jax.Array) -> jax.Array:
        ids = jnp.zeros(n, jnp.int32).at[o[1:]].add(1, mode="drop").cumsum()
        return bag_mean(w, i, ids, jnp.diff(o, append=n))

    ids = jnp.asarray(np.repeat(np.arange(bags), np.diff(offsets, append=n)), jnp.int32)
    sizes = jnp.asarray(np.diff(offsets, append=n), jnp.int32)
    bound = jax.jit(bag_mean)
    rows = jax.jit(lambda w, i: w.at[i].get(mode="promise_in_bounds"))
    fns = {
        "jgather": ready(lambda: jg(jw, ji, jo)),
        "segment_sum": ready(lambda: segment_sum(jw, ji, jo)),
        "bound": ready(lambda: bound(jw, ji, ids, sizes)),
        "bare_rows": ready(lambda: rows(jw, ji)),
    }
    if torch is not None:
        tw, ti = bench.target.to_torch(table), bench.target.to_torch(idx.astype(np.int64))
        to = bench.target.to_torch(offsets.astype(np.int64))
        fns["torch"] = lambda: torch.nn.functional.embedding_bag(ti, tw, to, mode="mean")
    bench.run(
        "embedding_bag",
        name,
        f"table{list(table.shape)} {bags} bags of {n // bags}",
        fns,
        idiomatic=("segment_sum",),
        out_bytes=bags * table.shape[1] * table.dtype.itemsize,
        check=_close,
    )


def main(argv: list[str] | None = None, target: Target | None = None) -> dict[str, Any]:
    """Runs the cases and returns the results (also written to JSON unless ``--no-write``).

    ``target``: see benchmarks/_timing.py (the default is the command-line run).
    """
    target = target or Target()
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    args = parser.parse_args(argv)
    q = args.quick
    rounds = 3 if q else 21
    threads = os.cpu_count() or 1
    if torch is not None:
        torch.set_num_threads(threads)
    print(torch_line(torch))
    rng = np.random.default_rng(0)
    bench = Bench(rounds, target)
    print(
        "| op | case | shape | jgather ms | jgather pib ms | idiomatic JAX ms | torch ms | "
        "vs torch | vs JAX | |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")

    def want(name: str) -> bool:
        return args.only in name and target.has_time(name)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, np.float32)

    # -- gathers ------------------------------------------------------------------------
    if want("mae_token_gather"):  # MAE: keep 25% of the tokens, index expanded over features
        n, seq, d, keep = (32, 196, 768, 49) if q else (256, 196, 768, 49)
        ids = np.argsort(rng.random((n, seq)), axis=1)[:, :keep]
        idx = np.ascontiguousarray(np.broadcast_to(ids[:, :, None], (n, keep, d)))
        _gather_case(bench, "mae_token_gather", normal(n, seq, d), idx, 1)
    m = 1024 if q else 4096
    if want("row_gather"):
        _gather_case(bench, "row_gather", normal(m, m), rng.integers(0, m, (m // 4, m)), 0)
    if want("column_gather"):
        _gather_case(bench, "column_gather", normal(m, m), rng.integers(0, m, (m, m // 4)), 1)
    if want("gather_1d"):
        src_n, idx_n = (1 << 20, 1 << 18) if q else (1 << 24, 1 << 22)
        _gather_case(bench, "gather_1d", normal(src_n), rng.integers(0, src_n, idx_n), 0)
    if want("per_token_logits"):
        bt, vocab = (512, 8000) if q else (4096, 32000)
        _gather_case(
            bench, "per_token_logits", normal(bt, vocab), rng.integers(0, vocab, (bt, 8)), 1
        )
    if want("last_axis_few"):
        a, b, c = (32, 512, 512) if q else (256, 2048, 512)
        x = rng.random((a, b, c), np.float32)
        _gather_case(bench, "last_axis_few", x, rng.integers(0, c, (a, b, 8)), 2)
        del x
    if want("tiny_gather"):
        _gather_case(bench, "tiny_gather", normal(64, 256), rng.integers(0, 256, (64, 64)), 1, True)

    # -- scatters -----------------------------------------------------------------------
    e, f, v = (100_000, 64, 10_000) if q else (1_000_000, 64, 100_000)
    dst = rng.integers(0, v, e)
    src = normal(e, f)
    expanded = np.broadcast_to(dst[:, None], (e, f))
    if want("graph_expand_outside"):
        _scatter_case(bench, "graph_expand_outside", (v, f), np.ascontiguousarray(expanded), src,
                      0, expanded_from=dst, into_zeros=True)  # fmt: skip
    if want("graph_expand_inside"):
        _scatter_case(bench, "graph_expand_inside", (v, f), np.ascontiguousarray(expanded), src,
                      0, expanded_from=dst, inside_jit=True, into_zeros=True)  # fmt: skip
    del expanded
    if want("per_element"):  # the case: [10000, 64] <- [200000, 64]
        n_rows, n_upd = (2_000, 40_000) if q else (10_000, 200_000)
        _scatter_case(bench, "per_element", (n_rows, f), rng.integers(0, n_rows, (n_upd, f)),
                      src[:n_upd], 0, bound=True)  # fmt: skip
    if want("many_per_row"):  # E >> N: 1000 updates per output element
        n_rows, n_upd = (100, 20_000) if q else (200, 200_000)
        _scatter_case(bench, "many_per_row", (n_rows, f), rng.integers(0, n_rows, (n_upd, f)),
                      src[:n_upd], 0, bound=True)  # fmt: skip
    if want("last_axis_scatter"):
        _scatter_case(bench, "last_axis_scatter", (m, m), rng.integers(0, m, (m, m // 4)),
                      normal(m, m // 4), 1, bound=True)  # fmt: skip
    values = 100_000 if q else 1_000_000
    if want("histogram_1k"):
        _scatter_case(bench, "histogram_1k", (1_000,), rng.integers(0, 1_000, values),
                      normal(values), 0, into_zeros=True)  # fmt: skip
    if want("histogram_100k"):
        values = 1_000_000 if q else 10_000_000
        _scatter_case(bench, "histogram_100k", (100_000,), rng.integers(0, 100_000, values),
                      normal(values), 0, into_zeros=True)  # fmt: skip
    if want("tiny_scatter"):
        _scatter_case(bench, "tiny_scatter", (64, 64), rng.integers(0, 64, (64, 64)),
                      normal(64, 64), 0, tiny=True)  # fmt: skip

    # -- torch's index family -------------------------------------------------------------
    if want("index_add_rows"):  # 400k rows of 64 into 100k rows
        n_rows, n_upd = (10_000, 40_000) if q else (100_000, 400_000)
        _index_add_case(bench, "index_add_rows", normal(n_rows, f),
                        rng.integers(0, n_rows, n_upd), normal(n_upd, f))  # fmt: skip
    if want("index_put_accumulate"):  # 1M updates into 1000 x 1000
        n_upd = 100_000 if q else 1_000_000
        _index_put_case(bench, "index_put_accumulate", normal(1000, 1000),
                        rng.integers(0, 1000, n_upd), rng.integers(0, 1000, n_upd),
                        normal(n_upd))  # fmt: skip

    # -- embedding_bag ------------------------------------------------------------------
    if want("embedding_bag_mean"):  # nn.EmbeddingBag: a 1M x 64 table, 4096 bags of 20
        rows, bags, per_bag = (100_000, 1024, 20) if q else (1_000_000, 4096, 20)
        _embedding_bag_case(bench, "embedding_bag_mean", normal(rows, 64),
                            rng.integers(0, rows, bags * per_bag),
                            np.arange(0, bags * per_bag, per_bag))  # fmt: skip
    if want("embedding_bag_mean_ragged"):  # the same with bags of 10 to 30 entries
        rows, bags = (100_000, 1024) if q else (1_000_000, 4096)
        sizes = rng.integers(10, 31, bags)
        _embedding_bag_case(bench, "embedding_bag_mean_ragged", normal(rows, 64),
                            rng.integers(0, rows, int(sizes.sum())),
                            np.concatenate([[0], np.cumsum(sizes)[:-1]]))  # fmt: skip

    cases = bench.cases
    summary: dict[str, Any] = {}
    for op in ("gather", "scatter_add", "index_add", "index_put", "embedding_bag"):
        full = [c for c in cases if c["op"] == op and not c["tiny"]]
        if not full:
            continue
        if torch is not None:
            summary[f"{op}_geomean_vs_torch"] = geomean([c["vs_torch"] for c in full])
        summary[f"{op}_geomean_vs_jax"] = geomean([c["vs_jax"] for c in full])
        summary[f"{op}_min_vs_jax"] = min(c["vs_jax"] for c in full)
        if torch is not None:
            summary[f"{op}_min_vs_torch"] = min(c["vs_torch"] for c in full)
    summary["threads"] = {"xla_cpu": threads, "torch": torch.get_num_threads() if torch else None}
    print()
    for key, value in summary.items():
        print(f"{key}: {value if isinstance(value, dict) else f'{value:.2f}'}")
    meta = {**metadata(), **target.meta(), "rounds": rounds, "quick": q}
    payload = {"meta": meta, "cases": cases, "summary": summary}
    if not args.no_write and not args.only:
        print(f"wrote {write_results(target.results_name('ops', q), payload)}")
    return payload


if __name__ == "__main__":
    main()
