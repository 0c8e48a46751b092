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

MODULES = sorted(
    f"jgather.{m.name}" for m in pkgutil.iter_modules(jgather.__path__) if m.name != "__main__"
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    mod = importlib.import_module(module)
    flags = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    result = doctest.testmod(mod, optionflags=flags, verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctests failed in {module}"


@pytest.mark.parametrize("name", jgather.__all__)
def test_public_functions_have_google_docstrings_with_examples(name):
    obj = getattr(jgather, name)
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"jgather.{name} has no docstring"
    if inspect.isfunction(obj):
        for section in ("Args:", "Returns:", "Example"):
            assert section in doc, f"jgather.{name}'s docstring lacks a {section!r} section"
        assert ">>> " in doc, f"jgather.{name}'s docstring has no runnable example"
