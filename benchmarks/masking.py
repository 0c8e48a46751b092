"""Benchmark: MAE random masking, jgather vs PyTorch vs the straightforward JAX port vs a copy.

Same process, interleaved rounds (benchmarks/_timing.py), medians:

* ``jgather``: ``jgather.random_masking(key, x, ratio)`` (one key, split per sample inside).
* ``torch_reference``: MAE's algorithm re-stated by us in PyTorch (CPU): ``torch.rand`` noise,
  two ``argsort``s, ``torch.gather`` with the ids expanded to an [N, K, D] int64 index (MAE
  materialises it with ``repeat``), and the 0/1 mask gathered by ``ids_restore``.
* ``jax_port``: the same algorithm written line by line in JAX: two ``jnp.argsort``s and
  ``jnp.take_along_axis``.
* ``copy_floor``: ``x[:, :len_keep]`` materialised, the memory traffic every masking must pay.

Also: ``jgather.multiblock_masking`` (I-JEPA at ViT-H/14's 16x16 grid, batch 256; V-JEPA's two
configs at 8x14x14, batch 24) against NumPy ports of the collators (Python loops over the
batch, as the references run in the data loader): padded index sets on device, and
``truncate="batch_min"`` (the collators' output, with the host round trip it needs).
``--multiblock-only`` runs these alone (results in masking_multiblock.json).

Also measured: the lowering alternatives behind jgather's choices (permutation, inverse
permutation, token gather, mask), a scaling sweep over L and N, and the peak temporary memory
of the compiled masking step. Results go to benchmarks/results/masking.json; a markdown table
is printed.

Run from the repository root: ``python -m benchmarks.masking`` (``--quick`` for a smoke run,
written to masking_quick.json; ``--no-write`` writes nothing). torch is optional: without it the
torch_reference columns are null. benchmarks/accelerator.py runs the same cases on a GPU or TPU
(``main``'s ``target``).
"""

from __future__ import annotations

import argparse
import functools
import os

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
    torch_line,
    write_results,
)
from jgather.masking import _permutation, _take

# ----------------------------------------------------------------------------------------------
# The implementations compared.


torch = optional_torch()  # optional; the torch_reference columns are then null


def torch_reference(x, mask_ratio):
    """MAE's random masking re-stated in PyTorch (our code, from the paper's algorithm)."""
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    noise = torch.rand(n, length, device=x.device)
    order = torch.argsort(noise, dim=1)  # small noise first: kept
    restore = torch.argsort(order, dim=1)
    index = order[:, :len_keep].unsqueeze(-1).repeat(1, 1, d)  # [N, K, D] int64
    x_masked = torch.gather(x, 1, index)
    removed = torch.ones(n, length, device=x.device)
    removed[:, :len_keep] = 0
    removed = torch.gather(removed, 1, restore)
    return x_masked, removed, restore


@functools.partial(jax.jit, static_argnames="mask_ratio")
def jax_port(key, x, mask_ratio):
    """The straightforward JAX port: two argsorts and take_along_axis."""
    n, length, _ = x.shape
    len_keep = int(length * (1 - mask_ratio))
    noise = jax.random.uniform(key, (n, length))
    order = jnp.argsort(noise, axis=1)
    restore = jnp.argsort(order, axis=1)
    x_masked = jnp.take_along_axis(x, order[:, :len_keep, None], axis=1)
    removed = jnp.ones((n, length), x.dtype).at[:, :len_keep].set(0)
    removed = jnp.take_along_axis(removed, restore, axis=1)
    return x_masked, removed, restore.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames="len_keep")
def copy_floor(x, len_keep):
    return x[:, :len_keep]


def _inputs(n, length, d, seed=0):
    x = jax.random.normal(jax.random.key(seed), (n, length, d), jnp.float32)
    return jax.block_until_ready(x)


def time_masking(n, length, d, ratio, *, rounds, torch_threads, method=None, target=None):
    """Median seconds of the four implementations (three without torch) on one shape.

    Without torch, ``torch_reference`` is None in the returned medians. ``target``: where torch
    runs (benchmarks/_timing.py; default CPU).
    """
    target = target or Target()
    len_keep = int(length * (1 - ratio))
    x = _inputs(n, length, d)
    key = jax.random.key(1)
    fns = {"jgather": ready(jgather.random_masking, key, x, ratio, method=method)}
    if torch is not None:
        torch.set_num_threads(torch_threads)
        xt = target.to_torch(np.array(x))  # a writable copy
        fns["torch_reference"] = target.timed(lambda: torch_reference(xt, ratio))
    fns["jax_port"] = ready(jax_port, key, x, ratio)
    fns["copy_floor"] = ready(copy_floor, x, len_keep)
    return {"torch_reference": None, **interleaved(fns, rounds=rounds)}, len_keep


# ----------------------------------------------------------------------------------------------
# Lowering alternatives (each on pre-drawn inputs, so only the step itself is timed).


def _perm_alternatives(n, length):
    key = jax.random.key(2)
    noise = jax.random.uniform(key, (n, length))
    bits = jax.random.bits(key, (2, n, length), jnp.uint32)
    s = _permutation.position_bits(length)
    width = 32 - s

    @jax.jit
    def argsort_float(noise):
        return jnp.argsort(noise, axis=1)

    @jax.jit
    def argsort_twice(noise):
        return jnp.argsort(jnp.argsort(noise, axis=1), axis=1)

    @jax.jit
    def sort_noise_iota(noise):
        iota = lax.broadcasted_iota(jnp.int32, noise.shape, 1)
        return lax.sort((noise, iota), dimension=1, num_keys=1, is_stable=True)[1]

    @jax.jit
    def sort_bits_iota(bits):
        iota = lax.broadcasted_iota(jnp.int32, bits[0].shape, 1)
        return lax.sort((bits[0], iota), dimension=1, num_keys=1, is_stable=True)[1]

    @jax.jit
    def top_k(noise):
        return lax.top_k(-noise, length)[1]

    @jax.jit
    def packed_u32_1pass(bits):
        def one(b):
            packed = ((b >> s) << s) | lax.iota(jnp.uint32, length)
            return (lax.sort(packed) & jnp.uint32((1 << s) - 1)).astype(jnp.int32)

        return jax.vmap(one)(bits[0])

    @jax.jit
    def radix_u32_2pass(bits):
        # Least-significant-digit radix sort: two stable packed uint32 passes, 2 * (32 - s)
        # random bits per token (jgather's first design).
        def one(b0, b1):
            iota = lax.iota(jnp.uint32, length)
            low = jnp.uint32((1 << s) - 1)
            first = (lax.sort(((b0 >> s) << s) | iota) & low).astype(jnp.int32)
            second = (lax.sort(((b1 >> s) << s) | iota) & low).astype(jnp.int32)
            return first[second]

        return jax.vmap(one)(bits[0], bits[1])

    @jax.jit
    def packed_u64_1pass(bits):  # what jgather does: 64 - s random bits, one uint64 sort
        return jax.vmap(_permutation.wide_argsort)(bits[0], bits[1])

    @jax.jit
    def packed_u64_noise_exact(noise):  # jgather with noise= (exact, stable)
        return jax.vmap(_permutation.argsort_noise)(noise)

    fns = {
        "argsort_float": ready(argsort_float, noise),
        "argsort_twice": ready(argsort_twice, noise),
        "sort_noise_iota": ready(sort_noise_iota, noise),
        "sort_bits_iota": ready(sort_bits_iota, bits),
        "top_k_full": ready(top_k, noise),
        "packed_u32_1pass": ready(packed_u32_1pass, bits),
        "radix_u32_2pass": ready(radix_u32_2pass, bits),
        "packed_u64_1pass": ready(packed_u64_1pass, bits),
        "packed_u64_noise_exact": ready(packed_u64_noise_exact, noise),
    }
    notes = {
        "packed_u32_1pass": (
            f"{width} random bits per token; ties (lower index first) bound the distance to a "
            f"uniform permutation by {length * (length - 1) / 2 * 2.0**-width:.2g}"
        ),
        "radix_u32_2pass": (
            f"{2 * width} random bits; bound {length * (length - 1) / 2 * 2.0 ** (-2 * width):.2g}"
        ),
        "packed_u64_1pass": (
            f"{64 - s} random bits; bound {_permutation.tie_probability_bound(length):.2g}"
        ),
    }
    return fns, notes


def _inverse_alternatives(n, length):
    perm = jnp.argsort(jax.random.uniform(jax.random.key(3), (n, length)), axis=1)
    perm = jax.block_until_ready(perm.astype(jnp.int32))

    @jax.jit
    def scatter_iota(perm):  # what jgather does
        return _permutation.inverse_permutations(perm)

    @jax.jit
    def argsort(perm):
        return jnp.argsort(perm, axis=1)

    @jax.jit
    def packed_sort(perm):
        s = _permutation.position_bits(length)
        return jax.vmap(lambda p: _permutation.packed_argsort(p.astype(jnp.uint32), s))(perm)

    @jax.jit
    def compare_sum(perm):  # gather-free: inverse[j] = sum_k k * (perm[k] == j)
        hit = perm[:, :, None] == jnp.arange(length, dtype=jnp.int32)
        return jnp.sum(jnp.where(hit, jnp.arange(length, dtype=jnp.int32)[:, None], 0), axis=1)

    fns = {
        "scatter_iota": ready(scatter_iota, perm),
        "argsort": ready(argsort, perm),
        "packed_sort": ready(packed_sort, perm),
    }
    if length <= 256:
        fns["compare_sum"] = ready(compare_sum, perm)
    return fns


def _gather_alternatives(n, length, d, len_keep, include_onehot):
    x = _inputs(n, length, d)
    ids = jnp.argsort(jax.random.uniform(jax.random.key(4), (n, length)), axis=1)
    ids = jax.block_until_ready(ids[:, :len_keep].astype(jnp.int32))

    @jax.jit
    def vmap_index_select(x, ids):  # what jgather does
        return jax.vmap(lambda a, i: _take.take_rows(a, i, "gather"))(x, ids)

    @jax.jit
    def take_along_axis(x, ids):
        return jnp.take_along_axis(x, ids[:, :, None], axis=1)

    @jax.jit
    def expanded_index(x, ids):  # torch style: a materialised [N, K, D] index
        index = jnp.broadcast_to(ids[:, :, None], (n, len_keep, d))
        return jgather.gather(x, 1, index, mode="promise_in_bounds")

    @jax.jit
    def onehot(x, ids):
        return jax.vmap(lambda a, i: _take.take_rows(a, i, "onehot"))(x, ids)

    fns = {
        "vmap_index_select": ready(vmap_index_select, x, ids),
        "take_along_axis": ready(take_along_axis, x, ids),
        "gather_expanded_index": ready(expanded_index, x, ids),
        "copy_floor": ready(copy_floor, x, len_keep),
    }
    if include_onehot:
        fns["onehot_einsum"] = ready(onehot, x, ids)
    return fns


def _mask_alternatives(n, length, len_keep):
    restore = jnp.argsort(jax.random.uniform(jax.random.key(5), (n, length)), axis=1)
    restore = jax.block_until_ready(restore.astype(jnp.int32))

    @jax.jit
    def compare(restore):  # what jgather does
        return (restore >= len_keep).astype(jnp.float32)

    @jax.jit
    def gather_row(restore):  # MAE: a 0/1 row gathered by ids_restore
        row = jnp.ones((n, length), jnp.float32).at[:, :len_keep].set(0)
        return jnp.take_along_axis(row, restore, axis=1)

    return {"compare": ready(compare, restore), "gather_row": ready(gather_row, restore)}


# ----------------------------------------------------------------------------------------------
# Memory.


def memory_report(n, length, d, ratio):
    len_keep = int(length * (1 - ratio))
    x = jax.ShapeDtypeStruct((n, length, d), jnp.float32)
    key = jax.random.key(0)

    def analysis(fn, *args):
        m = jax.jit(fn).lower(*args).compile().memory_analysis()
        if m is None:
            return None
        return {
            "temp_bytes": int(m.temp_size_in_bytes),
            "output_bytes": int(m.output_size_in_bytes),
            "argument_bytes": int(m.argument_size_in_bytes),
        }

    jg = analysis(lambda k, x: tuple(jgather.random_masking(k, x, ratio)), key, x)
    port = analysis(lambda k, x: jax_port(k, x, ratio), key, x)
    return {
        "shape": f"x[{n},{length},{d}] ratio={ratio}",
        "jgather_peak_temp_bytes": None if jg is None else jg["temp_bytes"],
        "jgather_output_bytes": None if jg is None else jg["output_bytes"],
        "jax_port_peak_temp_bytes": None if port is None else port["temp_bytes"],
        "torch_style_expanded_index_bytes": n * len_keep * d * 8,
        "x_masked_bytes": n * len_keep * d * 4,
    }


# ----------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------
# Multi-block masks (I-JEPA, V-JEPA) against a NumPy port of the collators.


def _np_block_size(rng, grid, scale, aspect, *, video):
    """The collators' per-batch ``_sample_block_size`` (one uniform for I-JEPA, three for
    V-JEPA), NumPy's generator in place of torch's."""
    if not video:
        h_grid, w_grid = grid
        u = rng.random()
        keep = int(h_grid * w_grid * (scale[0] + u * (scale[1] - scale[0])))
        ar = aspect[0] + u * (aspect[1] - aspect[0])
        h, w = round(np.sqrt(keep * ar)), round(np.sqrt(keep / ar))
        return min(h, h_grid - 1), min(w, w_grid - 1)
    duration, h_grid, w_grid = grid
    t = max(1, int(duration * 1.0))  # temporal scale (1.0, 1.0)
    keep = int(h_grid * w_grid * (scale[0] + rng.random() * (scale[1] - scale[0])))
    ar = aspect[0] + rng.random() * (aspect[1] - aspect[0])
    h, w = round(np.sqrt(keep * ar)), round(np.sqrt(keep / ar))
    return t, min(h, h_grid), min(w, w_grid)


def numpy_ijepa_collator(rng, n, grid, npred=4, min_keep=10):
    """I-JEPA's ``MaskCollator.__call__`` ported to NumPy: Python loops over the batch."""
    h_grid, w_grid = grid
    p_size = _np_block_size(rng, grid, (0.15, 0.2), (0.75, 1.5), video=False)
    e_size = _np_block_size(rng, grid, (0.85, 1.0), (1.0, 1.0), video=False)

    def block(size, regions=None):
        h, w = size
        tries, timeout = 0, 20
        while True:
            top, left = rng.integers(0, h_grid - h), rng.integers(0, w_grid - w)
            mask = np.zeros(grid, np.int32)
            mask[top : top + h, left : left + w] = 1
            if regions is not None:
                for k in range(max(len(regions) - tries, 0)):
                    mask *= regions[k]
            ids = np.flatnonzero(mask)
            if len(ids) > min_keep:
                break
            timeout -= 1
            if timeout == 0:
                tries, timeout = tries + 1, 20
        complement = np.ones(grid, np.int32)
        complement[top : top + h, left : left + w] = 0
        return ids, complement

    preds, encs = [], []
    for _ in range(n):
        pairs = [block(p_size) for _ in range(npred)]
        preds.append([ids for ids, _ in pairs])
        encs.append([block(e_size, [c for _, c in pairs])[0]])
    kp = min(len(m) for ms in preds for m in ms)
    ke = min(len(m) for ms in encs for m in ms)
    pred = np.stack([np.stack([m[:kp] for m in ms]) for ms in preds])
    enc = np.stack([np.stack([m[:ke] for m in ms]) for ms in encs])
    return enc, pred


def numpy_vjepa_collator(rng, n, grid, configs=((8, 0.15), (2, 0.7))):
    """V-JEPA's ``multiblock3d`` ``MaskCollator.__call__`` ported to NumPy (both configs)."""
    duration, h_grid, w_grid = grid
    out = []
    for num_blocks, scale in configs:
        t, h, w = _np_block_size(rng, grid, (scale, scale), (0.75, 1.5), video=True)
        encs, preds = [], []
        for _ in range(n):
            while True:
                keep = np.ones(grid, np.int32)
                for _ in range(num_blocks):
                    top = rng.integers(0, h_grid - h + 1)
                    left = rng.integers(0, w_grid - w + 1)
                    start = rng.integers(0, duration - t + 1)
                    keep[start : start + t, top : top + h, left : left + w] = 0
                flat = keep.reshape(-1)
                enc, pred = np.flatnonzero(flat), np.flatnonzero(flat == 0)
                if len(enc):
                    break
            encs.append(enc)
            preds.append(pred)
        ke, kp = min(map(len, encs)), min(map(len, preds))
        out.append((np.stack([e[:ke] for e in encs]), np.stack([p[:kp] for p in preds])))
    return out


def time_multiblock(rounds):
    """jgather's multi-block masks vs the NumPy collators at the papers' grids and batches."""
    rng = np.random.default_rng(0)
    keys = iter(jax.random.split(jax.random.key(0), 10_000))
    cases = []
    for name, preset_calls, numpy_fn, n, grid in [
        (
            "ijepa_vith14",
            [{"preset": "ijepa"}],
            lambda n, grid: numpy_ijepa_collator(rng, n, grid),
            256,
            (16, 16),
        ),
        (
            "vjepa_vitl16",
            [{"preset": "vjepa"}, {"preset": "vjepa_long"}],
            lambda n, grid: numpy_vjepa_collator(rng, n, grid),
            24,
            (8, 14, 14),
        ),
    ]:

        def padded(n=n, grid=grid, calls=preset_calls):
            return jax.block_until_ready(
                [jgather.multiblock_masking(next(keys), n, grid, **kw) for kw in calls]
            )

        def batch_min(n=n, grid=grid, calls=preset_calls):
            return [
                jgather.multiblock_masking(next(keys), n, grid, truncate="batch_min", **kw)
                for kw in calls
            ]

        fns = {
            "jgather": padded,
            "jgather_batch_min": batch_min,
            "numpy_collator": lambda n=n, grid=grid, f=numpy_fn: f(n, grid),
        }
        med = interleaved(fns, rounds=rounds)
        cases.append(
            {
                "op": "multiblock_masking",
                "case": name,
                "shape": f"N={n} grid={grid} presets={[c['preset'] for c in preset_calls]}",
                "median_s": med,
                "speedup_vs_numpy": med["numpy_collator"] / med["jgather"],
                "speedup_vs_numpy_batch_min": med["numpy_collator"] / med["jgather_batch_min"],
            }
        )
    return cases


def _lowered_method(platform):
    """What ``method=None`` lowers to for ``platform``, read from the exported program."""
    x = jax.ShapeDtypeStruct((2, 16, 4), jnp.float32)
    fn = jax.jit(lambda k, x: jgather.random_masking(k, x, 0.75).x_masked)
    exported = jax.export.export(fn, platforms=(platform,))(jax.random.key(0), x)
    return "onehot" if "stablehlo.dot_general" in exported.mlir_module() else "gather"


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def main(argv=None, target=None):
    """Runs the cases and returns the results (also written to JSON unless ``--no-write``).

    ``target``: see benchmarks/_timing.py (the default is the command-line run).
    """
    target = target or Target()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few rounds, small sweep")
    parser.add_argument("--no-write", action="store_true", help="do not write the JSON")
    parser.add_argument(
        "--multiblock-only",
        action="store_true",
        help="only the multi-block (I-JEPA, V-JEPA) cases, written to masking_multiblock.json",
    )
    args = parser.parse_args(argv)
    if args.multiblock_only:
        return _multiblock_main(args, target)

    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    rounds = 3 if args.quick else 15
    alt_rounds = 3 if args.quick else 9
    print(torch_line(torch))

    shapes = [
        ("mae_image_vitb", 256, 196, 768, 0.75),
        ("mae_video", 64, 1568, 384, 0.9),
    ]
    cases = []
    alternatives = {}
    memory = {}
    for name, n, length, d, ratio in shapes:
        len_keep = int(length * (1 - ratio))
        if target.has_time(name):
            with target.guard(name):
                med, _ = time_masking(
                    n, length, d, ratio, rounds=rounds, torch_threads=threads, target=target
                )
                cases.append(
                    {
                        "op": "random_masking",
                        "case": name,
                        "shape": f"x[{n},{length},{d}] mask_ratio={ratio} len_keep={len_keep}",
                        "output_bytes": n * len_keep * d * 4 + n * length * 8,
                        "median_s": med,
                        "speedup_vs_torch": (
                            None if torch is None else med["torch_reference"] / med["jgather"]
                        ),
                        "speedup_vs_port": med["jax_port"] / med["jgather"],
                        "ratio_to_copy": med["jgather"] / med["copy_floor"],
                    }
                )
        if target.has_time(f"{name} alternatives"):
            with target.guard(f"{name} alternatives"):
                perm_fns, perm_notes = _perm_alternatives(n, length)
                inverse_fns = _inverse_alternatives(n, length)
                gather_fns = _gather_alternatives(n, length, d, len_keep, include_onehot=True)
                alternatives[name] = {
                    "permutation": interleaved(perm_fns, rounds=alt_rounds),
                    "permutation_notes": perm_notes,
                    "inverse_permutation": interleaved(inverse_fns, rounds=alt_rounds),
                    "token_gather": interleaved(gather_fns, rounds=min(alt_rounds, 5)),
                    "mask": interleaved(_mask_alternatives(n, length, len_keep), rounds=alt_rounds),
                }
        if target.has_time(f"{name} memory"):
            with target.guard(f"{name} memory"):
                memory[name] = memory_report(n, length, d, ratio)

    sweep = (
        [(64, 196, 384, 0.75), (64, 784, 384, 0.75)]
        if args.quick
        else [
            (64, 49, 384, 0.75),
            (64, 196, 384, 0.75),
            (64, 784, 384, 0.75),
            (64, 1568, 384, 0.75),
            (16, 196, 768, 0.75),
            (64, 196, 768, 0.75),
            (256, 196, 768, 0.75),
        ]
    )
    scaling = []
    for n, length, d, ratio in sweep:
        label = f"scaling N={n} L={length} D={d}"
        if not target.has_time(label):
            continue
        with target.guard(label):
            med, _ = time_masking(
                n,
                length,
                d,
                ratio,
                rounds=max(3, rounds // 2),
                torch_threads=threads,
                target=target,
            )
            scaling.append({"N": n, "L": length, "D": d, "mask_ratio": ratio, "median_s": med})

    summary = {
        "geomean_speedup_vs_torch": (
            None if torch is None or not cases else geomean([c["speedup_vs_torch"] for c in cases])
        ),
        "geomean_speedup_vs_port": (
            geomean([c["speedup_vs_port"] for c in cases]) if cases else None
        ),
        "targets": {
            "image_vs_torch_min": 3.0,
            "image_ratio_to_copy_max": 1.3,
            "video_vs_torch_min": 2.5,
        },
        "default_method": {
            name: _lowered_method(platform)
            for name, platform in (("cpu", "cpu"), ("gpu", "cuda"), ("tpu", "tpu"))
        },
        "quick": args.quick,
    }
    image_memory = memory.get("mae_image_vitb", {})  # empty: skipped (time budget) or failed
    payload = {
        "meta": {
            **metadata(),
            **target.meta(),
            "rounds": rounds,
            "torch_threads_set": threads,
            # Other processes on the machine make every figure noisier; recorded for context.
            "loadavg_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "cases": cases,
        "summary": summary,
        "scaling": scaling,
        "memory": {
            # The image (ViT-B) figures at the top level, as the schema names them.
            "jgather_peak_temp_bytes": image_memory.get("jgather_peak_temp_bytes"),
            "torch_style_expanded_index_bytes": image_memory.get(
                "torch_style_expanded_index_bytes"
            ),
            "by_case": memory,
        },
        "alternatives": alternatives,
        "multiblock": time_multiblock(rounds) if target.has_time("multiblock") else [],
    }

    print(
        "| case | shape | jgather ms | torch ref ms | JAX port ms | copy ms | vs torch "
        "| vs port | / copy |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cases:
        m = c["median_s"]
        print(
            f"| {c['case']} | {c['shape']} | {_ms(m['jgather'])} | {_ms(m['torch_reference'])} "
            f"| {_ms(m['jax_port'])} | {_ms(m['copy_floor'])} | {_ratio(c['speedup_vs_torch'])} "
            f"| {c['speedup_vs_port']:.2f}x | {c['ratio_to_copy']:.2f} |"
        )
    print()
    for name, alts in alternatives.items():
        for step in ("permutation", "inverse_permutation", "token_gather", "mask"):
            row = ", ".join(f"{k} {_ms(v)}" for k, v in alts[step].items())
            print(f"- {name} {step} (ms): {row}")
    print()
    for name, mem in memory.items():
        print(
            f"- {name} memory: jgather peak temp {mem['jgather_peak_temp_bytes']} B, "
            f"JAX port temp {mem['jax_port_peak_temp_bytes']} B, torch-style [N, K, D] int64 "
            f"index {mem['torch_style_expanded_index_bytes']} B, x_masked {mem['x_masked_bytes']} B"
        )
    print()
    print("| N | L | D | jgather ms | torch ref ms | JAX port ms | copy ms |")
    print("|---|---|---|---|---|---|---|")
    for s in scaling:
        m = s["median_s"]
        print(
            f"| {s['N']} | {s['L']} | {s['D']} | {_ms(m['jgather'])} "
            f"| {_ms(m['torch_reference'])} | {_ms(m['jax_port'])} | {_ms(m['copy_floor'])} |"
        )
    print()
    _print_multiblock(payload["multiblock"])
    if not args.no_write:
        print(f"\nwrote {write_results(target.results_name('masking', args.quick), payload)}")
    return payload


def _print_multiblock(cases):
    print("| case | shape | jgather ms | jgather batch_min ms | NumPy collator ms | vs NumPy |")
    print("|---|---|---|---|---|---|")
    for c in cases:
        m = c["median_s"]
        print(
            f"| {c['case']} | {c['shape']} | {_ms(m['jgather'])} | {_ms(m['jgather_batch_min'])} "
            f"| {_ms(m['numpy_collator'])} | {_ratio(c['speedup_vs_numpy'])} |"
        )


def _multiblock_main(args, target):
    rounds = 3 if args.quick else 15
    cases = time_multiblock(rounds) if target.has_time("multiblock") else []
    payload = {
        "meta": {
            **metadata(),
            **target.meta(),
            "rounds": rounds,
            "loadavg_1min_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "cases": cases,
    }
    _print_multiblock(cases)
    if not args.no_write:
        name = target.results_name("masking_multiblock", args.quick)
        print(f"\nwrote {write_results(name, payload)}")
    return payload


if __name__ == "__main__":
    main()
