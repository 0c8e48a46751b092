"""The jax floor in pyproject.toml is honest: no lower than what jgather needs, no higher than
what this test session runs on, and tested.

jax 0.8.0 is the oldest release the core suite passes on (the ops, jgather.segment and the
masking family, with the fallbacks in tests/jax_compat.py); before it, ``jax.enable_x64`` (the
local 64-bit scope of the masking permutation) and ``jax.set_mesh`` do not exist, and
``jax.export`` is not imported with ``jax`` (jgather reads ``jax.export.is_symbolic_dim``). .ci/run
runs the core tests in a second venv pinned to the floor, so the floor is tested, not guessed;
this module checks that the floor is not below the APIs jgather calls and not above the jax
under test (``pip install`` could then never have produced this environment).
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import jax.custom_batching
import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: The first jax minor version with the APIs above.
OLDEST_WITH_THE_APIS = (0, 8)
CI = Path(__file__).resolve().parents[1] / ".ci" / "run"


def _version(text: str) -> tuple[int, ...]:
    """``0.10.2`` (or ``0.10.2.dev…``, ``0.10.2rc1``) as ``(0, 10, 2)``."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    assert match, f"not a version: {text!r}"
    return tuple(int(part) for part in match.groups(default="0"))


def _floors() -> dict[str, tuple[int, ...]]:
    """The ``>=`` floor of each dependency, by name, from pyproject.toml."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    floors = {}
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*>=\s*([0-9][^,;\s]*)", dep)
        if match:
            floors[match.group(1).lower()] = _version(match.group(2))
    return floors


@pytest.mark.parametrize("name", ["jax", "jaxlib"])
def test_jax_floor_is_tested_and_not_below_the_apis_used(name):
    floor = _floors().get(name)
    assert floor is not None, f"pyproject.toml: {name} needs a '>=' floor"
    assert floor[:2] >= OLDEST_WITH_THE_APIS, (
        f"pyproject.toml claims {name}>={'.'.join(map(str, floor))}, older than jax 0.8, whose "
        "APIs jgather uses; raise the floor"
    )
    installed = _version(metadata.version(name))
    assert floor <= installed, (
        f"pyproject.toml's {name} floor {floor} is newer than the {name} {installed} under test"
    )


def test_jax_and_jaxlib_floors_agree():
    floors = _floors()
    assert floors["jax"] == floors["jaxlib"]


def test_the_apis_behind_the_floor_exist():
    """The reason for the floor, checked on the jax under test."""
    assert hasattr(jax.sharding, "AxisType") and hasattr(jax.sharding.AxisType, "Explicit")
    assert callable(jax.sharding.reshard)
    assert callable(jax.shard_map)
    assert callable(jax.set_mesh)
    assert callable(jax.enable_x64)
    assert callable(jax.export.is_symbolic_dim)
    assert callable(jax.custom_batching.custom_vmap)


def test_ci_runs_the_core_tests_on_the_floor():
    """.ci/run reads the floor from pyproject.toml and pins a second venv to it."""
    script = CI.read_text()
    assert '"jax==$floor" "jaxlib==$floor"' in script
    assert "tomllib" in script and "pyproject.toml" in script
    assert ".venv-floor/bin/python -m pytest" in script
