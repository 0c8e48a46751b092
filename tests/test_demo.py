"""Tests for ``python -m jgather demo``: its walk-through, its figure, and its option handling."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import numpy as np
import pytest
from pipelines import child_xla_flags

pytest.importorskip("matplotlib")
from matplotlib.image import imread

import jgather.demo
from jgather.demo import _figure, _photo, main

REPO = Path(__file__).resolve().parents[1]
SIDE = 224
INSET = 2  # pixels trimmed off each token's edge before comparing (panel frames, rounding)


# --------------------------------------------------------------------------- walk-through


def test_gather_walkthrough_dim1_example_on_arange24():
    lines = jgather.demo.gather_walkthrough()
    assert lines[0] == (
        "1. torch.gather forwards: the dim=1 example on arange(24).reshape(2, 3, 4)"
    )
    out = lines.index("  out = jgather.gather(input, 1, index):")
    assert lines[out + 1 : out + 6] == [
        "    [[[ 0,  1,  2,  3],",
        "      [ 8,  9, 10, 11]],",
        "",
        "     [[12, 13, 14, 15],",
        "      [20, 21, 22, 23]]]",
    ]
    assert "  explain: out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8" in lines
    # Backwards: infer_gather finds exactly one answer, dim=1 with the forwards index.
    back = lines.index("2. backwards: jgather.infer_gather(input, out) recovers dim and index")
    assert [ln for ln in lines[back:] if ln.startswith("  dim=")] == ["  dim=1"]
    assert lines[-5:] == [
        "    [[[0, 0, 0, 0],",
        "      [2, 2, 2, 2]],",
        "",
        "     [[0, 0, 0, 0],",
        "      [2, 2, 2, 2]]]",
    ]
    assert all(ln == ln.rstrip() for ln in lines)


def test_mae_walkthrough_16_token_example_keeps_10_12_4_13():
    lines = jgather.demo.mae_walkthrough(jax.random.key(0))
    assert lines[0] == (
        "3. MAE's 16-token example: random_masking of x = arange(64).reshape(1, 16, 4)"
    )
    kept = [ln for ln in lines if ln.startswith("  infer_gather(x, x_masked)")]
    assert kept[0] == "  infer_gather(x, x_masked): dim=1, kept tokens [10, 12, 4, 13]"
    first = lines.index("  x_masked:")
    assert lines[first + 1 : first + 5] == [
        "    [[[40, 41, 42, 43],",
        "      [48, 49, 50, 51],",
        "      [16, 17, 18, 19],",
        "      [52, 53, 54, 55]]]",
    ]
    mask = lines.index("  mask (0 keep, 1 remove):")
    assert (
        lines[mask + 1] == "    [[1., 1., 1., 1., 0., 1., 1., 1., 1., 1., 0., 1., 0., 0., 1., 1.]]"
    )  # float32, as MAE's
    # The second masking draws from the key: four kept tokens, depending on the key.
    assert len(kept) == 2 and kept[1].split("kept tokens ")[1].count(",") == 3
    other = jgather.demo.mae_walkthrough(jax.random.key(1))
    drawn = lines.index("  b) noise drawn from --seed (mask_ratio 0.75):")
    assert other[:drawn] == lines[:drawn]  # the fixed-noise part does not use the key
    assert other != lines


# --------------------------------------------------------------------------- figure


@pytest.fixture(scope="module")
def original():
    image = jgather.demo.load_sample_image()
    assert image.shape == (SIDE, SIDE, 3) and image.dtype == np.uint8
    assert image.std() > 20  # a photograph, not a blank array
    return image


def read_png(path):
    """The PNG as uint8 RGB, decoded by matplotlib."""
    png = imread(path)
    assert png.dtype == np.float32 and png.ndim == 3 and png.shape[2] in (3, 4)
    if png.shape[2] == 4:
        assert (png[..., 3] == 1).all()  # opaque
    return np.round(png[..., :3] * 255).astype(np.uint8)


def layout_boxes(num_rows):
    """Pixel boxes of the panels, from a figure of the same layout (boxes do not depend on
    what the panels show)."""
    image = np.zeros((SIDE, SIDE, 3), np.uint8)
    row = _photo.MaskedImage(
        "random", np.zeros((14, 14), bool), np.zeros((196, 16, 16, 3), np.uint8), image
    )
    fig = _figure.draw_figure(image, [row] * num_rows, mask_ratio=0.5, patch_size=16, seed=0)
    boxes = _figure.panel_boxes(fig)
    assert len(boxes) == 4 * num_rows
    return [boxes[4 * r : 4 * r + 4] for r in range(num_rows)]


def tokens_of(panel, p):
    """[H, W, 3] -> [L, p - 2 INSET, p - 2 INSET, 3], each token's interior, row-major."""
    g = panel.shape[0] // p
    t = panel.reshape(g, p, g, p, 3).transpose(0, 2, 1, 3, 4).reshape(g * g, p, p, 3)
    return t[:, INSET : p - INSET, INSET : p - INSET].astype(np.int16)


def read_row(png, boxes, original, p):
    """Checks one figure row against the photograph; returns the token mask it shows."""
    panels = [png[rows, cols] for rows, cols in boxes]
    assert all(panel.shape == (SIDE, SIDE, 3) for panel in panels)
    image, masked, visible, restored = (tokens_of(panel, p) for panel in panels)
    truth = tokens_of(original, p)
    assert np.abs(image - truth).max() <= 1  # the photograph, one pixel per pixel
    # Restored: each token is the original token or the flat grey mask token, never both.
    kept = np.abs(restored - truth).reshape(len(truth), -1).max(1) <= 1
    grey = (np.abs(restored - _photo.MASK_GREY) <= 1).reshape(len(truth), -1).all(1)
    assert (kept ^ grey).all()
    # Masked panel: differs from the original exactly at the masked tokens, where it is dimmed.
    same = np.abs(masked - truth).reshape(len(truth), -1).max(1) <= 1
    np.testing.assert_array_equal(same, kept)
    dimmed = np.abs(masked - (truth * _figure.DIM)).reshape(len(truth), -1).max(1) <= 2
    assert dimmed[~kept].all()
    # Visible tokens: the kept ones, each once, packed row-major; then the empty background.
    num_keep = int(kept.sum())
    assert (np.abs(visible[num_keep:] - _figure.BACKGROUND) <= 1).all()
    ids = [
        int(np.abs(truth - cell).reshape(len(truth), -1).max(1).argmin())
        for cell in visible[:num_keep]
    ]
    assert sorted(ids) == np.flatnonzero(kept).tolist()
    return (~kept).reshape(SIDE // p, SIDE // p)


def test_figure_size_panels_and_every_strategy(tmp_path, original):
    rows = [
        jgather.demo.mask_image(original, name, key, 0.75, 16)
        for name, key in zip(
            jgather.demo.STRATEGIES, jax.random.split(jax.random.key(0), 4), strict=True
        )
    ]
    fig = _figure.draw_figure(original, rows, mask_ratio=0.75, patch_size=16, seed=0)
    path = _figure.save_figure(fig, tmp_path / "sub" / "fig.png")
    png = read_png(path)
    width, height = _figure.figure_size(original.shape, 4)
    assert png.shape == (height, width, 3) == (1118, 1106, 3)
    boxes = _figure.panel_boxes(fig)
    masks = {
        row.name: read_row(png, boxes[4 * r : 4 * r + 4], original, 16)
        for r, row in enumerate(rows)
    }
    for row in rows:
        np.testing.assert_array_equal(masks[row.name], row.mask)
    assert masks["random"].sum() == 196 - 49  # MAE keeps int(196 * 0.25) = 49
    assert masks["tube"].sum() == int(0.75 * 196)
    assert 0 < masks["block"].sum() <= int(0.75 * 196)
    coarse = masks["simmim"].reshape(7, 2, 7, 2)  # SimMIM masks 2 x 2 token cells
    assert (coarse == coarse[:, :1, :, :1]).all()
    # Labels: title, mask ratio, column titles, row labels and the legend are drawn.
    texts = {t.get_text() for t in fig.texts} | {ax.get_title() for ax in fig.axes}
    assert "jgather: the masking family on one photograph" in texts
    assert any("mask ratio 0.75" in t for t in texts)
    assert set(_figure.PANELS) <= texts
    assert {"MAE random", "tube (video)", "block (BEiT)", "SimMIM"} <= texts
    (legend,) = fig.legends
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[1] == "mask token put back by unshuffle" and "dimmed" in labels[0]


def test_demo_in_process_prints_and_draws(tmp_path, capsys, original):
    out = tmp_path / "figure.png"
    assert main(["demo", "--out", str(out), "--seed", "3", "--strategy", "random"]) == 0
    printed = capsys.readouterr().out
    assert "out[0, 1, 0] = input[0, index[0, 1, 0], 0] = input[0, 2, 0] = 8" in printed
    assert "infer_gather(x, x_masked): dim=1, kept tokens [10, 12, 4, 13]" in printed
    assert f"wrote {out}" in printed
    png = read_png(out)
    width, height = _figure.figure_size(original.shape, 1)
    assert png.shape == (height, width, 3)
    (boxes,) = layout_boxes(1)
    mask = read_row(png, boxes, original, 16)
    assert mask.sum() == 147
    assert "random: 147 of 196 tokens masked, 49 visible" in printed


def test_demo_is_deterministic_and_seed_dependent(tmp_path, capsys):
    images = []
    for i, seed in enumerate((1, 1, 2)):
        path = tmp_path / f"{i}.png"
        assert main(["demo", "--out", str(path), "--seed", str(seed), "--strategy", "tube"]) == 0
        images.append(read_png(path))
    capsys.readouterr()
    np.testing.assert_array_equal(images[0], images[1])
    assert (images[0] != images[2]).any()


def test_demo_options_ratio_patch_size_and_folder_out(tmp_path, capsys, original):
    folder = tmp_path / "nested" / "dir"
    argv = ["demo", "--out", str(folder), "--mask-ratio", "0.5", "--patch-size", "32"]
    assert main([*argv, "--strategy", "random"]) == 0
    capsys.readouterr()
    (boxes,) = layout_boxes(1)
    mask = read_row(read_png(folder / "jgather_demo.png"), boxes, original, 32)
    assert mask.shape == (7, 7) and mask.sum() == 49 - int(49 * 0.5)


def test_out_dev_null_and_existing_file(tmp_path, capsys):
    assert main(["demo", "--out", "/dev/null", "--strategy", "random"]) == 0
    assert "wrote /dev/null" in capsys.readouterr().out
    existing = tmp_path / "figure"
    existing.write_bytes(b"old")
    assert main(["demo", "--out", str(existing), "--strategy", "random"]) == 0
    assert f"wrote {existing}" in capsys.readouterr().out
    assert read_png(existing).ndim == 3  # overwritten with the PNG, not made a folder


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["demo", "--mask-ratio", "1.5"], "--mask-ratio"),
        (["demo", "--mask-ratio", "abc"], "--mask-ratio"),
        (["demo", "--mask-ratio", "0.999"], "mask_image: mask_ratio=0.999 masks every token"),
        (["demo", "--patch-size", "15"], "patchify: patch_size (15, 15) must divide"),
        (["demo", "--patch-size", "0"], "--patch-size"),
        (["demo", "--strategy", "nope"], "--strategy"),
        (["demo", "--seed", "x"], "--seed"),
        (["demo", "--seed", "18446744073709551615"], "[-2**63, 2**63 - 1]"),
        (["demo", "--seed", "9223372036854775808"], "[-2**63, 2**63 - 1]"),
        (["demo", "--seed", "-9223372036854775809"], "[-2**63, 2**63 - 1]"),
        (["demo", "--strategy", "simmim", "--mask-ratio", "0.98"], "masks every token"),
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        ([], "required"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_options_exit_2_with_one_line(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing printed, nothing drawn
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("python -m jgather: error:") and match in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_library_errors_are_the_librarys():
    image = jgather.demo.load_sample_image()
    with pytest.raises(ValueError, match=r"^mask_image: mask_ratio=0.98 masks every token"):
        jgather.demo.mask_image(image, "simmim", jax.random.key(0), 0.98, 16)
    with pytest.raises(ValueError, match=r"^mask_image: unknown strategy 'x'"):
        jgather.demo.mask_image(image, "x", jax.random.key(0), 0.5, 16)


def test_help_lists_every_option(capsys):
    assert main(["demo", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--out", "--seed", "--mask-ratio", "--patch-size", "--strategy", "--help"):
        assert option in text
    assert "seed document" not in text


def test_unwritable_out_exits_1_with_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["demo", "--out", str(blocker / "sub" / "f.png"), "--strategy", "random"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m jgather: error:")


def test_without_matplotlib_one_line_pointing_at_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jgather.demo._figure", None)
    monkeypatch.delattr(jgather.demo, "_figure", raising=False)
    assert main(["demo", "--strategy", "random", "--out", "/dev/null"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.strip().splitlines()
    # The hint installs what pyproject.toml's demo extra holds, from an index that serves it
    # (matplotlib), or the extra itself from a clone; never a package no index serves.
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["demo"]
    first = re.search(r"pip install ([^(]+?)(?: \(|$)", line)
    assert first and shlex.split(first.group(1)) == extra, line
    assert 'pip install ".[demo]"' in line
    assert "jgather[demo]" not in line.replace('".[demo]"', "")


# --------------------------------------------------------------------------- as a user runs it


def _run_module(args, cwd):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    # As a user runs it, on one host device; compiled with the session's faster settings
    # (tests/pipelines.py), which give the same values.
    env["XLA_FLAGS"] = child_xla_flags()
    return subprocess.run(
        [sys.executable, "-m", "jgather", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_python_m_jgather_demo_subprocess(tmp_path, original):
    done = _run_module(["demo", "--out", "tmp"], tmp_path)
    assert done.returncode == 0, done.stderr
    path = tmp_path / "tmp" / "jgather_demo.png"
    assert f"wrote {Path('tmp') / 'jgather_demo.png'}" in done.stdout
    png = read_png(path)
    for name, boxes in zip(jgather.demo.STRATEGIES, layout_boxes(4), strict=True):
        mask = read_row(png, boxes, original, 16)
        assert f"{name:>6}: {int(mask.sum())} of 196 tokens masked" in done.stdout
    bad = _run_module(["demo", "--mask-ratio", "2"], tmp_path)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
