"""Imports inside jgather run one way, bottom to top (see jgather/__init__.py):

* the engine (index preparation, lowerings, dtypes, sharding, platform and batching rules);
* the faces over it: torch's ops (``_gather``, ``_scatter``) and torch_scatter's
  (``segment``), which turn their arguments into one request to the engine and do not import
  one another;
* masking, built on the faces;
* tokens (token merging and pruning), on masking: it returns masking's ``MaskedTokens`` and
  reuses its keys and sorts;
* exploration and the command line on top.

An engine module that imports a face (``_gather``, ``_scatter`` or ``segment``) fails here, as
does a face that imports masking. Read from the source with ``ast``, so nothing is imported.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jgather"

# Layer of each module, by its dotted name below ``jgather`` (a package's modules share its layer).
ENGINE = 0
FACES = 1
MASKING = 2
ON_MASKING = 3  # tokens
TOP = 4

_ENGINE = (
    "_engine",
    "_rows",
    "_indexing",
    "_checks",
    "_dtypes",
    "_sharding",
    "_platform",
    "_jax_private",
    "_batching",
    "_permute",
)
_FACES = (
    "_gather",
    "_scatter",
    "segment",
    "_index",
    "_index_put",
    "_masked",
    "_view_scatter",
    "_embedding",
)


def _layer(module: str) -> int:
    first = module.split(".")[0]
    if first in _ENGINE:
        return ENGINE
    if first in _FACES:
        return FACES
    if first == "masking":
        return MASKING
    if first == "tokens":
        return ON_MASKING
    if first in ("_explain", "demo", "__main__", ""):
        return TOP  # "" is jgather/__init__.py, which re-exports everything
    raise AssertionError(f"jgather.{module} has no layer; add it to tests/test_layering.py")


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _imports_in(source: str, module: str, is_package: bool):
    """Every ``jgather`` module that ``source`` (the text of ``module``) imports."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    package = [p for p in package if p]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(["jgather", *base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            # ``from jgather import masking`` imports the sub-package ``masking``.
            names = [f"{target}.{a.name}" if target == "jgather" else target for a in node.names]
        else:
            continue
        for name in names:
            if name == "jgather" or name.startswith("jgather."):
                yield name.removeprefix("jgather").removeprefix(".")


def _imports(module: str, path: pathlib.Path):
    """Every ``jgather`` module that ``module`` imports (as dotted names below ``jgather``)."""
    return _imports_in(path.read_text(), module, path.name == "__init__.py")


def _violations(module: str, imported: list[str]) -> list[str]:
    """What is wrong with ``module`` importing each of ``imported``."""
    here, found = _layer(module), []
    for name in imported:
        there = _layer(name)
        if there > here:
            found.append(f"jgather.{module} (layer {here}) imports jgather.{name} ({there})")
        elif here == FACES and there == FACES and name.split(".")[0] != module.split(".")[0]:
            # The faces are siblings over the engine: none imports another.
            found.append(f"jgather.{module} (a face) imports jgather.{name} (another face)")
    return found


MODULES = dict(_modules())


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_imports(module):
    assert _violations(module, list(_imports(module, MODULES[module]))) == []


@pytest.mark.parametrize(
    "module, source",
    [
        ("_engine", "from jgather import _gather"),
        ("_rows", "from jgather._scatter import scatter"),
        ("_indexing", "import jgather.segment"),
        ("_batching", "from jgather.segment import _lowering"),
        ("_gather", "from jgather.masking import random_masking"),
        ("segment._coo", "from jgather import _scatter"),
        ("_scatter", "from jgather import _gather"),
        ("segment._lowering", "from jgather import masking"),
        ("masking._mae", "from jgather import _explain"),
    ],
)
def test_the_rules_reject_a_wrong_import(module, source):
    """The checker itself: each of these imports breaks the layering and must be reported."""
    imported = list(_imports_in(source, module, is_package=False))
    assert imported and _violations(module, imported), (module, source)


def test_the_walk_sees_imports():
    # Guards the parser itself: known edges must be found.
    assert "_gather" in set(_imports("masking._take", MODULES["masking._take"]))
    assert "masking" in set(_imports("", MODULES[""]))
    assert "_indexing" in set(_imports("segment._arguments", MODULES["segment._arguments"]))
    assert {"masking", "masking._arguments"} <= set(
        _imports("tokens._select", MODULES["tokens._select"])
    )
    assert "_engine" in set(_imports("_scatter", MODULES["_scatter"]))
    # Masking above the faces: its modules may import them.
    assert _violations("masking._apply_masks", ["_gather", "_scatter", "segment"]) == []
