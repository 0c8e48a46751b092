"""Executes every notebook in notebooks/ top to bottom on a fresh kernel; a failing cell fails.

The notebooks run with notebooks/ as the working directory (as a reader would open them), with
a time limit per cell. The committed copies keep their outputs; this test only checks that
they still run, never writes them back. Every notebook is generated from a jupytext
percent-format source beside it, and a committed ``.ipynb`` whose cells differ from its source's
fails here (outputs are not compared).
"""

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from _build_percent import percent_sources, read_percent  # noqa: E402 (notebooks/ on pythonpath)
from pipelines import child_xla_flags  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
SOURCES = percent_sources()
CELL_TIMEOUT_S = 120


def test_notebooks_are_present():
    names = {p.name for p in PATHS}
    assert {"01_gather_explained.ipynb", "02_mae_masking.ipynb", "03_performance.ipynb"} <= names


def test_every_notebook_has_a_percent_source():
    assert {p.stem for p in PATHS} == {p.stem for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_committed_notebook_matches_its_source(source):
    expected = [(c.cell_type, c.source) for c in read_percent(source.read_text()).cells]
    committed = nbformat.read(source.with_suffix(".ipynb"), as_version=4)
    found = [(c.cell_type, c.source) for c in committed.cells]
    rebuild = f"python notebooks/_build_percent.py {source.name} --execute"
    for i, (want, got) in enumerate(zip(expected, found, strict=False)):
        assert got == want, f"cell {i} of {source.with_suffix('.ipynb').name} differs; {rebuild}"
    assert len(found) == len(expected), f"{len(found)} cells, source has {len(expected)}; {rebuild}"


#: Shorter runs for the suite: a cell run right after a notebook's cell tagged "parameters"
#: (papermill's convention), so the notebook itself holds no test plumbing. Notebook 4 trains
#: for a minute; here every cell runs with fewer steps of smaller batches (what is checked is
#: that each cell runs, not what the training reaches).
QUICK_PARAMETERS = {
    "04_mae_pretraining": "STEPS, BATCH = 50, 32\nSTEPS_PER_CALL, ROUNDS = 5, 2",
    "07_token_merging": "DEPTH, WIDTH, HEADS = 2, 64, 2\nBATCH, ROUNDS = 2, 1\nR_VALUES = [0, 16]",
}


def _kernel_environment(monkeypatch):
    """The kernel inherits the environment: the devices a reader has (one host device, not the
    session's 8) and the session's compile settings (tests/pipelines.py: compiles are most of
    a notebook's time)."""
    monkeypatch.setenv("XLA_FLAGS", child_xla_flags())


def _with_quick_parameters(nb, name: str):
    """``nb`` with ``QUICK_PARAMETERS[name]`` inserted after its "parameters" cell."""
    quick = QUICK_PARAMETERS.get(name)
    if quick is None:
        return nb
    at = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(at) == 1, f"{name}: expected one cell tagged 'parameters', found {len(at)}"
    nb.cells.insert(at[0] + 1, nbformat.v4.new_code_cell(quick))
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path, monkeypatch):
    _kernel_environment(monkeypatch)
    nb = _with_quick_parameters(nbformat.read(path, as_version=4), path.stem)
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError naming the cell on the first failure
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors


def _synthetic_results(folder):
    """Schema-shaped results with made-up numbers, only to exercise notebook 3's plots."""
    import json

    meta = {"jax": "synthetic", "backend": "cpu", "rounds": 3}
    case = {
        "op": "gather",
        "case": "synthetic_case",
        "shape": "x[2,3] index[2,3] dim=1",
        "output_bytes": 24,
        "median_s": {"jgather": 1e-3, "torch": 2e-3, "take_along_axis": 3e-3},
        "vs_torch": 2.0,
        "vs_jax": 3.0,
    }
    slow = dict(case, case="synthetic_slow", vs_torch=0.5, vs_jax=0.8)
    no_torch = dict(case, case="synthetic_no_torch", vs_torch=None)
    (folder / "ops.json").write_text(
        json.dumps({"meta": meta, "cases": [case, slow, no_torch], "summary": {"x": 1.0}})
    )
    masking_case = dict(case, op="random_masking", ratio_to_copy=1.2, speedup_vs_torch=2.0)
    masking_case["median_s"] = dict(case["median_s"], copy_floor=8e-4)
    scaling = [
        {
            "N": n,
            "L": length,
            "D": 8,
            "mask_ratio": 0.75,
            "median_s": {"jgather": n * length * 1e-8, "torch_reference": n * length * 2e-8},
        }
        for n, length in [(64, 49), (64, 196), (64, 784), (16, 196), (256, 196)]
    ]
    (folder / "masking.json").write_text(
        json.dumps(
            {
                "meta": meta,
                "cases": [masking_case],
                "scaling": scaling,
                "memory": {"jgather_peak_temp_bytes": 1},
            }
        )
    )


@pytest.mark.slow
def test_performance_notebook_plots_a_results_file(tmp_path, monkeypatch):
    """Runs notebook 3 on schema-shaped synthetic results, so its plotting cells are exercised."""
    _synthetic_results(tmp_path)
    _kernel_environment(monkeypatch)
    nb = nbformat.read(NOTEBOOKS / "03_performance.ipynb", as_version=4)
    at = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(at) == 1, "03_performance: expected one cell tagged 'parameters'"
    nb.cells.insert(at[0] + 1, nbformat.v4.new_code_cell(f"RESULTS = Path({str(tmp_path)!r})"))
    nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs)
    assert "MISSING" not in text and "skipped" not in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # ops vs torch and vs idiomatic JAX, masking speedups, copy-floor ratios, scaling
    assert len(images) == 5
