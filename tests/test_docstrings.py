"""Every public function documents itself with a runnable example, and every example runs.

The examples in the modules' docstrings are doctests (as optax and jax run theirs), so they
cannot drift from the code.
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import jgather
import jgather.segment

# Every module, subpackages included (jgather.segment._scatter, ...).
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(jgather.__path__, prefix="jgather.")
    if m.name != "jgather.__main__"
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(mod, optionflags=flags, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {module}"


PUBLIC = [(jgather, n) for n in jgather.__all__] + [
    (jgather.segment, n) for n in jgather.segment.__all__
]


@pytest.mark.parametrize("namespace,name", PUBLIC, ids=[f"{ns.__name__}.{n}" for ns, n in PUBLIC])
def test_public_functions_have_google_docstrings_with_examples(namespace, name):
    obj = getattr(namespace, name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{namespace.__name__}.{name} has no docstring"
    if inspect.isfunction(obj):
        for section in ("Args:", "Returns:", "Example"):
            assert section in doc, (
                f"{namespace.__name__}.{name}'s docstring lacks a {section!r} section"
            )
        assert ">>> " in doc, f"{namespace.__name__}.{name}'s docstring has no runnable example"
