"""Imports inside jgather run one way: ops at the bottom, masking and segment on ops, tokens on
masking, exploration on top (see jgather/__init__.py). Read from the source with ``ast``, so nothing is imported."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "jgather"

# Layer of each module, by its dotted name below ``jgather`` (a package's modules share its layer).
OPS = 0
ON_OPS = 1
ON_MASKING = 2  # tokens: returns masking's MaskedTokens, reuses its keys and sorts
TOP = 3


def _layer(module: str) -> int:
    first = module.split(".")[0]
    if first in (
        "_gather",
        "_scatter",
        "_scatter_lowering",
        "_rows",
        "_indexing",
        "_checks",
        "_dtypes",
        "_sharding",
        "_platform",
        "_jax_private",
        "_batching",
        "_permute",
    ):
        return OPS
    if first in ("masking", "segment"):
        return ON_OPS
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


def _imports(module: str, path: pathlib.Path):
    """Every ``jgather`` module that ``module`` imports (as dotted names below ``jgather``)."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
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


MODULES = dict(_modules())


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_imports(module):
    here = _layer(module)
    for imported in _imports(module, MODULES[module]):
        there = _layer(imported)
        assert there <= here, (
            f"jgather.{module} (layer {here}) imports jgather.{imported} ({there})"
        )
        if here == ON_OPS and there == ON_OPS:
            # masking and segment are siblings: neither imports the other.
            assert imported.split(".")[0] == module.split(".")[0], (module, imported)


def test_the_walk_sees_imports():
    # Guards the parser itself: known edges must be found.
    assert "_gather" in set(_imports("masking._mae", MODULES["masking._mae"]))
    assert "masking" in set(_imports("", MODULES[""]))
    assert "_indexing" in set(_imports("segment._arguments", MODULES["segment._arguments"]))
    assert "masking._mae" in set(_imports("tokens._select", MODULES["tokens._select"]))
