"""A compact masked autoencoder (MAE) trained on scikit-learn's digits, built on jgather.

This is the importable half of ``04_mae_pretraining.ipynb`` and the code under
``tests/test_mae_training.py``. It shows jgather used the way research code would use it:

    patchify -> embed -> jgather.random_masking -> ViT encoder (visible tokens only)
    -> jgather.unshuffle (mask tokens back in place) -> light decoder -> jgather.mae_loss

The model is written in Flax NNX and trained with optax. The train step is one ``jax.jit``
over the model's split state (``nnx.split`` -> pure function -> ``nnx.merge``), so the Python
overhead per step is a single dispatch. PRNG keys are threaded explicitly: every step folds its
step number into one base key and splits that into a batch-sampling key and a masking key.

Data: ``sklearn.datasets.load_digits`` (1797 grayscale 8x8 images, shipped inside scikit-learn,
nothing downloaded), scaled to [0, 1] and cut into 2x2 patches: 16 tokens of 4 values each.

For the throughput comparison the module also holds the straightforward JAX port of MAE's
masking (two argsorts plus ``take_along_axis``); ``masking="port"`` swaps it in for jgather's
functions with everything else unchanged.

Needs the ``train`` extra (flax, optax, scikit-learn).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import jgather

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def load_digits_split(
    heldout_fraction: float = 0.2, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Loads scikit-learn's digits as NHWC float32 images in [0, 1], split train / held-out.

    Args:
      heldout_fraction: share of the 1797 images kept out of training.
      seed: seed of the NumPy permutation that decides the split (fixed, so the split is the
        same in every run).

    Returns:
      ``(train, heldout)``, each [n, 8, 8, 1] float32. The digits' pixel values (integers
      0..16) are divided by 16.
    """
    from sklearn.datasets import load_digits

    images = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8]
    images = images[..., None]  # NHWC, one channel
    order = np.random.default_rng(seed).permutation(len(images))
    n_heldout = round(len(images) * heldout_fraction)
    return images[order[n_heldout:]], images[order[:n_heldout]]


# --------------------------------------------------------------------------------------------
# Masking: jgather's functions, or the straightforward port they are measured against
# --------------------------------------------------------------------------------------------


def port_random_masking(
    key: jax.Array | None, x: jax.Array, mask_ratio: float, *, noise: jax.Array | None = None
) -> jgather.MaskedTokens:
    """MAE's random masking as a line-by-line JAX port: two argsorts and ``take_along_axis``.

    One [N, L] uniform draw (or the given ``noise``); the first argsort gives the shuffle, the
    second argsort inverts it. This is the baseline jgather is compared with in
    :func:`throughput`.
    """
    n, length, _ = x.shape
    len_keep = int(length * (1 - mask_ratio))
    if noise is None:
        noise = jax.random.uniform(key, (n, length))
    ids_shuffle = jnp.argsort(noise, axis=1)
    ids_restore = jnp.argsort(ids_shuffle, axis=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = jnp.take_along_axis(x, ids_keep[:, :, None], axis=1)
    mask = jnp.ones((n, length), x.dtype).at[:, :len_keep].set(0)
    mask = jnp.take_along_axis(mask, ids_restore, axis=1)
    return jgather.MaskedTokens(x_masked, mask, ids_restore.astype(jnp.int32))


def port_unshuffle(
    x_masked: jax.Array, ids_restore: jax.Array, mask_token: jax.Array, *, num_prefix: int = 0
) -> jax.Array:
    """The decoder's append-mask-tokens-and-unshuffle as a plain ``take_along_axis`` port.

    The ``num_prefix`` leading tokens of ``x_masked`` (the cls token) pass through in front.
    """
    prefix, kept = x_masked[:, :num_prefix], x_masked[:, num_prefix:]
    n, k, d = kept.shape
    length = ids_restore.shape[1]
    fill = jnp.broadcast_to(mask_token.astype(kept.dtype), (n, length - k, d))
    full = jnp.concatenate([kept, fill], axis=1)
    full = jnp.take_along_axis(full, ids_restore[:, :, None], axis=1)
    return jnp.concatenate([prefix, full], axis=1)


def _jgather_masking(key: jax.Array, x: jax.Array, mask_ratio: float) -> jgather.MaskedTokens:
    return jgather.random_masking(key, x, mask_ratio)


def _jgather_unshuffle(
    x_masked: jax.Array, ids_restore: jax.Array, mask_token: jax.Array, *, num_prefix: int = 0
) -> jax.Array:
    return jgather.unshuffle(x_masked, ids_restore, mask_token, num_prefix=num_prefix)


MASKINGS: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "jgather": (_jgather_masking, _jgather_unshuffle),
    "port": (port_random_masking, port_unshuffle),
}


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class MAEConfig:
    """Sizes of the model and of its inputs. Defaults fit 8x8 digits in 2x2 patches.

    The defaults (about 78k parameters) train in about a thousand steps on two CPU cores.
    """

    image_size: int = 8
    patch_size: int = 2
    channels: int = 1
    embed_dim: int = 64
    depth: int = 2
    num_heads: int = 4
    decoder_dim: int = 32
    decoder_depth: int = 1
    decoder_heads: int = 4
    mlp_ratio: int = 2
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False
    # Longest wavelength scale of the sine-cosine position code. MAE uses 10000 for a 14x14
    # grid; on a 4x4 grid that leaves most frequencies nearly constant, and 10 trained faster
    # here (held-out loss after 600 steps: 0.059 vs 0.067).
    pos_temperature: float = 10.0

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid

    @property
    def patch_dim(self) -> int:
        return self.patch_size * self.patch_size * self.channels


def sincos_pos_embed_2d(
    grid_h: int, grid_w: int, dim: int, *, prefix: int = 1, temperature: float = 10000.0
) -> np.ndarray:
    """Fixed 2-D sine-cosine position embeddings, [prefix + grid_h * grid_w, dim].

    Half the channels encode the patch row, half the column; each half is sines and cosines
    of the coordinate at ``dim // 4`` geometrically spaced frequencies (1 down to 1/10000).
    Positions run row-major, the order of ``jgather.patchify``'s tokens. The ``prefix`` rows
    (for the cls token) are zeros.
    """
    if dim % 4:
        raise ValueError(f"sincos_pos_embed_2d: dim must be a multiple of 4, got {dim}.")
    quarter = dim // 4
    freqs = 1.0 / temperature ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows, cols = np.meshgrid(np.arange(grid_h), np.arange(grid_w), indexing="ij")

    def encode(coord: np.ndarray) -> np.ndarray:
        angles = coord.reshape(-1, 1) * freqs[None, :]
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    table = np.concatenate([encode(rows), encode(cols)], axis=1)
    table = np.concatenate([np.zeros((prefix, dim)), table], axis=0)
    return table.astype(np.float32)


_xavier = nnx.initializers.xavier_uniform()


class Block(nnx.Module):
    """Pre-norm transformer block: self-attention then a GELU MLP, each with a residual."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(
            num_heads, dim, kernel_init=_xavier, decode=False, keep_rngs=False, rngs=rngs
        )
        self.norm2 = nnx.LayerNorm(dim, epsilon=1e-6, rngs=rngs)
        self.fc1 = nnx.Linear(dim, dim * mlp_ratio, kernel_init=_xavier, rngs=rngs)
        self.fc2 = nnx.Linear(dim * mlp_ratio, dim, kernel_init=_xavier, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(jax.nn.gelu(self.fc1(self.norm2(x))))


class MAE(nnx.Module):
    """Masked autoencoder: ViT encoder on the visible tokens (plus cls), light decoder.

    Call it on a batch of images [N, H, W, C] with a masking key; it returns
    ``(pred, mask, target)``: per-patch pixel predictions [N, L, p*p*C] for every position,
    MAE's mask [N, L] (1 = removed) and the patchified images [N, L, p*p*C].
    """

    def __init__(self, config: MAEConfig, *, rngs: nnx.Rngs):
        c = config
        self.config = c
        self.patch_embed = nnx.Linear(c.patch_dim, c.embed_dim, kernel_init=_xavier, rngs=rngs)
        token_init = nnx.initializers.normal(0.02)
        self.cls_token = nnx.Param(token_init(rngs.params(), (1, 1, c.embed_dim)))
        self.blocks = nnx.List(
            [Block(c.embed_dim, c.num_heads, c.mlp_ratio, rngs=rngs) for _ in range(c.depth)]
        )
        self.norm = nnx.LayerNorm(c.embed_dim, epsilon=1e-6, rngs=rngs)
        self.decoder_embed = nnx.Linear(c.embed_dim, c.decoder_dim, kernel_init=_xavier, rngs=rngs)
        self.mask_token = nnx.Param(token_init(rngs.params(), (c.decoder_dim,)))
        self.decoder_blocks = nnx.List(
            [
                Block(c.decoder_dim, c.decoder_heads, c.mlp_ratio, rngs=rngs)
                for _ in range(c.decoder_depth)
            ]
        )
        self.decoder_norm = nnx.LayerNorm(c.decoder_dim, epsilon=1e-6, rngs=rngs)
        self.decoder_pred = nnx.Linear(c.decoder_dim, c.patch_dim, kernel_init=_xavier, rngs=rngs)

    def __call__(
        self, images: jax.Array, key: jax.Array, *, masking: str = "jgather"
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        c = self.config
        mask_fn, unshuffle_fn = MASKINGS[masking]
        n = images.shape[0]
        target = jgather.patchify(images, c.patch_size)  # [N, L, P]
        pos = jnp.asarray(
            sincos_pos_embed_2d(c.grid, c.grid, c.embed_dim, temperature=c.pos_temperature)
        )  # [1 + L, D]
        dec_pos = jnp.asarray(
            sincos_pos_embed_2d(c.grid, c.grid, c.decoder_dim, temperature=c.pos_temperature)
        )

        # Encoder: embed every patch, then keep only the visible ones (the cls token is added
        # after masking, so it is never masked).
        tokens = self.patch_embed(target) + pos[None, 1:]  # [N, L, D]
        visible, mask, ids_restore = mask_fn(key, tokens, c.mask_ratio)  # [N, K, D]
        cls = jnp.broadcast_to(self.cls_token[...] + pos[None, :1], (n, 1, c.embed_dim))
        h = jnp.concatenate([cls, visible], axis=1)  # [N, 1 + K, D]
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)

        # Decoder: mask tokens back in their places; the cls token passes through in front.
        d = self.decoder_embed(h)  # [N, 1 + K, Dd]
        d = unshuffle_fn(d, ids_restore, self.mask_token[...], num_prefix=1)  # [N, 1 + L, Dd]
        d = d + dec_pos[None]
        for block in self.decoder_blocks:
            d = block(d)
        pred = self.decoder_pred(self.decoder_norm(d))[:, 1:]  # [N, L, P]
        return pred, mask, target


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


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
    config: MAEConfig = MAEConfig(),
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


# --------------------------------------------------------------------------------------------
# Evaluation and baselines
# --------------------------------------------------------------------------------------------


def normalize_patches(patches: jax.Array) -> jax.Array:
    """Each patch minus its mean, over its unbiased std (eps 1e-6): the norm_pix_loss target."""
    mean = patches.mean(axis=-1, keepdims=True)
    var = patches.var(axis=-1, keepdims=True, ddof=1)
    return (patches - mean) / jnp.sqrt(var + 1e-6)


def evaluate(
    graphdef: Any,
    params: Any,
    images: np.ndarray,
    *,
    train_images: np.ndarray,
    seed: int = 1234,
    repeats: int = 4,
) -> dict[str, float]:
    """Held-out reconstruction loss on the masked patches, next to two baselines.

    Every number is ``jgather.mae_loss`` (per-patch MSE averaged over the *masked* patches) in
    the space the model is trained in (pixels, or per-patch normalised pixels when
    ``norm_pix_loss``), on the same masks, averaged over ``repeats`` mask draws:

    * ``loss``: the model's prediction.
    * ``patch_mean``: each masked patch predicted by its own mean value (the best constant for
      that patch; it peeks at the target, so it is an oracle for a constant-per-patch guess).
      Its loss is the mean within-patch variance. With ``norm_pix_loss`` this prediction is 0.
    * ``train_mean_patch``: each masked patch predicted by the training set's mean patch at
      that position (the best guess that ignores the visible patches).

    Returns:
      ``{"loss", "patch_mean", "train_mean_patch"}`` as floats.
    """
    config = nnx.merge(graphdef, params).config
    norm_pix, patch_size = config.norm_pix_loss, config.patch_size

    def in_loss_space(p: jax.Array) -> jax.Array:
        return normalize_patches(p) if norm_pix else p

    train_patches = in_loss_space(jgather.patchify(jnp.asarray(train_images), patch_size))
    mean_patch = train_patches.mean(axis=0)  # [L, P]

    @jax.jit
    def one_draw(params, key):
        model = nnx.merge(graphdef, params)
        pred, mask, target = model(jnp.asarray(images), key)
        space = in_loss_space(target)
        own_mean = jnp.broadcast_to(space.mean(axis=-1, keepdims=True), space.shape)
        train_mean = jnp.broadcast_to(mean_patch[None], space.shape)
        losses = {
            "loss": jgather.mae_loss(pred=pred, target=target, mask=mask, norm_pix_loss=norm_pix),
            "patch_mean": jgather.mae_loss(
                pred=own_mean, target=target, mask=mask, norm_pix_loss=norm_pix
            ),
            "train_mean_patch": jgather.mae_loss(
                pred=train_mean, target=target, mask=mask, norm_pix_loss=norm_pix
            ),
        }
        return losses

    keys = jax.random.split(jax.random.key(seed), repeats)
    draws = jax.device_get([one_draw(params, k) for k in keys])
    return {name: float(np.mean([d[name] for d in draws])) for name in draws[0]}


def reconstruct(
    graphdef: Any, params: Any, images: np.ndarray, *, seed: int = 1234
) -> dict[str, np.ndarray]:
    """Original, masked and reconstructed images for display, each [n, H, W, C].

    ``masked`` has removed patches set to NaN (show them as blank). ``reconstruction`` pastes
    the model's predictions into the masked patches and keeps the visible ones; with
    ``norm_pix_loss`` the predictions are mapped back to pixels with each target patch's own
    mean and std (as MAE's visualisation does; that peeks at the target's statistics).
    """
    model = nnx.merge(graphdef, params)
    c = model.config
    pred, mask, target = model(jnp.asarray(images), jax.random.key(seed))
    if c.norm_pix_loss:
        mean = target.mean(axis=-1, keepdims=True)
        std = jnp.sqrt(target.var(axis=-1, keepdims=True, ddof=1) + 1e-6)
        pred = pred * std + mean
    removed = mask[:, :, None] > 0
    masked = jnp.where(removed, jnp.nan, target)
    pasted = jnp.where(removed, pred, target)

    def to_images(x: jax.Array) -> np.ndarray:
        return np.asarray(jgather.unpatchify(x, c.patch_size, c.channels))

    return {
        "original": np.asarray(images),
        "masked": to_images(masked),
        "reconstruction": to_images(pasted),
        "prediction": to_images(pred),
    }


# --------------------------------------------------------------------------------------------
# Throughput: jgather's masking vs the straightforward port, same model, same run
# --------------------------------------------------------------------------------------------


def _interleaved() -> Callable[..., dict[str, float]]:
    """The repository's shared timing harness, ``interleaved`` from benchmarks/_timing.py.

    ``benchmarks`` is a folder of the repository, not an installed package, so the file is
    loaded by its path (no ``sys.path`` edit); it is the same harness the benchmark scripts use.
    """
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "_timing.py"
    spec = importlib.util.spec_from_file_location("_jgather_benchmarks_timing", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"throughput: the timing harness {path} is missing.")
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.interleaved


def throughput(
    config: MAEConfig = MAEConfig(),
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
    side in this process with ``benchmarks/_timing.interleaved`` (round-robin, medians); each
    timed call runs ``steps_per_call`` consecutive steps and blocks on the result.

    Returns:
      ``{"jgather": steps/s, "port": steps/s, "speedup": jgather / port}``.
    """
    interleaved = _interleaved()
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
