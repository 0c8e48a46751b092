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
import subprocess
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


# --- addresses -------------------------------------------------------------------------------

ROOT = PYPROJECT.parent
#: Hosts whose addresses in the tree are real and checked by hand: the papers (arXiv), the
#: changelog's format and versioning rules, a local docs server.
KNOWN_HOSTS = {"arxiv.org", "keepachangelog.com", "semver.org", "localhost:8000"}
#: Repositories of other projects that the docs may link to (their real addresses).
KNOWN_REPOSITORIES: set[str] = set()
#: What an invented or placeholder address looks like.
PLACEHOLDER = re.compile(
    r"github\.com/jgather|jgather\.(io|dev|org|com)\b|readthedocs\.io/[^ ]*jgather"
    r"|example\.(com|org|net)|your[-_]?(org|name|user|username|repo)\b|<(org|user|owner)>",
    re.I,
)
_URL = re.compile(r"https?://[^\s\"'<>`()\[\]{}]+")


def _tree_files() -> list[Path]:
    """The repository's text files: tracked, or new and not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / name for name in sorted(set(listed.split("\0"))) if name]


def _addresses(text: str) -> list[str]:
    return [u.rstrip(".,;:") for u in _URL.findall(text)]


def _unknown_addresses(path: Path, text: str) -> list[str]:
    found = [f"{path}: {m.group(0)!r}" for m in PLACEHOLDER.finditer(text)]
    for url in _addresses(text):
        host, _, rest = url.split("://", 1)[1].partition("/")
        if host == "github.com":
            repo = "/".join(rest.split("/")[:2])
            if repo not in KNOWN_REPOSITORIES:
                found.append(f"{path}: {url} (a repository not in KNOWN_REPOSITORIES)")
        elif host not in KNOWN_HOSTS:
            found.append(f"{path}: {url} (a host not in KNOWN_HOSTS)")
    return found


def test_no_invented_or_placeholder_address_in_the_tree():
    """jgather has no public address: none may be written as if it had one (a repository, a
    documentation site, a package index page). Every address in the tree is on a known host."""
    found = []
    files = _tree_files()
    assert len(files) > 50, "git ls-files found too few files: is this a checkout?"
    for path in files:
        if not path.is_file() or path.suffix in {".png", ".npy", ".whl", ".gz"}:
            continue
        if path == Path(__file__).resolve():  # this module: the examples the check must catch
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += _unknown_addresses(path.relative_to(ROOT), text)
    assert not found, "addresses that are not this project's or not known:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "text",
    [
        "git clone https://github.com/jgather/jgather",
        "url = {https://jgather.readthedocs.io/en/latest/}",
        "Documentation = 'https://docs.example.com/jgather'",
        "pip install git+https://github.com/your-org/jgather",
        "see https://jgather.dev",
    ],
)
def test_the_address_check_catches_invented_ones(text):
    assert _unknown_addresses(Path("x"), text)


def test_the_address_check_passes_known_ones():
    assert not _unknown_addresses(Path("x"), "MAE: https://arxiv.org/abs/2111.06377.")


def test_one_place_holds_the_addresses():
    """pyproject.toml's [project.urls] holds the addresses; CITATION.cff and the docs' header
    take them from there (the docs read it in conf.py), so none can disagree."""
    urls = tomllib.loads(PYPROJECT.read_text())["project"].get("urls", {})
    cff = (ROOT / "CITATION.cff").read_text()
    code = re.search(r"^repository-code:\s*\"?([^\"\n]+)", cff, re.M)
    assert (code.group(1) if code else None) == urls.get("Repository")
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert '_PYPROJECT.get("urls", {})' in conf
    assert not _addresses(conf), "docs/conf.py writes an address: read pyproject.toml's"
