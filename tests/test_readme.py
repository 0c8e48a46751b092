"""README's Python examples run as written, and its Quick start stays two self-contained commands."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


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
    assert demo.startswith("python3.11 -m venv") and demo.endswith("-m jgather demo")
    assert tests.startswith("python3.11 -m venv") and "[test]" in tests and "pytest" in tests
