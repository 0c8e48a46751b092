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
import textwrap
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
        np.asarray(
            m.patch_dropout(key, tokens, 0.5, num_prefix=1).indices[0, 1:]
        )
        - 1
    )
    removed = np.ones(math.prod(GRID), bool)
    removed[kept] = False
    return removed.reshape((1, *GRID))


def _per_sample(key: jax.Array) -> np.ndarray:
    tokens = jnp.zeros((1, math.prod(GRID), 1))
    out = m.random_masking_per_sample(
        key, tokens, jnp.array([0.6]), capacity=98
    )
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
        lambda key: _frames(
            m.running_cell_masking(key, 1, VIDEO, 0.5), VIDEO
        ),
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
            m.simmim_masking(
                key, 1, 224, mask_patch_size=32, model_patch_size=16
            ),
            GRID,
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
        lambda key: _frames(
            m.inverse_block_masking(key, 1, GRID, 0.8), GRID
        ),
    ),
    (
        "multiblock_masking",
        "I-JEPA multi-block",
        lambda key: _frames(
            ~m.multiblock_masking(key, 1, GRID).context_mask, GRID
        ),
    ),
]


def _ijepa_targets(key: jax.Array) -> list[tuple[int, int, int, int]]:
    """The target blocks of the same draw as the ``multiblock_masking`` entry, as
    ``(top, left, height, width)``."""
    boxes = np.asarray(
        m.multiblock_masking(key, 1, GRID).target_boxes[0, :, 0]
    )
    return [tuple(int(v) for v in box) for box in boxes]


#: Drawn over a strategy's mask: its blocks, numbered (the context alone would hide them).
OVERLAYS: dict[
    str, Callable[[jax.Array], list[tuple[int, int, int, int]]]
] = {
    "multiblock_masking": _ijepa_targets,
}

#: Colours: removed tokens dark, kept tokens light; the targets' outlines (colour-blind safe).
REMOVED, KEPT = "#3b4a6b", "#e8edf5"
TARGET_COLOURS = ("#e69f00", "#56b4e9", "#cc79a7", "#009e73", "#d55e00")
#: Text sizes in points. Pictures are saved at DPI and shown at about half their pixel width
#: in the page's column (the gallery: FIGURE_WIDTH inches fill the column), so a 10-point
#: title is about 14 px on the page.
TITLE_SIZE, LABEL_SIZE = 10, 9
DPI = 200
FIGURE_WIDTH = 7.6


def _draw(
    ax,
    frames: np.ndarray,
    title: str,
    boxes: list[tuple[int, int, int, int]] | None = None,
) -> None:
    """One strategy's frames side by side on ``ax``, a thin gap between frames; ``boxes``
    (``(top, left, height, width)`` on the first frame) outlined and numbered."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Rectangle

    n, h, w = frames.shape
    canvas = np.full((h, n * w + (n - 1)), np.nan)
    for t in range(n):
        canvas[:, t * (w + 1) : t * (w + 1) + w] = frames[t]
    cmap = ListedColormap([KEPT, REMOVED])
    cmap.set_bad("white")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    caption = f"{frames.mean():.0%} removed"
    for i, (top, left, bh, bw) in enumerate(boxes or []):
        colour = TARGET_COLOURS[i % len(TARGET_COLOURS)]
        ax.add_patch(
            Rectangle(
                (left - 0.5, top - 0.5),
                bw,
                bh,
                fill=False,
                lw=2.2,
                ec=colour,
            )
        )
        ax.text(
            left + 0.3,
            top + 0.3,
            str(i + 1),
            color="black",
            fontsize=LABEL_SIZE,
            fontweight="bold",
            va="top",
            bbox={"facecolor": colour, "edgecolor": "none", "pad": 1.5},
        )
    if boxes:
        caption = "context light, targets 1-4"
    ax.set_title(
        f"{textwrap.fill(title, 24)}\n{caption}", fontsize=TITLE_SIZE
    )
    ax.set_axis_off()


def write_pictures(folder: Path, *, seed: int = 0) -> list[Path]:
    """Writes ``<name>.png`` for every entry of ``STRATEGIES`` and ``gallery.png`` into
    ``folder``; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    key = jax.random.key(seed)
    drawn = [
        (
            name,
            title,
            draw(key),
            OVERLAYS[name](key) if name in OVERLAYS else None,
        )
        for name, title, draw in STRATEGIES
    ]
    paths = []
    for name, title, frames, boxes in drawn:
        fig, ax = plt.subplots(figsize=(1.2 + 1.4 * frames.shape[0], 2.2))
        _draw(ax, frames, title, boxes)
        fig.tight_layout()
        paths.append(folder / f"{name}.png")
        fig.savefig(paths[-1], dpi=DPI)
        plt.close(fig)
    # The gallery: the video strategies (several frames) two to a row, the images four.
    video = [d for d in drawn if d[2].shape[0] > 1]
    images = [d for d in drawn if d[2].shape[0] == 1]
    cols = 4
    rows = math.ceil(len(video) / 2) + math.ceil(len(images) / cols)
    video_rows = math.ceil(len(video) / 2)
    heights = [1.5] * video_rows + [2.5] * (rows - video_rows)
    fig = plt.figure(figsize=(FIGURE_WIDTH, sum(heights)))
    grid = fig.add_gridspec(rows, cols, height_ratios=heights)
    slots = [
        grid[i // 2, (i % 2) * 2 : (i % 2) * 2 + 2]
        for i in range(len(video))
    ]
    first = math.ceil(len(video) / 2)
    slots += [grid[first + i // cols, i % cols] for i in range(len(images))]
    for slot, (_, title, frames, boxes) in zip(
        slots, video + images, strict=True
    ):
        _draw(fig.add_subplot(slot), frames, title, boxes)
    fig.tight_layout()
    paths.append(folder / "gallery.png")
    fig.savefig(paths[-1], dpi=DPI)
    plt.close(fig)
    return paths
