"""The rule of tests/pipelines.py: a compiled program is read as users' XLA compiles it.

The session compiles with faster settings than users' (tests/pipelines.py), which change
the optimised HLO. So every test that compiles a program itself does it through
``pipelines.users_compile``; the only other ``.compile(`` is the check of the LLVM level's
premise (tests/test_sharding.py), which names every option it compiles with.
"""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ALLOWED = {
    ("pipelines.py", "users_compile"),
    ("test_sharding.py", "test_backend_optimisation_level_leaves_the_hlo_alone"),
}


def _compile_calls(tree: ast.AST):
    """(enclosing function, line) of each ``<expr>.compile(...)`` call, ``re.compile`` aside."""
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef) else function
            if (
                isinstance(child, ast.Call)
                and isinstance(child.func, ast.Attribute)
                and child.func.attr == "compile"
                and not (isinstance(child.func.value, ast.Name) and child.func.value.id == "re")
            ):
                found.append((function, child.lineno))
            visit(child, inner)

    visit(tree, None)
    return found


def test_compiled_programs_are_read_through_users_compile():
    stray = [
        f"{path.name}:{line} (in {function})"
        for path in sorted(TESTS.glob("*.py"))
        for function, line in _compile_calls(ast.parse(path.read_text()))
        if (path.name, function) not in ALLOWED
    ]
    assert not stray, (
        "compile through pipelines.users_compile(lowered), so the program read is the one "
        f"users' XLA compiles: {stray}"
    )


def test_the_check_sees_a_stray_compile():
    tree = ast.parse("def t(low):\n    return low.compile().as_text()\n")
    assert _compile_calls(tree) == [("t", 2)]
    assert _compile_calls(ast.parse("import re\nX = re.compile('a')\n")) == []
