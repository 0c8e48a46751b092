"""Training: one ``jax.jit`` per step (batch sampling, masking, forward, backward, update)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jgather
from mae_pretraining.model import MAE, MAEConfig


class TrainResult(NamedTuple):
    """What :func:`train` returns."""

    graphdef: Any  # nnx.GraphDef of the MAE
    params: Any  # nnx.State of its parameters after training
    history: dict[str, np.ndarray]  # "step", "loss", "grad_norm" per step; "seconds" in total
    step_fn: Callable[..., Any]  # the jitted train step (see make_train_step), to train on


def init_model(config: MAEConfig, *, seed: int = 0) -> tuple[Any, Any]:
    """Builds an :class:`MAE` and splits it into ``(graphdef, params)``."""
    model = MAE(config, rngs=nnx.Rngs(params=seed))
    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params


def make_optimizer(
    steps: int, *, lr: float = 3e-3, warmup: int = 100
) -> optax.GradientTransformation:
    """AdamW (betas 0.9/0.95, weight decay 0.05) with linear warmup and cosine decay."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, lr, warmup_steps=min(warmup, steps // 2), decay_steps=max(steps, 1), end_value=lr / 20
    )
    return optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=0.05)


def loss_fn(
    params: Any, graphdef: Any, images: jax.Array, key: jax.Array, *, masking: str = "jgather"
) -> jax.Array:
    """MAE loss of the model ``(graphdef, params)`` on one batch of images with one mask key."""
    model = nnx.merge(graphdef, params)
    pred, mask, target = model(images, key, masking=masking)
    return jgather.mae_loss(
        pred=pred, target=target, mask=mask, norm_pix_loss=model.config.norm_pix_loss
    )


def make_train_step(
    graphdef: Any, tx: optax.GradientTransformation, *, batch_size: int, masking: str = "jgather"
) -> Callable[..., tuple[Any, Any, dict[str, jax.Array]]]:
    """Returns the jitted ``step(params, opt_state, train_images, key, step)``.

    One call samples a batch (with replacement) from ``train_images`` [n, H, W, C] already on
    the device, masks it, computes loss and gradients and applies the optax update: all under
    one ``jax.jit``. The step's randomness is ``jax.random.fold_in(key, step)`` split in two
    (batch indices, masking), so a run is reproducible from ``key`` alone.

    Returns ``(params, opt_state, metrics)`` with metrics ``loss``, ``grad_norm`` and
    ``grads_finite`` (scalars).
    """

    def step_fn(params, opt_state, train_images, key, step):
        batch_key, mask_key = jax.random.split(jax.random.fold_in(key, step))
        idx = jax.random.randint(batch_key, (batch_size,), 0, train_images.shape[0])
        images = train_images[idx]
        loss, grads = jax.value_and_grad(loss_fn)(
            params, graphdef, images, mask_key, masking=masking
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        leaves = jax.tree.leaves(grads)
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in leaves]))
        metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads), "grads_finite": finite}
        return params, opt_state, metrics

    return jax.jit(step_fn)


def train(
    config: MAEConfig = MAEConfig(),  # noqa: B008 (a frozen dataclass: immutable)
    *,
    train_images: np.ndarray,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 3e-3,
    warmup: int = 100,
    seed: int = 0,
    masking: str = "jgather",
    init: tuple[Any, Any] | None = None,
) -> TrainResult:
    """Trains an :class:`MAE` from scratch and returns its final parameters and history.

    Args:
      config: model sizes, mask ratio and whether the loss uses ``norm_pix_loss``.
      train_images: [n, H, W, C] float training images.
      steps: number of optimizer steps.
      batch_size: images per step (sampled with replacement).
      lr: peak learning rate of the warmup-cosine schedule.
      warmup: warmup steps.
      seed: seeds both the parameter init and the training key.
      masking: ``"jgather"`` (jgather's masking) or ``"port"`` (the straightforward port).
      init: ``(graphdef, params)`` to start from (built from ``config``, e.g. by
        :func:`init_model`); by default ``init_model(config, seed=seed)``.

    Returns:
      A :class:`TrainResult`; ``history`` holds per-step arrays ``step``, ``loss``,
      ``grad_norm``, ``grads_finite`` and the wall-clock ``seconds`` of the loop (compile
      included); ``step_fn`` is the jitted step (its optimizer state is not returned).
    """
    graphdef, params = init_model(config, seed=seed) if init is None else init
    tx = make_optimizer(steps, lr=lr, warmup=warmup)
    opt_state = tx.init(params)
    step_fn = make_train_step(graphdef, tx, batch_size=batch_size, masking=masking)
    images = jnp.asarray(train_images)
    key = jax.random.key(seed)
    logs = []
    t0 = time.perf_counter()
    for i in range(steps):
        params, opt_state, metrics = step_fn(params, opt_state, images, key, i)
        logs.append(metrics)
    logs = jax.device_get(logs)
    seconds = time.perf_counter() - t0
    history = {name: np.asarray([m[name] for m in logs]) for name in logs[0]} if logs else {}
    history["step"] = np.arange(steps)
    history["seconds"] = np.asarray(seconds)
    return TrainResult(graphdef, params, history, step_fn)
