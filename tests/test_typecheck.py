"""The type checker's configuration catches what it is there for.

``.ci/run`` runs ``mypy`` (configured in pyproject.toml) over the package before the tests;
this module proves that configuration is strict enough to fail on a wrong return type and on
an unannotated function, and passes a correct module, so a green check means something.
"""

import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("mypy", reason="mypy is in the test extra: pip install -e '.[test]'")

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One mypy cache for the module: the standard library stubs are read once."""
    return tmp_path_factory.mktemp("mypy_cache")


def _mypy(
    tmp_path: pathlib.Path, cache_dir: pathlib.Path, source: str
) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "probe.py"
    module.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache_dir),
            str(module),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_wrong_return_type_fails(tmp_path, cache_dir):
    result = _mypy(tmp_path, cache_dir, 'def f() -> int:\n    return "a"\n')
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[return-value]" in result.stdout, result.stdout


def test_unannotated_function_fails(tmp_path, cache_dir):
    result = _mypy(tmp_path, cache_dir, "def f(x):\n    return x\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "[no-untyped-def]" in result.stdout, result.stdout


def test_correct_module_passes(tmp_path, cache_dir):
    result = _mypy(tmp_path, cache_dir, "def f(x: int) -> int:\n    return x + 1\n")
    assert result.returncode == 0, result.stdout + result.stderr
