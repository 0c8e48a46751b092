"""README is the front page: its Python example runs as written, its Quick start stays two
self-contained commands, it links to every page of the documentation site (the long tables and
the other examples live there now, run by tests/test_docs.py), and it says how to build and
serve the site with the flags CI builds it with."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), re.S)


def test_python_examples_run():
    blocks = _blocks("python")
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})


def test_quick_start_is_demo_then_tests():
    section = README.read_text().split("## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2
    demo, tests = lines
    # python3, whatever its minor version: pip refuses an interpreter older than
    # pyproject.toml's requires-python with a message that says so.
    assert demo.startswith("python3 -m venv") and demo.endswith("-m jgather demo")
    assert tests.startswith("python3 -m venv") and "[test]" in tests and "pytest" in tests


def test_links_resolve_and_reach_every_guide():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    missing = [link for link in local if not (ROOT / link).is_file()]
    assert not missing, f"README links to missing files: {missing}"
    pages = {"docs/api/index.md", "docs/notebooks.md", "docs/development.md"}
    pages |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs" / "guides").glob("*.md")}
    assert pages <= set(local), f"README does not link to {sorted(pages - set(local))}"


def test_documents_building_and_serving_the_site():
    section = README.read_text().split("## Documentation", 1)[1]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()
    build, serve = (line for line in commands if line.strip())
    assert "sphinx-build -W --keep-going -n docs docs/_build/html" in build
    assert "-m http.server -d docs/_build/html" in serve
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sphinx-build -W --keep-going -n -q docs docs/_build/html" in ci
