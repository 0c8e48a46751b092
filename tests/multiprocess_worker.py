"""One process of the two-process run of ``test_multiprocess.py`` (not a test module).

``python tests/multiprocess_worker.py PROCESS_ID NUM_PROCESSES LOCAL_DEVICES PORT OUT`` joins
a ``jax.distributed`` run coordinated on ``127.0.0.1:PORT`` (CPU devices, the gloo collectives
JAX ships; the caller sets ``--xla_force_host_platform_device_count=LOCAL_DEVICES`` in the
environment, read when jax starts), builds one mesh of every process's devices, and runs each
case of ``CASES`` on the global batch sharded over it, as each host of a data-parallel job
does: the process supplies only its own rows (``jax.make_array_from_process_local_data``).

It writes to ``OUT`` (``.npz``): the shards its devices hold and where each starts in the
global result; the collectives in each compiled program (and in a batch sum, the control);
and each masking case run on its own rows alone, on one local device, without a mesh (what a
host does when it masks in its input pipeline). The test compares all of it with the
single-process results. ``CASES`` and the global inputs are defined here once, for the
workers and the reference.
"""

from __future__ import annotations

import re
import sys

import jax
import numpy as np
from pipelines import users_compile

import jgather
from jgather import segment

N = 16  # the global batch: 2 examples per device on 2 processes x 4 devices
GRID = (8, 8)
L, D = GRID[0] * GRID[1], 4
BASE = 0  # jax.random.key(BASE): the base key of example_keys
SIZE_SEED = 1  # jax.random.key(SIZE_SEED): multiblock_masking's per-batch block sizes
COLLECTIVES = re.compile(r"all-gather|all-reduce|all-to-all|collective-permute|reduce-scatter")


def inputs() -> dict[str, np.ndarray]:
    """The global batch, the same on every host (each host takes its rows of it)."""
    rng = np.random.default_rng(0)
    return {
        "ids": np.arange(100, 100 + N, dtype=np.int32),  # global example indices
        "x": rng.standard_normal((N, L, D)).astype(np.float32),
        "self": rng.standard_normal((N, 6, 3)).astype(np.float32),
        "index": rng.integers(0, 6, (N, 8, 3)).astype(np.int32),
        "src": rng.standard_normal((N, 8, 3)).astype(np.float32),
        "ids_1d": rng.integers(0, 5, (8,)).astype(np.int32),
    }


def _keys(ids):
    return jgather.example_keys(jax.random.key(BASE), ids)


def _random_masking(ids, x):
    return jgather.random_masking(_keys(ids), x, 0.75)


_IJEPA = jgather.IJepaConfig(min_keep=4)


def _multiblock_masking(ids):
    n = ids.shape[0]
    return jgather.multiblock_masking(
        _keys(ids), n, GRID, preset=_IJEPA, size_key=jax.random.key(SIZE_SEED)
    )


def _multiblock_masking_per_sample(ids):
    # Block sizes drawn per example from its own key (no batch-wide size draw).
    n = ids.shape[0]
    return jgather.multiblock_masking(_keys(ids), n, GRID, preset=_IJEPA, per_sample_size=True)


def _inverse_block_masking(ids):
    return jgather.inverse_block_masking(_keys(ids), ids.shape[0], GRID, 0.75, num_masks=2)


def _scatters(self, index, src):
    # segment's index is 1-D (broadcast along dim 1, as torch_scatter's), the same on every host.
    ids_1d = inputs()["ids_1d"]
    out, arg = segment.scatter_max(src, ids_1d, dim=1, dim_size=5)
    return (
        jgather.scatter_add(self, 1, index, src),
        segment.scatter_sum(src, ids_1d, dim=1, dim_size=5),
        out,
        arg,
    )


# name -> (function, names of its batched inputs, is a masking function)
CASES = {
    "random_masking": (_random_masking, ("ids", "x"), True),
    "multiblock_masking": (_multiblock_masking, ("ids",), True),
    "multiblock_masking_per_sample": (_multiblock_masking_per_sample, ("ids",), True),
    "inverse_block_masking": (_inverse_block_masking, ("ids",), True),
    "scatters": (_scatters, ("self", "index", "src"), False),
}


def _starts(shard, shape):
    return [s.indices(n)[0] for s, n in zip(shard.index, shape, strict=True)]


def main(process_id: int, num_processes: int, local_devices: int, port: int, out: str) -> None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_numpy_rank_promotion", "raise")
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=list(range(local_devices)),
    )
    assert jax.process_index() == process_id and jax.process_count() == num_processes
    assert jax.local_device_count() == local_devices, jax.local_devices()
    mesh = jax.make_mesh((jax.device_count(),), ("batch",))
    batch = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    # This host's rows of the global batch: those its devices hold.
    rows = sorted(
        {i for s in batch.addressable_devices_indices_map((N,)).values() for i in range(N)[s[0]]}
    )
    assert rows == list(range(rows[0], rows[0] + len(rows))), rows
    own = slice(rows[0], rows[-1] + 1)
    data = inputs()
    results: dict[str, np.ndarray] = {"rows": np.array([own.start, own.stop])}
    for name, (fn, names, masking) in CASES.items():
        args = [
            jax.make_array_from_process_local_data(batch, data[k][own], data[k].shape)
            for k in names
        ]
        compiled = users_compile(jax.jit(fn).lower(*args))
        found = sorted(set(COLLECTIVES.findall(compiled.as_text())))
        results[f"{name}/collectives"] = np.array(found, dtype=str)
        for j, leaf in enumerate(jax.tree.leaves(compiled(*args))):
            assert leaf.sharding.is_equivalent_to(batch, leaf.ndim), (name, j, leaf.sharding)
            for k, shard in enumerate(leaf.addressable_shards):
                results[f"{name}/{j}/{k}/start"] = np.array(_starts(shard, leaf.shape))
                results[f"{name}/{j}/{k}/data"] = np.asarray(shard.data)
        if masking:  # this host's rows alone, on one of its devices: no mesh at all
            local = [jax.device_put(data[k][own], jax.local_devices()[0]) for k in names]
            for j, leaf in enumerate(jax.tree.leaves(jax.jit(fn)(*local))):
                results[f"{name}/{j}/local"] = np.asarray(leaf)
    # The control: a sum over the batch must exchange partial sums between the processes, so
    # the collectives check above reads programs where it would see them.
    x = jax.make_array_from_process_local_data(batch, data["x"][own], data["x"].shape)
    compiled = users_compile(jax.jit(lambda x: x.sum(axis=0)).lower(x))
    results["control/collectives"] = np.array(
        sorted(set(COLLECTIVES.findall(compiled.as_text()))), dtype=str
    )
    results["control/sum"] = np.asarray(compiled(x).addressable_shards[0].data)
    np.savez(out, **results)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:5]), sys.argv[5])
