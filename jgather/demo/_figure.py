"""The demo's figure, drawn with matplotlib's Agg canvas (no display, no pyplot state).

One row per strategy, four panels per row: the original photograph | masked (masked tokens
dimmed) | visible tokens (the kept tokens in encoder order, packed row-major) | restored by
``unshuffle`` (a grey mask token at every masked position). The layout is fixed in pixels so
that each panel shows the photograph at one screen pixel per image pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from jgather.demo._photo import MASK_GREY, MaskedImage

#: Masked tokens are drawn at this fraction of their brightness in the "masked" panel.
DIM = 0.3
#: Value (of 255) of the empty slots after the last kept token in the "visible tokens" panel:
#: light, so that they read as "nothing here" next to the dark dimmed tokens and grey mask token.
BACKGROUND = 236
#: Column titles, left to right.
PANELS = ("original", "masked", "visible tokens", "restored by unshuffle")

DPI = 100
# Margins and gaps in pixels: row labels on the left, the title and column titles on top,
# the legend below.
_LEFT, _RIGHT, _TOP, _BOTTOM, _COL_GAP, _ROW_GAP = 150, 24, 104, 70, 12, 16
_STRATEGY_NAMES = {
    "random": "MAE random",
    "tube": "tube (video)",
    "block": "block (BEiT)",
    "simmim": "SimMIM",
}


def panels(image: np.ndarray, row: MaskedImage) -> tuple[np.ndarray, ...]:
    """The four ``uint8`` [H, W, 3] panels of one row, in :data:`PANELS` order."""
    height, width, _ = image.shape
    gh, gw = row.mask.shape
    p = height // gh
    pixel_mask = np.kron(row.mask, np.ones((p, p), bool))[..., None]
    masked = np.where(pixel_mask, (image * DIM).astype(np.uint8), image)
    cells = np.full((gh * gw, p, p, 3), BACKGROUND, np.uint8)
    cells[: len(row.visible)] = row.visible
    visible = cells.reshape(gh, gw, p, p, 3).transpose(0, 2, 1, 3, 4).reshape(height, width, 3)
    return image, masked, visible, row.restored


def figure_size(image_shape: Sequence[int], num_rows: int) -> tuple[int, int]:
    """(width, height) in pixels of the figure for ``num_rows`` rows of this image size."""
    height, width = image_shape[:2]
    return (
        _LEFT + len(PANELS) * width + (len(PANELS) - 1) * _COL_GAP + _RIGHT,
        _TOP + num_rows * height + (num_rows - 1) * _ROW_GAP + _BOTTOM,
    )


def draw_figure(
    image: np.ndarray,
    rows: Sequence[MaskedImage],
    *,
    mask_ratio: float,
    patch_size: int,
    seed: int,
) -> Figure:
    """Draws the masking figure: one labelled row per strategy, a title and a legend.

    Args:
      image: the photograph, ``uint8`` [H, W, 3].
      rows: one :class:`MaskedImage` per strategy, top to bottom.
      mask_ratio: the ratio the rows were masked with (shown in the title).
      patch_size: token side in pixels (shown in the title).
      seed: the PRNG seed the masks were drawn from (shown in the title).

    Returns:
      A matplotlib ``Figure`` on an Agg canvas, :func:`figure_size` pixels at :data:`DPI`;
      its axes are the panels, row by row.
    """
    height, width, _ = image.shape
    fig_w, fig_h = figure_size(image.shape, len(rows))
    fig = Figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    grid = height // patch_size
    fig.text(
        0.5,
        1 - 26 / fig_h,
        "jgather: the masking family on one photograph",
        ha="center",
        va="center",
        fontsize=16,
        fontweight="bold",
    )
    fig.text(
        0.5,
        1 - 52 / fig_h,
        f"mask ratio {mask_ratio:g}  ·  {grid}×{grid} tokens of {patch_size}×{patch_size} px"
        f"  ·  --seed {seed}",
        ha="center",
        va="center",
        fontsize=11,
        color="#333333",
    )
    for r, row in enumerate(rows):
        top = _TOP + r * (height + _ROW_GAP)
        bottom = fig_h - top - height
        for c, panel in enumerate(panels(image, row)):
            left = _LEFT + c * (width + _COL_GAP)
            ax = fig.add_axes((left / fig_w, bottom / fig_h, width / fig_w, height / fig_h))
            ax.imshow(panel, interpolation="nearest", vmin=0, vmax=255)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():  # a thin frame; the image fills the axes
                spine.set_color("#9a9a9a")
                spine.set_linewidth(0.8)
            if r == 0:
                ax.set_title(PANELS[c], fontsize=11, pad=6)
        centre = 1 - (top + height / 2) / fig_h
        fig.text(
            (_LEFT - 10) / fig_w,
            centre + 10 / fig_h,
            _STRATEGY_NAMES.get(row.name, row.name),
            ha="right",
            va="center",
            fontsize=11,
            fontweight="bold",
        )
        fig.text(
            (_LEFT - 10) / fig_w,
            centre - 10 / fig_h,
            f"{int(row.mask.sum())} of {row.mask.size} masked",
            ha="right",
            va="center",
            fontsize=9,
            color="#444444",
        )
    grey = MASK_GREY / 255
    fur = (0.78, 0.55, 0.36)  # a typical tone of the photograph, for the swatch
    handles = [
        Patch(
            facecolor=(fur[0] * DIM, fur[1] * DIM, fur[2] * DIM),
            edgecolor="#555555",
            label=f"masked token (dimmed to {DIM:.0%})",
        ),
        Patch(facecolor=(grey,) * 3, edgecolor="#555555", label="mask token put back by unshuffle"),
        Patch(
            facecolor=(BACKGROUND / 255,) * 3,
            edgecolor="#555555",
            label="empty: the encoder gets only the visible tokens",
        ),
    ]
    fig.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=(0.5, (_BOTTOM / 2) / fig_h),
        ncol=3,
        frameon=False,
        fontsize=10,
        handlelength=1.6,
        handleheight=1.6,
    )
    return fig


def panel_boxes(fig: Figure) -> list[tuple[slice, slice]]:
    """Pixel boxes (rows, columns) of the figure's panels in the saved PNG, axes order."""
    _, fig_h = fig.canvas.get_width_height()
    boxes = []
    for ax in fig.axes:
        box = ax.get_window_extent()
        top, left = round(fig_h - box.y1), round(box.x0)
        boxes.append((slice(top, top + round(box.height)), slice(left, left + round(box.width))))
    return boxes


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Writes the figure as a PNG at :data:`DPI` (parent folders created); returns the path."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, facecolor="white")
    return path
