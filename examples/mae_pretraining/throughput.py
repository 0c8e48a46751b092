"""Throughput: jgather's masking against the straightforward port, same model, same run."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from mae_pretraining.model import MAEConfig
from mae_pretraining.train import init_model, make_optimizer, make_train_step


def interleaved(
    fns: dict[str, Callable[[], None]], *, rounds: int = 7, warmup: int = 1
) -> dict[str, float]:
    """Median seconds per call of each zero-argument callable, timed side by side.

    Every round runs each callable once, in an order drawn afresh from a seeded generator, so
    a slow spell of the machine affects both alike (the method of the repository's
    ``benchmarks/_timing.py``). Each callable must block until its result is ready.
    """
    rng = random.Random(0)
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name in rng.sample(list(fns), len(fns)):
            t0 = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(times) for name, times in samples.items()}


def throughput(
    config: MAEConfig = MAEConfig(),  # noqa: B008 (a frozen dataclass: immutable)
    *,
    train_images: np.ndarray,
    batch_size: int = 128,
    steps_per_call: int = 20,
    rounds: int = 7,
    seed: int = 0,
) -> dict[str, float]:
    """Train steps per second with jgather's masking vs the straightforward port.

    Both train steps are built from the same model, optimizer and parameters and differ only
    in the masking functions (``masking="jgather"`` vs ``"port"``). They are timed side by
    side in this process with :func:`interleaved` (round-robin, medians); each
    timed call runs ``steps_per_call`` consecutive steps and blocks on the result.

    Returns:
      ``{"jgather": steps/s, "port": steps/s, "speedup": jgather / port}``.
    """
    graphdef, params = init_model(config, seed=seed)
    tx = make_optimizer(10_000)
    images = jnp.asarray(train_images)
    key = jax.random.key(seed)

    def runner(masking: str) -> Callable[[], None]:
        step_fn = make_train_step(graphdef, tx, batch_size=batch_size, masking=masking)
        state = {"params": params, "opt_state": tx.init(params), "step": 0}

        def run() -> None:
            p, o, s = state["params"], state["opt_state"], state["step"]
            for i in range(s, s + steps_per_call):
                p, o, _ = step_fn(p, o, images, key, i)
            jax.block_until_ready(p)
            state.update(params=p, opt_state=o, step=s + steps_per_call)

        return run

    seconds = interleaved({m: runner(m) for m in ("jgather", "port")}, rounds=rounds, warmup=1)
    rates = {m: steps_per_call / s for m, s in seconds.items()}
    rates["speedup"] = rates["jgather"] / rates["port"]
    return rates
