"""Before/after benchmark: jgather at a git ref against the working tree, in one process.

A change to jgather's internals must not make it slower. This script loads jgather twice into
one process -- the package as committed at ``--against`` (default ``81bc658``, main before the
shared scatter engine and the per-platform lowering) and the working tree's -- jits the same
call on each copy, checks that both give the same result, and times the two interleaved round
by round in a fresh seeded random order (``interleaved_samples`` in benchmarks/_timing.py), on
inputs built once and shared. The old copy is extracted with ``git archive`` into a temporary
folder and imported first; its functions keep their own module globals, so the two copies
coexist once ``sys.modules`` is cleared between the imports.

The cases:

* ``ops``: ``gather``, ``take_along_dim``, ``index_select``, ``scatter_add`` per element
  (``[10000, 64] <- [200000, 64]`` along dim 0), ``scatter_reduce`` amax and mean on the same
  shapes, ``scatter_add`` of graph messages (200k x 64 into 10k nodes) at an
  ``index.expand``-ed index, built inside the jitted function (where the broadcast is visible
  to the trace) and materialised outside it and passed in as an opaque argument, a last-axis
  ``scatter_add`` (``[4096, 4096]`` with a ``[4096, 1024]`` index), a 1-D histogram (1M
  updates into 1000 bins) and tiny (64x64) gather and scatter;
* ``segment``: ``jgather.segment``'s ``scatter_sum``, ``scatter_mean``, ``scatter_max``,
  ``scatter_softmax``, ``segment_coo`` and ``segment_csr`` sums and ``gather_coo`` on a graph
  of 200k edges x 64 features into 10k nodes (benchmarks/segment.py's job with a fifth of its
  edges and a tenth of its nodes, so that the full run fits in about six minutes on two cores);
* ``masking``: ``random_masking`` and ``unshuffle`` at MAE ViT-B's shape ([256, 196, 768],
  mask ratio 0.75), as benchmarks/masking_regression.py, each also forward and backward
  (``jax.value_and_grad`` of the squared sum of its output).

Everything is jitted; tiny cases time 50 calls per sample. The first call of each copy
(compiling) checks that the two agree; one more warm call of each sizes the case's rounds: as
many as fit in 10 s, at least 15 and at most 21 (``--quick``: 5; ``--rounds``: a fixed number,
and nothing written). ``speed`` is the *before* median over the *after* median: above 1, the
tree is faster.

Noise: in every round ``r`` both copies run once, back to back, so ``before[r] / after[r]`` is
one measurement of the speed ratio with the machine's load of that moment mostly cancelled.
The noise of a case is half the interquartile range of these per-round ratios (the typical
distance of one round's ratio from their middle). A case is "within noise" when
``|speed - 1| < noise``; otherwise it is reported as faster or slower now, by how much. Each
verdict also counts the rounds in which the tree was the faster copy (about half of them when
nothing changed; nearly all or nearly none for a real difference, even one inside the noise).
The per-round ratios' quartiles are written to the JSON too.

Run from the repository root (a git checkout): ``python -m benchmarks.regression``
(``--quick``: small shapes, few rounds, written to regression_quick.json; ``--no-write``:
nothing written; ``--only``: the cases whose name contains a string). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks._timing import geomean, interleaved_samples, metadata, ready, write_results

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REF = "81bc658"


# ----------------------------------------------------------------------------------------------
# Two copies of jgather in one process.


def _drop_jgather() -> None:
    for name in [m for m in sys.modules if m == "jgather" or m.startswith("jgather.")]:
        del sys.modules[name]


def load_at(ref: str, folder: Path) -> Any:
    """jgather as committed at ``ref``, extracted into ``folder`` and imported from there."""
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
    assert Path(module.__file__ or "").resolve().is_relative_to(folder.resolve()), module.__file__
    _drop_jgather()
    return module


def load_tree() -> Any:
    """The working tree's jgather (imported after ``load_at``, which leaves none loaded)."""
    _drop_jgather()
    sys.path.insert(0, str(ROOT))
    try:
        module = importlib.import_module("jgather")
    finally:
        sys.path.remove(str(ROOT))
    assert Path(module.__file__ or "").resolve().is_relative_to(ROOT), module.__file__
    return module


# ----------------------------------------------------------------------------------------------
# Timing one case on both copies.


@dataclass(frozen=True)
class Rounds:
    """How many rounds a case gets: as many as fit in ``budget_s``, within [low, high]."""

    low: int
    high: int
    budget_s: float

    def fit(self, seconds_per_round: float) -> int:
        return max(self.low, min(self.high, int(self.budget_s / max(seconds_per_round, 1e-9))))


def compare(
    before: Callable[[], Any], after: Callable[[], Any], *, rounds: int, inner: int = 1
) -> dict[str, Any]:
    """Times ``before`` and ``after`` interleaved; medians, speed, noise and the verdict."""
    samples = interleaved_samples(
        {"before": before, "after": after}, rounds=rounds, warmup=1, inner=inner
    )
    b, a = samples["before"], samples["after"]
    med = {"before": statistics.median(b), "after": statistics.median(a)}
    per_round = [x / y for x, y in zip(b, a, strict=True)]
    if len(per_round) > 1:
        q1, q2, q3 = statistics.quantiles(per_round, n=4, method="inclusive")
    else:
        q1 = q2 = q3 = per_round[0]
    noise = (q3 - q1) / 2
    speed = med["before"] / med["after"]
    faster_rounds = sum(r > 1 for r in per_round)
    return {
        "median_s": med,
        "speed": speed,
        "noise": noise,
        "round_ratio_quartiles": [q1, q2, q3],
        "rounds": rounds,
        "faster_rounds": faster_rounds,
        "verdict": verdict(speed, noise, faster_rounds, rounds),
    }


def verdict(speed: float, noise: float, faster_rounds: int, rounds: int) -> str:
    """One line: within noise, or faster/slower now by how much (noise: see the docstring)."""
    tally = f"noise ±{noise:.2f}; faster in {faster_rounds}/{rounds} rounds"
    if abs(speed - 1) < noise:
        return f"within noise ({tally})"
    word = "faster" if speed > 1 else "slower"
    return f"{word} now: {abs(speed - 1) * 100:.0f}% ({tally})"


def _same(a: Any, b: Any, exact: bool, name: str) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=name)
        else:
            np.testing.assert_allclose(
                np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-4, err_msg=name
            )


# ----------------------------------------------------------------------------------------------
# The cases.


@dataclass(frozen=True)
class Case:
    """One job: ``call(jgather_module)`` is the function jitted on each copy, applied to args."""

    group: str
    name: str
    shape: str
    call: Callable[[Any], Callable[..., Any]]
    args: tuple[Any, ...]
    inner: int = 1
    exact: bool = True


def _scatter_reduce(reduce: str) -> Callable[[Any], Callable[..., Any]]:
    return lambda jg: lambda x, i, s: jg.scatter_reduce(x, 0, i, s, reduce)


def _segment_scatter(name: str, n: int) -> Callable[[Any], Callable[..., Any]]:
    return lambda jg: lambda s, i: getattr(jg.segment, name)(s, i, 0, dim_size=n)


def _ops_cases(q: bool, rng: np.random.Generator) -> Iterator[Case]:
    def normal(*shape: int) -> jax.Array:
        return jnp.asarray(rng.standard_normal(shape, np.float32))

    def ints(high: int, *shape: int) -> jax.Array:
        return jnp.asarray(rng.integers(0, high, shape), jnp.int32)

    m = 1024 if q else 4096
    x = normal(m, m)
    yield Case(
        "ops",
        "gather",
        f"x[{m}, {m}] index[{m // 4}, {m}] dim 0",
        lambda jg: lambda x, i: jg.gather(x, 0, i),
        (x, ints(m, m // 4, m)),
    )
    yield Case(
        "ops",
        "take_along_dim",
        f"x[{m}, {m}] indices[{m}, {m // 4}] dim 1",
        lambda jg: lambda x, i: jg.take_along_dim(x, i, 1),
        (x, ints(m, m, m // 4)),
    )
    rows, picks = (10_000, 20_000) if q else (100_000, 200_000)
    yield Case(
        "ops",
        "index_select",
        f"x[{rows}, 64] index[{picks}] dim 0",
        lambda jg: lambda x, i: jg.index_select(x, 0, i),
        (normal(rows, 64), ints(rows, picks)),
    )

    (n, e), f = ((2_000, 40_000) if q else (10_000, 200_000)), 64
    per_elem = (jnp.zeros((n, f)), ints(n, e, f), normal(e, f))
    shape = f"[{n}, {f}] <- [{e}, {f}] dim 0"
    yield Case(
        "ops",
        "scatter_add per element",
        shape,
        lambda jg: lambda x, i, s: jg.scatter_add(x, 0, i, s),
        per_elem,
        exact=False,
    )
    for reduce in ("amax", "mean"):
        yield Case(
            "ops",
            f"scatter_reduce {reduce}",
            shape,
            _scatter_reduce(reduce),
            per_elem,
            exact=reduce == "amax",
        )

    # Graph aggregation: messages [E, F] summed into fresh zeros [V, F] at torch's
    # dst[:, None].expand(E, F) index.
    v, e = (2_000, 40_000) if q else (10_000, 200_000)
    dst, msgs = ints(v, e), normal(e, f)
    shape = f"[{v}, {f}] <- [{e}, {f}] dim 0"

    def expand_inside(jg: Any) -> Callable[..., Any]:
        def fn(d: jax.Array, s: jax.Array) -> jax.Array:
            return jg.scatter_add(jnp.zeros((v, f)), 0, jnp.broadcast_to(d[:, None], s.shape), s)

        return fn

    yield Case(
        "ops", "scatter_add expand inside jit", shape, expand_inside, (dst, msgs), exact=False
    )
    opaque = jnp.asarray(np.broadcast_to(np.asarray(dst)[:, None], (e, f)))
    yield Case(
        "ops",
        "scatter_add expanded, opaque arg",
        shape,
        lambda jg: lambda i, s: jg.scatter_add(jnp.zeros((v, f)), 0, i, s),
        (opaque, msgs),
        exact=False,
    )

    yield Case(
        "ops",
        "scatter_add last axis",
        f"x[{m}, {m}] index[{m}, {m // 4}] dim 1",
        lambda jg: lambda x, i, s: jg.scatter_add(x, 1, i, s),
        (x, ints(m, m, m // 4), normal(m, m // 4)),
        exact=False,
    )
    bins, values = 1_000, 100_000 if q else 1_000_000
    yield Case(
        "ops",
        "histogram 1-D",
        f"[{bins}] <- [{values}]",
        lambda jg: lambda i, s: jg.scatter_add(jnp.zeros(bins), 0, i, s),
        (ints(bins, values), normal(values)),
        exact=False,
    )
    table_rows, bags = (100_000, 1024) if q else (1_000_000, 4096)
    yield Case(
        "ops",
        "embedding_bag mean",
        f"table[{table_rows}, 64] {bags} bags of 20",
        lambda jg: lambda w, i, o: jg.embedding_bag(i, w, o, mode="mean"),
        (normal(table_rows, 64), ints(table_rows, bags * 20), jnp.arange(0, bags * 20, 20)),
        exact=False,
    )
    yield Case(
        "ops",
        "index_add",
        f"[{n}, {f}] <- [{e}, {f}] dim 0",
        lambda jg: lambda x, i, s: jg.index_add(x, 0, i, s),
        (jnp.zeros((n, f)), ints(n, e), normal(e, f)),
        exact=False,
    )
    yield Case(
        "ops",
        "tiny gather",
        "x[64, 256] index[64, 64] dim 1",
        lambda jg: lambda x, i: jg.gather(x, 1, i),
        (normal(64, 256), ints(256, 64, 64)),
        inner=50,
    )
    yield Case(
        "ops",
        "tiny scatter_add",
        "[64, 64] <- [64, 64] dim 0",
        lambda jg: lambda x, i, s: jg.scatter_add(x, 0, i, s),
        (normal(64, 64), ints(64, 64, 64), normal(64, 64)),
        inner=50,
        exact=False,
    )


def _segment_cases(q: bool, rng: np.random.Generator) -> Iterator[Case]:
    e, f, n = (100_000, 16, 10_000) if q else (200_000, 64, 10_000)
    src = rng.standard_normal((e, f), dtype=np.float32)
    idx = rng.integers(0, n, e).astype(np.int32)
    order = np.argsort(idx, kind="stable")
    sidx, ssrc = idx[order], src[order]
    indptr = np.searchsorted(sidx, np.arange(n + 1)).astype(np.int32)
    js, ji = jnp.asarray(src), jnp.asarray(idx)
    jss, jsi, jptr = jnp.asarray(ssrc), jnp.asarray(sidx), jnp.asarray(indptr)
    shape = f"[{e}, {f}] -> [{n}, {f}]"
    for name in ("scatter_sum", "scatter_mean", "scatter_max", "scatter_softmax"):
        yield Case(
            "segment",
            name,
            shape + " unsorted",
            _segment_scatter(name, n),
            (js, ji),
            exact=name == "scatter_max",
        )
    # A per-element index (no broadcast axis) and reduced precision: the engine's CPU
    # strategies and its float32 accumulation.
    full = jnp.asarray(rng.integers(0, n, (e, f)).astype(np.int32))
    yield Case(
        "segment",
        "scatter_sum per element",
        shape + " index per element",
        _segment_scatter("scatter_sum", n),
        (js, full),
        exact=False,
    )
    yield Case(
        "segment",
        "scatter_sum bf16",
        shape + " unsorted bf16",
        _segment_scatter("scatter_sum", n),
        (js.astype(jnp.bfloat16), ji),
    )
    yield Case(
        "segment",
        "scatter_mul",
        shape + " unsorted",
        _segment_scatter("scatter_mul", n),
        (jnp.asarray(rng.uniform(0.9, 1.1, (e, f)).astype(np.float32)), ji),
        exact=False,
    )
    yield Case(
        "segment",
        "segment_coo sum",
        shape + " sorted",
        lambda jg: lambda s, i: jg.segment.segment_coo(s, i, dim_size=n),
        (jss, jsi),
        exact=False,
    )
    yield Case(
        "segment",
        "segment_csr sum",
        shape + " CSR",
        lambda jg: lambda s, p: jg.segment.segment_csr(s, p),
        (jss, jptr),
        exact=False,
    )
    yield Case(
        "segment",
        "gather_coo",
        f"[{n}, {f}] -> [{e}, {f}] sorted",
        lambda jg: lambda s, i: jg.segment.gather_coo(s, i),
        (jnp.asarray(rng.standard_normal((n, f), dtype=np.float32)), jsi),
    )


def masking_cases(shapes: list[tuple[int, int, int]], ratio: float, after: Any) -> Iterator[Case]:
    """``random_masking`` and ``unshuffle`` on ``x`` of each shape (MAE's job), each alone and
    forward and backward."""
    for n, length, d in shapes:
        key = jax.random.key(0)
        x = jax.random.normal(jax.random.key(1), (n, length, d), jnp.float32)
        token = jnp.zeros((d,), jnp.float32)
        shape = f"[{n}, {length}, {d}] ratio {ratio}"
        yield Case(
            "masking",
            "random_masking",
            shape,
            lambda jg: lambda k, xs: jg.random_masking(k, xs, ratio),
            (key, x),
        )
        masked = after.random_masking(key, x, ratio)
        yield Case(
            "masking",
            "unshuffle",
            shape,
            lambda jg: lambda xm, ids, t: jg.unshuffle(xm, ids, t, num_prefix=0),
            (masked.x_masked, masked.ids_restore, token),
        )
        # Forward and backward (a training step's share): the gradient with respect to the
        # tokens (and the mask token) of a squared sum of the output.
        yield Case(
            "masking",
            "random_masking fwd+bwd",
            shape,
            lambda jg: jax.value_and_grad(
                lambda xs, k: jnp.sum(jnp.square(jg.random_masking(k, xs, ratio).x_masked))
            ),
            (x, key),
        )
        yield Case(
            "masking",
            "unshuffle fwd+bwd",
            shape,
            lambda jg: jax.value_and_grad(
                lambda xm, t, ids: jnp.sum(jnp.square(jg.unshuffle(xm, ids, t, num_prefix=0))),
                argnums=(0, 1),
            ),
            (masked.x_masked, token, masked.ids_restore),
        )


def run_case(case: Case, before: Any, after: Any, rounds: Rounds) -> dict[str, Any]:
    """Checks that both copies agree on ``case``, then times them.

    The first calls (compiling) are the check; one more call of each (warm) sizes the rounds.
    """
    fb, fa = jax.jit(case.call(before)), jax.jit(case.call(after))
    _same(fb(*case.args), fa(*case.args), case.exact, case.name)
    tb, ta = ready(fb, *case.args), ready(fa, *case.args)
    t0 = time.perf_counter()
    tb()
    ta()
    n = rounds.fit((time.perf_counter() - t0) * case.inner)
    result = compare(tb, ta, rounds=n, inner=case.inner)
    return {"group": case.group, "case": case.name, "shape": case.shape, **result}


def row(c: dict[str, Any]) -> str:
    """The case's markdown table row."""
    med = c["median_s"]
    return (
        f"| {c['group']}: {c['case']} | {c['shape']} | {med['before'] * 1e3:.3f} | "
        f"{med['after'] * 1e3:.3f} | {c['speed']:.2f}x | {c['verdict']} |"
    )


HEADER = (
    "| case | shape | before ms | after ms | after/before (speed, >1: faster now) | verdict |\n"
    "|---|---|---|---|---|---|"
)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Runs the cases and returns the results (also written to JSON unless ``--no-write``)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--against", default=DEFAULT_REF, help="git ref of the 'before' copy")
    parser.add_argument("--quick", action="store_true", help="small shapes, few rounds")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    parser.add_argument("--only", default="", help="run only cases whose name contains this")
    parser.add_argument("--rounds", type=int, default=None, help="every case's rounds")
    args = parser.parse_args(argv)
    q = args.quick
    rounds = Rounds(5, 5, 0) if q else Rounds(15, 21, 10.0)
    if args.rounds:
        rounds = Rounds(args.rounds, args.rounds, 0)
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        before = load_at(args.against, Path(tmp))
        after = load_tree()
        fit = f"{rounds.low}-{rounds.high} (as many as fit in {rounds.budget_s:g} s)"
        print(
            f"before: jgather at {args.against}; after: the working tree; "
            f"{rounds.low if rounds.low == rounds.high else fit} interleaved rounds a case"
        )
        print(HEADER, flush=True)
        cases = []
        groups = (
            _ops_cases(q, rng),
            _segment_cases(q, rng),
            masking_cases([(16, 196, 768)] if q else [(256, 196, 768)], 0.75, after),
        )
        for group in groups:
            for case in group:
                if args.only not in f"{case.group}: {case.name}":
                    continue
                cases.append(run_case(case, before, after, rounds))
                print(row(cases[-1]), flush=True)
    seconds = time.perf_counter() - start
    if not cases:
        raise SystemExit(f"no case matches --only {args.only!r}")
    summary = {
        "geomean_speed": geomean([c["speed"] for c in cases]),
        "min_speed": min(c["speed"] for c in cases),
        "slower_beyond_noise": [c["case"] for c in cases if c["speed"] < 1 - c["noise"]],
        "seconds": seconds,
    }
    print(
        f"\ngeomean after/before speed: {summary['geomean_speed']:.2f}x; "
        f"slower beyond noise: {', '.join(summary['slower_beyond_noise']) or 'none'}; "
        f"{seconds:.0f} s"
    )
    meta = {
        **metadata(),
        "rounds": {"min": rounds.low, "max": rounds.high, "budget_s": rounds.budget_s},
        "quick": q,
        "against": args.against,
    }
    payload = {"meta": meta, "cases": cases, "summary": summary}
    if not args.no_write and not args.only and args.rounds is None:
        name = "regression_quick" if q else "regression"
        print(f"wrote {write_results(name, payload)}")
    return payload


if __name__ == "__main__":
    main()
