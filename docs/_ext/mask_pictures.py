"""The masking cookbook's pictures: one mask of each strategy, drawn at build time.

``STRATEGIES`` is the list the pictures are drawn from, one ``(name, title, draw)`` entry per
strategy: ``draw(key)`` returns that strategy's mask for one sample as a boolean array
``[frames, H, W]`` (``True`` = removed; images have one frame). A new strategy is one more
entry; its picture is ``_static/masks/<name>.png`` and it joins the gallery
(``_static/masks/gallery.png``). ``docs/conf.py`` calls :func:`write_pictures` at the start of
every build, so the pictures always show what the installed jgather draws.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jgather.masking as m

Draw = Callable[[jax.Array], np.ndarray]
GRID = (14, 14)  # ViT-B/16 on 224x224 images: 196 tokens
VIDEO = (4, 14, 14)  # 4 frames (tubelets) of 14x14 tokens


def _frames(mask: jax.Array, grid: tuple[int, ...]) -> np.ndarray:
    """One sample's ``[L]`` mask (``L`` row-major over ``grid``) as ``[frames, H, W]`` bool."""
    return np.asarray(mask[0]).astype(bool).reshape((-1, *grid[-2:]))


def _mae(key: jax.Array) -> np.ndarray:
    tokens = jnp.zeros((1, math.prod(GRID), 1))
    return _frames(m.random_masking(key, tokens, 0.75).mask, GRID)


def _patch_dropout(key: jax.Array) -> np.ndarray:
    # One cls token in front: its index 0 is dropped from the kept positions.
    tokens = jnp.zeros((1, 1 + math.prod(GRID), 1))
    kept = (
        np.asarray(m.patch_dropout(key, tokens, 0.5, num_prefix=1).indices[0, 1:]) - 1
    )
    removed = np.ones(math.prod(GRID), bool)
    removed[kept] = False
    return removed.reshape((1, *GRID))


def _per_sample(key: jax.Array) -> np.ndarray:
    tokens = jnp.zeros((1, math.prod(GRID), 1))
    out = m.random_masking_per_sample(key, tokens, jnp.array([0.6]), capacity=98)
    return _frames(out.mask, GRID)


#: ``(name, title, draw)``: one entry per strategy, in the cookbook's order.
STRATEGIES: list[tuple[str, str, Draw]] = [
    ("random_masking", "MAE random, 75%", _mae),
    (
        "tube_masking",
        "VideoMAE tube, 90%",
        lambda key: _frames(m.tube_masking(key, 1, VIDEO, 0.9), VIDEO),
    ),
    (
        "running_cell_masking",
        "VideoMAE V2 running cell, 50%",
        lambda key: _frames(m.running_cell_masking(key, 1, VIDEO, 0.5), VIDEO),
    ),
    (
        "block_masking",
        "BEiT block, 75 patches",
        lambda key: _frames(m.block_masking(key, 1, GRID, 75), GRID),
    ),
    (
        "simmim_masking",
        "SimMIM, 32px cells, 60%",
        lambda key: _frames(
            m.simmim_masking(key, 1, 224, mask_patch_size=32, model_patch_size=16), GRID
        ),
    ),
    ("patch_dropout", "patch dropout, 50%", _patch_dropout),
    (
        "variable_ratio_masking",
        "MaskGIT variable ratio",
        lambda key: _frames(
            m.variable_ratio_masking(key, 1, math.prod(GRID)).mask, GRID
        ),
    ),
    ("random_masking_per_sample", "per-sample ratio, 60%", _per_sample),
    (
        "inverse_block_masking",
        "data2vec 2.0 inverse block, 80%",
        lambda key: _frames(m.inverse_block_masking(key, 1, GRID, 0.8), GRID),
    ),
    (
        "multiblock_masking",
        "I-JEPA: outside the context",
        lambda key: _frames(~m.multiblock_masking(key, 1, GRID).context_mask, GRID),
    ),
]

#: Colours: removed tokens dark, kept tokens light.
REMOVED, KEPT = "#3b4a6b", "#e8edf5"


def _draw(ax, frames: np.ndarray, title: str) -> None:
    """One strategy's frames side by side on ``ax``, a thin gap between frames."""
    from matplotlib.colors import ListedColormap

    n, h, w = frames.shape
    canvas = np.full((h, n * w + (n - 1)), np.nan)
    for t in range(n):
        canvas[:, t * (w + 1) : t * (w + 1) + w] = frames[t]
    cmap = ListedColormap([KEPT, REMOVED])
    cmap.set_bad("white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(f"{title}\n{frames.mean():.0%} removed", fontsize=9)
    ax.set_axis_off()


def write_pictures(folder: Path, *, seed: int = 0) -> list[Path]:
    """Writes ``<name>.png`` for every entry of ``STRATEGIES`` and ``gallery.png`` into
    ``folder``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(seed)
    drawn = [(name, title, draw(key)) for name, title, draw in STRATEGIES]
    paths = []
    for name, title, frames in drawn:
        fig, ax = plt.subplots(figsize=(1.1 + 1.6 * frames.shape[0], 2.1))
        _draw(ax, frames, title)
        fig.tight_layout()
        paths.append(folder / f"{name}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    cols = 4
    rows = math.ceil(len(drawn) / cols)
    widths = [max(f.shape[0] for _, _, f in drawn[c::cols]) for c in range(cols)]
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(2.6 * cols + 1.2 * sum(w - 1 for w in widths) / 2, 2.4 * rows),
        squeeze=False,
    )
    for ax, (_, title, frames) in zip(axes.flat, drawn, strict=False):
        _draw(ax, frames, title)
    for ax in list(axes.flat)[len(drawn) :]:
        ax.set_axis_off()
    fig.tight_layout()
    paths.append(folder / "gallery.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths
