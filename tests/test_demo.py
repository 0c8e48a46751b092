"""Tests for ``python -m jgather demo``: its printout, its PNG, and its option handling."""

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from jgather import _demo

REPO = Path(__file__).resolve().parents[1]
SIDE = 224


def read_png(path):
    """Decodes the 8-bit RGB PNGs the demo writes, checking every structural field."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(tag + body) & 0xFFFFFFFF == crc, tag
        chunks.append((tag, body))
        pos += 12 + length
    assert pos == len(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1] == (b"IEND", b"")
    width, height, depth, color, compression, filtering, interlace = struct.unpack(
        ">IIBBBBB", chunks[0][1]
    )
    assert (depth, color, compression, filtering, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()  # filter type "none" on every scanline
    return rows[:, 1:].reshape(height, width, 3)


def split_panels(fig, num_rows):
    gap = _demo.GAP
    assert fig.shape == (num_rows * (SIDE + gap) - gap, 4 * (SIDE + gap) - gap, 3)
    panels = []
    for r in range(num_rows):
        top = r * (SIDE + gap)
        panels.append(
            [fig[top : top + SIDE, c * (SIDE + gap) : c * (SIDE + gap) + SIDE] for c in range(4)]
        )
    return panels


def to_tokens(image, p):
    """[H, W, 3] -> [L, p, p, 3] in row-major token order."""
    g = image.shape[0] // p
    return image.reshape(g, p, g, p, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, p, p, 3)


def check_row(original, panels, p):
    """Checks one figure row against the photo and returns the token mask it shows."""
    image, masked, visible, restored = panels
    np.testing.assert_array_equal(image, original)
    tokens = to_tokens(original, p)
    restored_tokens = to_tokens(restored, p)
    # Restored: every token is either the original token or the flat grey mask token.
    kept = (restored_tokens == tokens).reshape(len(tokens), -1).all(axis=1)
    grey = (restored_tokens == _demo.MASK_GREY).reshape(len(tokens), -1).all(axis=1)
    assert (kept ^ grey).all()
    mask = ~kept
    # Masked: original where kept, dimmed original where masked.
    pixel_mask = np.kron(mask.reshape(SIDE // p, SIDE // p), np.ones((p, p), bool))[..., None]
    dimmed = (original * _demo.DIM).astype(np.uint8)
    np.testing.assert_array_equal(masked, np.where(pixel_mask, dimmed, original))
    # Visible: the kept tokens, each once, packed row-major; the rest is background.
    cells = to_tokens(visible, p)
    num_keep = int(kept.sum())
    assert (cells[num_keep:] == _demo.BACKGROUND).all()
    first_row_with = {}
    for i, token in reversed(list(enumerate(tokens))):
        first_row_with[token.tobytes()] = i
    ids_keep = [first_row_with.get(cell.tobytes(), -1) for cell in cells[:num_keep]]
    assert sorted(ids_keep) == np.flatnonzero(kept).tolist()
    return mask.reshape(SIDE // p, SIDE // p)


@pytest.fixture(scope="module")
def original():
    image = _demo.load_sample_image()
    assert image.shape == (SIDE, SIDE, 3) and image.dtype == np.uint8
    assert image.std() > 20  # a photograph, not a blank array
    return image


def check_strategy_rows(original, fig, printed, ratio=0.75):
    """Every strategy's row, with each strategy's defining property."""
    rows = split_panels(fig, len(_demo.STRATEGIES))
    masks = dict(zip(_demo.STRATEGIES, (check_row(original, r, 16) for r in rows), strict=True))
    num_tokens = 14 * 14
    assert masks["random"].sum() == num_tokens - int(num_tokens * (1 - ratio))
    assert masks["tube"].sum() == int(ratio * num_tokens)
    assert 0 < masks["block"].sum() <= int(ratio * num_tokens)
    # SimMIM draws on a 2x coarser grid: the mask is constant on 2x2 token blocks.
    coarse = masks["simmim"].reshape(7, 2, 7, 2)
    assert (coarse == coarse[:, :1, :, :1]).all()
    for name, mask in masks.items():
        assert f"{name:>6}: {int(mask.sum())} of {num_tokens} tokens masked" in printed


def test_demo_in_process_walkthrough_and_figure(tmp_path, capsys, original):
    out = tmp_path / "figure.png"
    assert _demo.main(["demo", "--out", str(out), "--seed", "3", "--strategy", "random"]) == 0
    printed = capsys.readouterr().out
    # The seed's walk-through, computed by jgather.
    assert "out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8" in printed
    assert "dim=1" in printed
    assert "infer_gather(x, x_masked): dim=1, kept tokens [10, 12, 4, 13]" in printed
    assert f"wrote {out}" in printed
    (row,) = split_panels(read_png(out), 1)
    mask = check_row(original, row, 16)
    assert mask.sum() == 196 - int(196 * 0.25)
    assert f"random: {int(mask.sum())} of 196 tokens masked, 49 visible" in printed


def test_demo_is_deterministic_and_seed_dependent(tmp_path, capsys):
    paths = []
    for seed in (1, 1, 2):
        paths.append(tmp_path / f"s{seed}_{len(paths)}.png")
        assert (
            _demo.main(
                ["demo", "--out", str(paths[-1]), "--seed", str(seed), "--strategy", "random"]
            )
            == 0
        )
    capsys.readouterr()
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes() != paths[2].read_bytes()


def test_demo_options_ratio_patch_size_and_folder_out(tmp_path, capsys, original):
    folder = tmp_path / "nested" / "dir"
    argv = [
        "demo",
        "--out",
        str(folder),
        "--mask-ratio",
        "0.5",
        "--patch-size",
        "32",
        "--strategy",
        "random",
    ]
    assert _demo.main(argv) == 0
    capsys.readouterr()
    fig = read_png(folder / "jgather_demo.png")
    (row,) = split_panels(fig, 1)
    mask = check_row(original, row, 32)
    assert mask.shape == (7, 7) and mask.sum() == 49 - int(49 * 0.5)


def test_png_writer_roundtrips_through_pillow(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path = _demo.write_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_png(path), rgb)
    with pil.open(path) as im:
        im.load()
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), rgb)


@pytest.mark.parametrize(
    "bad",
    [np.zeros((4, 4, 3), np.float32), np.zeros((4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)],
)
def test_png_writer_rejects_bad_arrays(tmp_path, bad):
    with pytest.raises(ValueError, match="uint8 array of shape"):
        _demo.write_png(tmp_path / "bad.png", bad)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["demo", "--mask-ratio", "1.5"], "--mask-ratio"),
        (["demo", "--mask-ratio", "abc"], "--mask-ratio"),
        (["demo", "--mask-ratio", "0.999"], "keeps no token"),
        (["demo", "--patch-size", "15"], "does not divide"),
        (["demo", "--patch-size", "0"], "--patch-size"),
        (["demo", "--strategy", "nope"], "--strategy"),
        (["demo", "--seed", "x"], "--seed"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "required"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_options_one_line_error(argv, match, capsys):
    assert _demo.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m jgather: error:") and match in lines[0]


def test_help_lists_every_option(capsys):
    assert _demo.main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--out", "--seed", "--mask-ratio", "--patch-size", "--strategy", "--help"):
        assert option in text


def test_unwritable_out_is_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert (
        _demo.main(["demo", "--out", str(blocker / "sub" / "f.png"), "--strategy", "random"]) == 1
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m jgather: error:")


def _run_module(args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("XLA_FLAGS", None)  # run as a user would, on the default single host device
    return subprocess.run(
        [sys.executable, "-m", "jgather", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_python_m_jgather_demo_subprocess(tmp_path, original):
    done = _run_module(["demo", "--out", "tmp"], tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "tmp" / "jgather_demo.png"
    assert f"wrote {Path('tmp') / 'jgather_demo.png'}" in done.stdout
    check_strategy_rows(original, read_png(path), done.stdout)
    bad = _run_module(["demo", "--mask-ratio", "2"], tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_ratio_that_masks_every_simmim_cell_is_one_line_error(tmp_path, capsys):
    # ceil(49 * 0.98) = 49: SimMIM would hide all 7 x 7 coarse cells, leaving nothing to keep.
    argv = [
        "demo",
        "--out",
        str(tmp_path / "f.png"),
        "--strategy",
        "simmim",
        "--mask-ratio",
        "0.98",
    ]
    assert _demo.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "masks every token with the simmim strategy" in lines[0]
    assert not (tmp_path / "f.png").exists()
