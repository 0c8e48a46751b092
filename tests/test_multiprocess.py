"""Two processes, one mesh: ``jax.distributed`` on this machine, as on many hosts.

Two worker processes (``tests/multiprocess_worker.py``) join one ``jax.distributed`` run on the
loopback address, 4 CPU devices each (the gloo CPU collectives JAX ships), and run the masking
functions with ``example_keys`` of global example indices, ``scatter_add`` and
``segment.scatter_sum``/``scatter_max`` on a global batch sharded over the 8 devices of both,
each process holding only its own rows. Every shard each process holds must equal the same
rows of the single-process result computed here, exactly; the compiled masking programs must
hold no collective (a batch sum, the control, must); and each process masking only its own
rows, on one device, must give those rows' masks too: masks do not change with the host count.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

import jax
import multiprocess_worker as worker
import numpy as np
import pytest
from pipelines import child_xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROCESSES, LOCAL_DEVICES = 2, 4
TIMEOUT_S = 300  # the two workers take ~15 s of CPU each on an idle 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    """This session's environment with 4 host devices (conftest sets 8), CPU only, and the
    checkout first on the path (the worker is run as a script)."""
    env = dict(os.environ)
    env["XLA_FLAGS"] = child_xla_flags(LOCAL_DEVICES)
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _launch(out: pathlib.Path) -> list[subprocess.Popen]:
    """The worker processes, their output (stdout and stderr) to ``out/<i>.log``."""
    port = _free_port()
    procs = []
    for i in range(PROCESSES):
        with open(out / f"{i}.log", "w") as log:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(ROOT / "tests" / "multiprocess_worker.py"),
                        *(str(v) for v in (i, PROCESSES, LOCAL_DEVICES, port, out / f"{i}.npz")),
                    ],
                    env=_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


def _wait(procs: list[subprocess.Popen], out: pathlib.Path) -> list[str]:
    """Each worker's output once all have exited; all are killed at the deadline, or soon
    after one fails (the others would wait for it at the next collective or barrier)."""
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() for p in procs):  # one failed: a little time for the others
                deadline = min(deadline, time.monotonic() + 10)
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [(out / f"{i}.log").read_text() for i in range(len(procs))]


def _reference() -> dict[str, list[np.ndarray]]:
    """Every case on the whole global batch in this one process, on one device."""
    data = worker.inputs()
    return {
        name: [np.asarray(leaf) for leaf in jax.tree.leaves(jax.jit(fn)(*(data[k] for k in names)))]
        for name, (fn, names, _) in worker.CASES.items()
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(single-process reference, each worker's results); the reference is computed while the
    workers run."""
    out = tmp_path_factory.mktemp("multiprocess")
    procs = _launch(out)
    try:
        reference = _reference()
    finally:
        logs = _wait(procs, out)
    if any(p.returncode and "in use" in log.lower() for p, log in zip(procs, logs, strict=True)):
        procs = _launch(out)  # a new port, once: another program took the free one
        logs = _wait(procs, out)
    for p, log in zip(procs, logs, strict=True):
        if p.returncode:
            pytest.fail(f"a worker exited with {p.returncode}:\n{log[-4000:]}")
    return reference, [dict(np.load(out / f"{i}.npz")) for i in range(PROCESSES)]


@pytest.mark.parametrize("name", sorted(worker.CASES))
def test_every_shard_equals_the_single_process_result(run, name):
    reference, results = run
    for j, want in enumerate(reference[name]):
        covered = np.zeros(want.shape[0], int)
        for r in results:
            shards = sorted(k for k in r if k.startswith(f"{name}/{j}/") and k.endswith("/data"))
            assert len(shards) == LOCAL_DEVICES, (name, j, shards)  # one per local device
            for key in shards:
                got, start = r[key], r[key.replace("/data", "/start")]
                at = tuple(slice(s, s + n) for s, n in zip(start, got.shape, strict=True))
                np.testing.assert_array_equal(got, want[at], err_msg=f"{name} output {j}")
                covered[at[0]] += 1
        assert (covered == 1).all(), (name, j, covered)  # each row on exactly one device


@pytest.mark.parametrize("name", sorted(worker.CASES))
def test_no_collectives_in_the_compiled_programs(run, name):
    _, results = run
    for r in results:
        assert r["control/collectives"].tolist() == ["all-reduce"]
        assert r[f"{name}/collectives"].tolist() == [], name
    np.testing.assert_allclose(
        results[0]["control/sum"], worker.inputs()["x"].sum(axis=0), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("name", sorted(n for n, case in worker.CASES.items() if case[2]))
def test_each_host_masking_its_own_rows_gets_the_same_masks(run, name):
    reference, results = run
    for r in results:
        start, stop = r["rows"]
        for j, want in enumerate(reference[name]):
            per = want.shape[0] // worker.N  # rows per example (num_masks)
            np.testing.assert_array_equal(
                r[f"{name}/{j}/local"], want[start * per : stop * per], err_msg=f"{name} {j}"
            )
