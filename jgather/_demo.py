"""``python -m jgather demo``: the seed's gather walk-through and MAE-style masking of a photo.

The demo needs only jgather's core dependencies (jax, jaxlib, chex, numpy): the sample
photograph is a bundled ``.npy`` array and the figure is written by the small PNG encoder
below (zlib + struct), so neither matplotlib nor Pillow is needed at run time.
"""

from __future__ import annotations

import argparse
import importlib.resources
import struct
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgather._explain import explain, infer_gather
from jgather._gather import gather
from jgather._mask_strategies import block_masking, simmim_masking, tube_masking
from jgather._masking import apply_mask, random_masking, unshuffle
from jgather._patches import patchify, unpatchify

__all__ = ["STRATEGIES", "compose_figure", "load_sample_image", "main", "write_png"]

#: Masking strategies the demo can draw, in figure-row order.
STRATEGIES = ("random", "tube", "block", "simmim")

#: Pixel value of the mask token written back by ``unshuffle`` in the restored panel.
MASK_GREY = 128
#: Masked patches are drawn at this fraction of their brightness in the "masked" panel.
DIM = 0.3
#: Background of the "visible tokens" panel beyond the last kept token.
BACKGROUND = 24
#: Width in pixels of the white gutter between panels and rows.
GAP = 4

_PANELS = ("original", "masked", "visible tokens", "restored by unshuffle")


class _UsageError(Exception):
    """A bad option or option value; ``main`` prints it on one line and exits with 2."""


class _Exit(Exception):
    """argparse asked to exit (``--help``); carries the status for ``main`` to return."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


# --------------------------------------------------------------------------- data and PNG


def load_sample_image() -> np.ndarray:
    """The bundled sample photograph (CC0; see ``jgather/data/NOTICE.md``).

    Returns:
      A ``uint8`` array of shape [224, 224, 3] (RGB).
    """
    resource = importlib.resources.files("jgather") / "data" / "chelsea_224.npy"
    with resource.open("rb") as f:
        return np.load(f, allow_pickle=False)


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    """Writes an 8-bit RGB image as a PNG file using only zlib and struct.

    Every scanline uses filter type 0 (none); the image data is one zlib stream in a single
    IDAT chunk, which every PNG reader accepts.

    Args:
      path: destination file; parent folders are created.
      rgb: ``uint8`` array of shape [H, W, 3].

    Returns:
      The path written.

    Raises:
      ValueError: ``rgb`` is not a ``uint8`` [H, W, 3] array with H, W >= 1.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ValueError(
            f"write_png: expected a uint8 array of shape [H, W, 3], got {rgb.dtype} {rgb.shape}."
        )
    height, width, _ = rgb.shape
    scanlines = np.concatenate(
        [np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1
    )

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6))
        + chunk(b"IEND", b"")
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


# --------------------------------------------------------------------------- masking rows


class MaskedImage(NamedTuple):
    """One strategy applied to the photo: the panels' ingredients."""

    name: str
    mask: np.ndarray  # [gh, gw] bool, True = masked
    visible: np.ndarray  # [K, p, p, 3] uint8, kept tokens in encoder (x_masked) order
    restored: np.ndarray  # [H, W, 3] uint8, unshuffle(x_masked, ids_restore, grey) as an image


def _strategy_mask(
    name: str, key: jax.Array, image_size: int, patch_size: int, ratio: float
) -> jax.Array:
    """Boolean [1, L] mask (True = masked) drawn by one member of the masking family."""
    g = image_size // patch_size
    if name == "tube":
        # A still photo as a two-slice clip: one spatial mask repeated over both slices.
        mask = tube_masking(key, 1, (2, g, g), ratio)
        return mask.reshape(1, 2, g * g)[:, 0]
    if name == "block":
        target = int(ratio * g * g)
        return block_masking(key, 1, (g, g), target, min_num_patches=max(1, min(16, target)))
    if name == "simmim":
        # Coarse cells of two tokens a side where that leaves at least a 4 x 4 cell grid.
        double = 2 * patch_size
        coarse = double if image_size % double == 0 and image_size // double >= 4 else patch_size
        return simmim_masking(
            key,
            1,
            image_size,
            mask_patch_size=coarse,
            model_patch_size=patch_size,
            mask_ratio=ratio,
        )
    raise ValueError(f"unknown masking strategy {name!r}; expected one of {STRATEGIES}")


def mask_image(
    image: np.ndarray, strategy: str, key: jax.Array, mask_ratio: float, patch_size: int
) -> MaskedImage:
    """Masks the photo's tokens with one strategy and puts mask tokens back with ``unshuffle``.

    Args:
      image: ``uint8`` [H, W, 3] with H and W multiples of ``patch_size``.
      strategy: one of :data:`STRATEGIES`.
      key: PRNG key.
      mask_ratio: fraction of tokens to mask.
      patch_size: token side in pixels.

    Returns:
      A :class:`MaskedImage`.
    """
    height, width, _ = image.shape
    grid = (height // patch_size, width // patch_size)
    pixels = jnp.asarray(image[None].astype(np.float32) / 255.0)  # [1, H, W, 3]
    tokens = patchify(pixels, patch_size)  # [1, L, p*p*3]
    if strategy == "random":
        x_masked, mask, ids_restore = random_masking(key, tokens, mask_ratio)
        mask = np.asarray(mask).astype(bool)
    else:
        mask = _strategy_mask(strategy, key, height, patch_size, mask_ratio)
        num_keep = int(grid[0] * grid[1] - np.asarray(mask).sum())
        if num_keep < 1:  # SimMIM rounds its masked count up and can cover everything
            raise _UsageError(
                f"argument --mask-ratio: {mask_ratio} masks every token with the {strategy} "
                "strategy; use a smaller ratio"
            )
        x_masked, mask, ids_restore = apply_mask(tokens, mask, num_keep)
        mask = np.asarray(mask).astype(bool)
    grey = np.full((tokens.shape[-1],), MASK_GREY / 255.0, np.float32)
    full = unshuffle(x_masked, ids_restore, grey, num_prefix=0)  # [1, L, p*p*3]
    restored = np.asarray(unpatchify(full, patch_size, 3, grid=grid))[0]
    as_uint8 = lambda a: np.clip(np.round(np.asarray(a) * 255.0), 0, 255).astype(np.uint8)
    visible = as_uint8(np.asarray(x_masked)[0]).reshape(-1, patch_size, patch_size, 3)
    return MaskedImage(
        strategy,
        np.asarray(mask[0]).reshape(grid),
        visible,
        as_uint8(restored),
    )


def compose_figure(image: np.ndarray, rows: Sequence[MaskedImage]) -> np.ndarray:
    """Lays out one row per strategy: original | masked | visible tokens | restored.

    * masked: the photo with masked tokens dimmed to ``DIM`` of their brightness;
    * visible tokens: the kept tokens in encoder order (``x_masked``), filled row-major into
      the token grid, the rest ``BACKGROUND``;
    * restored: ``unshuffle`` output with a grey (``MASK_GREY``) mask token, unpatchified.

    Panels and rows are separated by ``GAP`` white pixels.

    Args:
      image: ``uint8`` [H, W, 3].
      rows: one :class:`MaskedImage` per strategy.

    Returns:
      ``uint8`` [len(rows) * (H + GAP) - GAP, 4 * (W + GAP) - GAP, 3].
    """
    height, width, _ = image.shape
    fig = np.full(
        (len(rows) * (height + GAP) - GAP, len(_PANELS) * (width + GAP) - GAP, 3), 255, np.uint8
    )
    for r, row in enumerate(rows):
        gh, gw = row.mask.shape
        p = height // gh
        pixel_mask = np.kron(row.mask, np.ones((p, p), bool))[..., None]
        masked = np.where(pixel_mask, (image * DIM).astype(np.uint8), image)
        cells = np.full((gh * gw, p, p, 3), BACKGROUND, np.uint8)
        cells[: len(row.visible)] = row.visible
        visible = cells.reshape(gh, gw, p, p, 3).transpose(0, 2, 1, 3, 4)
        visible = visible.reshape(height, width, 3)
        top = r * (height + GAP)
        for c, panel in enumerate((image, masked, visible, row.restored)):
            left = c * (width + GAP)
            fig[top : top + height, left : left + width] = panel
    return fig


# --------------------------------------------------------------------------- walk-through


def _show(label: str, array) -> None:
    body = np.array2string(np.asarray(array), separator=", ", max_line_width=96)
    body = body.replace("\n", "\n    ")
    print(f"  {label}:\n    {body}")


def _walkthrough(key: jax.Array) -> None:
    print("1. torch.gather forwards (the seed's example), computed with jgather.gather")
    x = jnp.arange(24).reshape(2, 3, 4)
    index = jnp.array([[[0, 0, 0, 0], [2, 2, 2, 2]], [[0, 0, 0, 0], [2, 2, 2, 2]]])
    out = gather(x, 1, index)
    _show("input = arange(24).reshape(2, 3, 4)", x)
    _show("index", index)
    _show("out = jgather.gather(input, 1, index)", out)
    print("  rule for dim=1: out[i][j][k] = input[i][index[i][j][k]][k]")
    print(f"  explain: {explain(x, 1, index, (0, 1, 0))}")
    print()
    print("2. backwards: jgather.infer_gather(input, out) recovers dim and index")
    for dim, found in infer_gather(x, out):
        print(f"  dim={dim}")
        _show("index", found)
    print()

    print("3. MAE random_masking of x = arange(64).reshape(1, 16, 4)")
    tokens = jnp.arange(64).reshape(1, 16, 4)
    # Noise whose four smallest entries sit at tokens 10, 12, 4, 13 reproduces the seed's
    # printed example: argsort(noise) starts with exactly those ids.
    seed_keep = [10, 12, 4, 13]
    noise = np.linspace(0.5, 1.0, 16, dtype=np.float32)
    noise[seed_keep] = [0.0, 0.1, 0.2, 0.3]
    x_masked, mask, ids_restore = random_masking(None, tokens, 0.75, noise=jnp.asarray(noise)[None])
    print("  a) with noise whose smallest entries are at tokens 10, 12, 4, 13 (mask_ratio 0.75):")
    _show("x_masked", x_masked)
    _show("mask (0 keep, 1 remove)", mask)
    _show("ids_restore", ids_restore)
    ((dim, found),) = infer_gather(tokens, x_masked)
    print(
        f"  infer_gather(x, x_masked): dim={dim}, kept tokens {np.asarray(found[0, :, 0]).tolist()}"
    )
    x_masked, mask, ids_restore = random_masking(key, tokens, 0.75)
    print("  b) with noise drawn from --seed (mask_ratio 0.75):")
    _show("x_masked", x_masked)
    _show("mask", mask)
    _show("ids_restore", ids_restore)
    for dim, found in infer_gather(tokens, x_masked):
        kept = np.asarray(found[0, :, 0]).tolist()
        print(f"  infer_gather(x, x_masked): dim={dim}, kept tokens {kept}")
    print()


# --------------------------------------------------------------------------- command line


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as exceptions, so ``main`` prints them on one line."""

    def error(self, message: str):
        raise _UsageError(message)

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


#: Seeds ``jax.random.key`` accepts: a signed or unsigned 64-bit value is read as a C long.
SEED_RANGE = (-(2**63), 2**63 - 1)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    low, high = SEED_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range; a seed must be an integer in [-2**63, 2**63 - 1]"
        )
    return value


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m jgather",
        description="jgather: torch-exact gather/scatter and masked-modeling token masking.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="walk through torch.gather and MAE masking, and draw the masking family",
        description=(
            "Prints the torch.gather walk-through (forwards with explain, backwards with "
            "infer_gather), MAE random masking of arange(64).reshape(1, 16, 4), and writes a "
            "PNG of the bundled photograph masked by each strategy: original | masked | "
            "visible tokens | restored by unshuffle."
        ),
    )
    demo.add_argument(
        "--out",
        default="jgather_demo.png",
        help=(
            "PNG file to write (a name ending in .png, or any existing file such as /dev/null), "
            "or a folder (then FOLDER/jgather_demo.png); default: %(default)s"
        ),
    )
    demo.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help="PRNG seed, an integer in [-2**63, 2**63 - 1] (default: %(default)s)",
    )
    demo.add_argument(
        "--mask-ratio",
        type=_ratio,
        default=0.75,
        help="fraction of the photograph's tokens masked, in [0, 1) (default: %(default)s)",
    )
    demo.add_argument(
        "--patch-size",
        type=_positive_int,
        default=16,
        help="token side in pixels; must divide 224 (default: %(default)s)",
    )
    demo.add_argument(
        "--strategy",
        choices=("all", *STRATEGIES),
        default="all",
        help="which masking strategy to draw (default: %(default)s, one row each)",
    )
    return parser


def _check(args: argparse.Namespace, image: np.ndarray) -> None:
    side = image.shape[0]
    if side % args.patch_size:
        divisors = [d for d in range(1, side + 1) if side % d == 0 and d <= side // 2]
        raise _UsageError(
            f"argument --patch-size: {args.patch_size} does not divide the {side}-pixel "
            f"photo; use one of {divisors}"
        )
    num_tokens = (side // args.patch_size) ** 2
    if int(num_tokens * (1 - args.mask_ratio)) < 1:
        raise _UsageError(
            f"argument --mask-ratio: {args.mask_ratio} keeps no token of {num_tokens}; "
            "use a smaller ratio or a smaller --patch-size"
        )


def _output_path(out: str) -> Path:
    """``--out`` as a file: a ``.png`` name or an existing non-folder (``/dev/null``, a file
    to overwrite) is written as given; anything else is a folder for ``jgather_demo.png``."""
    path = Path(out)
    if path.is_dir():
        return path / "jgather_demo.png"
    if path.suffix.lower() == ".png" or path.exists():
        return path
    return path / "jgather_demo.png"


def _demo(args: argparse.Namespace, image: np.ndarray) -> int:
    start = time.perf_counter()
    key = jax.random.key(args.seed)
    walk_key, image_key = jax.random.split(key)
    _walkthrough(walk_key)

    names = STRATEGIES if args.strategy == "all" else (args.strategy,)
    side = image.shape[0]
    grid = side // args.patch_size
    print(
        f"4. the bundled photograph ({side}x{side}, {grid}x{grid} tokens of "
        f"{args.patch_size}x{args.patch_size} px), mask_ratio {args.mask_ratio}"
    )
    rows = []
    for name, k in zip(names, jax.random.split(image_key, len(names)), strict=True):
        row = mask_image(image, name, k, args.mask_ratio, args.patch_size)
        rows.append(row)
        print(
            f"  {name:>6}: {int(row.mask.sum())} of {row.mask.size} tokens masked, "
            f"{len(row.visible)} visible"
        )
    path = write_png(_output_path(args.out), compose_figure(image, rows))
    print(f"  columns: {' | '.join(_PANELS)}; rows: {', '.join(names)}")
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the process exit status.

    Args:
      argv: arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
      0 on success, 2 on a usage error, 1 if the figure cannot be written; errors are
      reported on one line on stderr.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
        image = load_sample_image()
        _check(args, image)
    except _UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except _Exit as done:
        return done.status
    commands: dict[str, Callable[[argparse.Namespace, np.ndarray], int]] = {"demo": _demo}
    try:
        return commands[args.command](args, image)
    except _UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. --out names a place that cannot be written
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 1
