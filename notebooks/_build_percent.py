"""Builds notebooks from their jupytext percent-format sources (``# %%`` cells).

Every notebook with a source (``01_gather_explained.py`` beside ``01_gather_explained.ipynb``,
and 02 to 05) is generated from it; edit the ``.py``, never the ``.ipynb``:

    python notebooks/_build_percent.py                                  # write every .ipynb
    python notebooks/_build_percent.py 05_graph_attention.py            # write one
    python notebooks/_build_percent.py 05_graph_attention.py --execute  # write, run, save

A minimal reader of the percent format (``# %%`` code cells, ``# %% [markdown]`` cells whose
lines start with ``# ``, ``tags=["..."]`` on a cell line, a leading ``# ---`` header block), so building needs only nbformat
and nbclient (the sources keep to jupytext's percent format, so jupytext can open them too).
Execution runs notebooks/ as the working directory, as tests/test_notebooks.py does,
which also checks that every committed ``.ipynb`` has its source's cells.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


#: First line of a percent source: jupytext's metadata header.
HEADER = "# ---\n# jupyter:\n"


def percent_sources() -> list[Path]:
    """The notebook sources in notebooks/: the ``.py`` files that open with the header."""
    return sorted(p for p in HERE.glob("*.py") if p.read_text().startswith(HEADER))


def read_percent(text: str) -> nbformat.NotebookNode:
    lines = text.splitlines()
    if lines and lines[0] == "# ---":  # jupytext's metadata header
        end = lines.index("# ---", 1)
        lines = lines[end + 1 :]
    cells, kind, body, tags = [], None, [], []

    def flush():
        if kind is None:
            return
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        if kind == "markdown":
            md = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body]
            cells.append(new_markdown_cell("\n".join(md)))
        else:
            cells.append(new_code_cell("\n".join(body)))
        if tags:
            cells[-1].metadata["tags"] = list(tags)

    for line in lines:
        if line.startswith("# %%"):
            flush()
            kind, body = ("markdown" if "[markdown]" in line else "code"), []
            # jupytext's cell tags: `# %% tags=["parameters"]`
            found = re.search(r"tags=\[([^\]]*)\]", line)
            tags = re.findall(r'"([^"]+)"', found.group(1)) if found else []
        elif kind is not None:
            body.append(line)
    flush()
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["jupytext"] = {"formats": "ipynb,py:percent"}
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sources",
        nargs="*",
        help="percent-format .py files in notebooks/ (default: all)",
    )
    parser.add_argument("--execute", action="store_true", help="run and save outputs")
    args = parser.parse_args(argv)
    for path in [HERE / Path(name).name for name in args.sources] or percent_sources():
        nb = read_percent(path.read_text())
        if args.execute:
            import nbclient

            nbclient.NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                resources={"metadata": {"path": str(HERE)}},
            ).execute()
        out = path.with_suffix(".ipynb")
        nbformat.write(nb, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
