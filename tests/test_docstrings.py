"""Every public function documents itself with a runnable example, and every example runs.

The examples in the modules' docstrings are doctests (as optax and jax run theirs), so they
cannot drift from the code. What ``help()`` shows is checked too: public type names in the
signatures, and the arguments on the first screen (summary, Args, Returns, Raises, Example;
the reference facts after them).
"""

import doctest
import importlib
import inspect
import pkgutil
import re
import typing

import pytest

import jgather
import jgather.masking
import jgather.segment
import jgather.tokens

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


# ----------------------------------------------------------------------------------------------
# What help() shows: public type names in signatures, and the arguments on the first screen.

NAMESPACES = (jgather, jgather.segment, jgather.masking, jgather.tokens)
EVERY_PUBLIC = sorted(
    {
        (ns.__name__, name)
        for ns in NAMESPACES
        for name in ns.__all__
        if inspect.isfunction(getattr(ns, name)) or inspect.isclass(getattr(ns, name))
    }
)
_IDS = [f"{ns}.{name}" for ns, name in EVERY_PUBLIC]

# Names a reader can look up without knowing jgather's private modules: Python's, typing's,
# jax's public ones, and every public name of jgather's namespaces.
_KNOWN_NAMES = {
    "None", "int", "float", "bool", "str", "bytes", "tuple", "list", "dict", "object", "type",
    "Any", "Literal", "Callable", "Sequence", "Iterator", "Mapping", "ArrayLike", "DTypeLike",
    "jax", "jax.Array", "jax.typing.ArrayLike", "jax.typing.DTypeLike", "np.ndarray",
    "numpy.ndarray", "jnp.ndarray", "Array", "npt.ArrayLike",
} | {name for ns in NAMESPACES for name in ns.__all__}  # fmt: skip


_EMPTY = inspect.Parameter.empty


def _text(annotation) -> str:
    """An annotation as help() spells it (a NamedTuple's fields hold ``ForwardRef``s)."""
    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, typing.ForwardRef):
        return annotation.__forward_arg__
    return inspect.formatannotation(annotation)


def _names_in(annotation: str) -> set[str]:
    """The dotted names an annotation's text mentions, its string literals left out."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "", annotation)
    return set(re.findall(r"[A-Za-z_][\w.]*", text))


@pytest.mark.parametrize("namespace,name", EVERY_PUBLIC, ids=_IDS)
def test_help_shows_public_type_names(namespace, name):
    obj = getattr(importlib.import_module(namespace), name)
    try:
        signature = inspect.signature(obj)
    except ValueError:  # a class without an inspectable constructor
        return
    annotations = [p.annotation for p in signature.parameters.values()]
    texts = [_text(a) for a in (*annotations, signature.return_annotation) if a is not _EMPTY]
    unknown = sorted({n for t in texts for n in _names_in(t)} - _KNOWN_NAMES)
    assert not unknown, (
        f"help({namespace}.{name}) shows {unknown} in its signature {signature}: export the "
        f"type from jgather's public namespace or spell it out (e.g. as its Literal)."
    )


_SECTION = re.compile(r"^([A-Z][A-Za-z ]*):\s*$")
# The sections that come first, in this order; ``Example`` (or ``Examples``) closes them.
_ORDER = ("Args", "Returns", "Yields", "Raises", "Example")
MAX_INTRO_LINES = 8  # summary and a short paragraph; the reference facts come after Example


def _sections(doc: str) -> list[tuple[int, str]]:
    """(line, name) of each top-level Google section header of ``doc``."""
    return [
        (i, m.group(1))
        for i, line in enumerate(doc.splitlines())
        if (m := _SECTION.match(line)) and not line.startswith(" ")
    ]


def _first_screen_problem(doc: str, is_function: bool, has_params: bool) -> str | None:
    """Why ``doc`` does not read summary, Args, Returns, (Raises), (Example), facts; or None."""
    lines = doc.splitlines()
    sections = _sections(doc)
    if not sections:
        return "has no Args/Attributes section"
    first_line, first = sections[0]
    intro = [line for line in lines[:first_line] if line.strip()]
    if len(intro) > MAX_INTRO_LINES:
        return (
            f"has {len(intro)} lines of prose before its first section ({first}:), more than "
            f"{MAX_INTRO_LINES}: move the reference facts after the Example"
        )
    if not is_function:
        return None if first in ("Attributes", "Args") else f"starts with {first}:, not Attributes:"
    want = "Args" if has_params else "Returns"
    if first != want:
        return f"starts with {first}:, not {want}:"
    # The sections up to the Example are _ORDER's, in its order, with no prose between them.
    previous = -1
    for (line, name), following in zip(sections, [*sections[1:], (len(lines), "")], strict=True):
        key = "Example" if name == "Examples" else name
        if key not in _ORDER:
            if any(n in ("Example", "Examples") for _, n in sections):
                return f"has {name}: before its Example"
            break
        if _ORDER.index(key) <= previous:
            return f"has {name}: after a section that should follow it"
        previous = _ORDER.index(key)
        if key == "Example":
            break
        body = lines[line + 1 : following[0]]
        prose = [b for b in body if b.strip() and not b.startswith(" ")]
        if prose:
            return f"has unindented prose after its {name}: section ({prose[0][:40]!r}...)"
    required = ("Args", "Returns") if has_params else ("Returns",)
    names = [n for _, n in sections]
    missing = [r for r in required if r not in names]
    return f"lacks {missing}" if missing else None


@pytest.mark.parametrize("namespace,name", EVERY_PUBLIC, ids=_IDS)
def test_help_shows_the_arguments_first(namespace, name):
    """help() opens with the summary, Args, Returns, Raises and Example; facts come after."""
    obj = getattr(importlib.import_module(namespace), name)
    is_function = inspect.isfunction(obj)
    has_params = is_function and bool(inspect.signature(obj).parameters)
    problem = _first_screen_problem(inspect.getdoc(obj) or "", is_function, has_params)
    assert problem is None, f"{namespace}.{name}'s docstring {problem}."
