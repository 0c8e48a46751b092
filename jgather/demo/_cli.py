"""``python -m jgather demo``: argparse plumbing.

The only place where errors become exit statuses: a bad option, or a library error
(``ValueError``/``TypeError``/``IndexError``) raised for the options given, is printed on
one line with exit status 2; a figure that cannot be written, with exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import jax

from jgather.demo._photo import STRATEGIES, load_sample_image, mask_image
from jgather.demo._walkthrough import gather_walkthrough, mae_walkthrough

PROG = "python -m jgather"
#: What the figure needs: pyproject.toml's ``demo`` extra, as one pip argument (no index
#: serves jgather itself, so the hint names matplotlib; tests/test_demo.py checks they agree).
DEMO_REQUIREMENT = '"matplotlib>=3.8"'

#: Seeds ``jax.random.key`` accepts: a signed or unsigned 64-bit value is read as a C long.
SEED_RANGE = (-(2**63), 2**63 - 1)


class _UsageError(Exception):
    """A bad option or option value; ``main`` prints it on one line and returns 2."""


class _Exit(Exception):
    """argparse asked to exit (``--help``); carries the status for ``main`` to return."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as exceptions, so ``main`` prints them on one line."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            sys.stderr.write(message)
        raise _Exit(status)


def _parsed(text: str, parse: Callable[[str], Any], ok: Callable[[Any], bool], want: str) -> Any:
    """``parse(text)`` when it reads and ``ok`` accepts it, else argparse's error ("expected
    {want}")."""
    try:
        value = parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {want}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {want}, got {value}")
    return value


def _ratio(text: str) -> float:
    return float(_parsed(text, float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)"))


def _positive_int(text: str) -> int:
    return int(_parsed(text, int, lambda v: v >= 1, "a positive integer"))


def _seed(text: str) -> int:
    low, high = SEED_RANGE
    value = int(_parsed(text, int, lambda v: True, "an integer"))
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range; a seed must be an integer in [-2**63, 2**63 - 1]"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m jgather`` parser with its one command, ``demo``."""
    parser = _Parser(
        prog=PROG,
        description="jgather: torch-exact gather/scatter and masked-modeling token masking.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    demo = commands.add_parser(
        "demo",
        help="walk through torch.gather and MAE masking, and draw the masking family",
        description=(
            "Prints the torch.gather walk-through on the dim=1 example on "
            "arange(24).reshape(2, 3, 4) (forwards with explain, backwards with infer_gather) "
            "and MAE's 16-token example (random_masking of arange(64).reshape(1, 16, 4)), and "
            "writes a PNG of the bundled photograph masked by each strategy: original | "
            "masked | visible tokens | restored by unshuffle."
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


def output_path(out: str) -> Path:
    """``--out`` as a file: a ``.png`` name or an existing non-folder (``/dev/null``, a file
    to overwrite) is written as given; anything else is a folder for ``jgather_demo.png``."""
    path = Path(out)
    if path.is_dir():
        return path / "jgather_demo.png"
    if path.suffix.lower() == ".png" or path.exists():
        return path
    return path / "jgather_demo.png"


def _demo(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:  # the figure needs the demo extra; say so before any work is done
        from jgather.demo import _figure
    except ModuleNotFoundError as err:
        print(
            f"{PROG}: error: the demo draws its figure with matplotlib ({err}); "
            f"install it with: pip install {DEMO_REQUIREMENT} "
            '(or, in a clone of jgather: pip install ".[demo]")',
            file=sys.stderr,
        )
        return 1
    walk_key, image_key = jax.random.split(jax.random.key(args.seed))
    image = load_sample_image()
    names = STRATEGIES if args.strategy == "all" else (args.strategy,)
    # Mask first: a library error for these options is reported before anything is printed.
    keys = jax.random.split(image_key, len(names))
    rows = [
        mask_image(image, name, k, args.mask_ratio, args.patch_size)
        for name, k in zip(names, keys, strict=True)
    ]
    print("\n".join([*gather_walkthrough(), "", *mae_walkthrough(walk_key), ""]))
    side, grid = image.shape[0], rows[0].mask.shape[0]
    print(
        f"4. the bundled photograph ({side}x{side}, {grid}x{grid} tokens of "
        f"{args.patch_size}x{args.patch_size} px), mask_ratio {args.mask_ratio}"
    )
    for row in rows:
        print(
            f"  {row.name:>6}: {int(row.mask.sum())} of {row.mask.size} tokens masked, "
            f"{len(row.visible)} visible"
        )
    fig = _figure.draw_figure(
        image, rows, mask_ratio=args.mask_ratio, patch_size=args.patch_size, seed=args.seed
    )
    path = _figure.save_figure(fig, output_path(args.out))
    print(f"  columns: {' | '.join(_figure.PANELS)}; rows: {', '.join(names)}")
    print(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the process exit status.

    Args:
      argv: arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
      0 on success; 2 on a bad option, or a library error for the options given; 1 if the
      figure cannot be drawn or written. Errors are reported on one line on stderr.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return _demo(args)
    except _Exit as done:
        return done.status
    except (_UsageError, ValueError, TypeError, IndexError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. --out names a place that cannot be written
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
