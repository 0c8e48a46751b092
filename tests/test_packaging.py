"""The jax floor in pyproject.toml is honest: no lower than what jgather needs, no higher than
what this test session runs on.

jgather calls APIs of jax 0.10: explicitly sharded meshes (``jax.sharding.AxisType.Explicit``,
``jax.sharding.reshard``), ``jax.shard_map``, ``jax.custom_batching.custom_vmap`` under
checkify, and the tests use ``jax.set_mesh``. No older jax is installed or tested anywhere, so a
floor below 0.10 would promise support nobody checks (pyproject.toml once said ``jax>=0.5``).
The floor may not exceed the jax this session runs on, or ``pip install`` could never have
produced this environment. Together: the floor is the tested version (0.10.2) or a 0.10
release before it, never a guess.
"""

import re
import tomllib
from importlib import metadata
from pathlib import Path

import jax.custom_batching
import pytest

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
#: The first jax minor version with the APIs above.
OLDEST_WITH_THE_APIS = (0, 10)


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
        f"pyproject.toml claims {name}>={'.'.join(map(str, floor))}, older than jax 0.10, whose "
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
    assert callable(jax.custom_batching.custom_vmap)
