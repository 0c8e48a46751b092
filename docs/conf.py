"""Sphinx configuration for jgather's documentation site.

Build: ``sphinx-build -W --keep-going -n docs docs/_build/html`` from the repository root.

* API pages are autodoc/autosummary over the Google-style docstrings (napoleon). Each public
  name is documented once, at its canonical path: the ops and exploration functions under
  ``jgather``, torch_scatter's API under ``jgather.segment``, the masking family (patches and
  loss included) under ``jgather.masking``, which ``jgather`` re-exports flat.
* The notebooks are rendered with the outputs committed in ``notebooks/``; nothing is executed
  at build time. They are copied into the git-ignored ``docs/notebooks/`` when Sphinx reads
  this file, so a clean clone builds without a second copy in git.
* Nitpicky mode (``-n``) must pass without network: no intersphinx. References to jgather's
  private module paths (what autodoc writes for annotations such as ``MaskedTokens``) and to
  the flat ``jgather.<masking name>`` aliases are resolved to the public entry by
  ``_resolve_to_public``; references into jax and numpy are listed in ``nitpick_ignore_regex``.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import jgather  # noqa: E402

project = "jgather"
copyright = "the jgather authors"
author = "the jgather authors"
release = version = jgather.__version__
_PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: The project's addresses, from pyproject.toml's [project.urls] (the one place that holds
#: them). None while the project has no public address: the header then shows no repository
#: button and the pages say how to install from a clone or a built wheel.
URLS: dict[str, str] = _PYPROJECT.get("urls", {})
REPOSITORY = URLS.get("Repository")
#: The oldest supported jax, from pyproject.toml's ``jax>=X`` (shown on the install page).
JAX_FLOOR = next(
    d.split(">=")[1]
    for d in _PYPROJECT["dependencies"]
    if d.replace(" ", "").startswith("jax>=")
)

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx_copybutton",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# --- notebooks: rendered from their committed outputs, never executed here -----------------
nb_execution_mode = "off"
NOTEBOOKS_SRC = ROOT / "notebooks"
NOTEBOOKS_DST = DOCS / "notebooks"  # git-ignored: a build-time copy


def _copy_notebooks() -> None:
    """Mirror ``notebooks/*.ipynb`` into ``docs/notebooks/`` (stale copies removed)."""
    NOTEBOOKS_DST.mkdir(exist_ok=True)
    wanted = {p.name for p in NOTEBOOKS_SRC.glob("*.ipynb")}
    for old in NOTEBOOKS_DST.glob("*.ipynb"):
        if old.name not in wanted:
            old.unlink()
    for name in wanted:
        src, dst = NOTEBOOKS_SRC / name, NOTEBOOKS_DST / name
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            shutil.copyfile(
                src, dst
            )  # copyfile: a fresh mtime, so Sphinx rereads it


_copy_notebooks()

# --- pictures drawn at build time (git-ignored; redrawn when their inputs change) -----------
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT / "notebooks"))
GENERATED = DOCS / "_static" / "generated"


def _fingerprint(paths: list[Path]) -> str:
    """A hash of the files a set of pictures is drawn from."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def _draw_if_stale(folder: Path, inputs: list[Path], draw: Any) -> None:
    """Calls ``draw(folder)`` unless ``folder`` holds pictures of these exact ``inputs``."""
    stamp = folder / "inputs.sha256"
    fingerprint = _fingerprint(inputs)
    if stamp.exists() and stamp.read_text() == fingerprint:
        return
    shutil.rmtree(folder, ignore_errors=True)
    draw(folder)
    stamp.write_text(fingerprint)


def _draw_pictures() -> None:
    import mask_pictures
    import performance_plots

    masking_sources = [
        *(ROOT / "jgather" / "masking").glob("*.py"),
        Path(mask_pictures.__file__),
    ]
    _draw_if_stale(
        GENERATED / "masks", masking_sources, mask_pictures.write_pictures
    )
    results = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    _draw_if_stale(
        GENERATED / "performance",
        [*results, Path(performance_plots.__file__)],
        lambda folder: performance_plots.write_figures(
            ROOT / "benchmarks" / "results", folder
        ),
    )


_draw_pictures()

# --- MyST -----------------------------------------------------------------------------------
myst_enable_extensions = [
    "colon_fence",
    "deflist",
    "dollarmath",
    "substitution",
]
myst_substitutions = {"jax_floor": JAX_FLOOR}
myst_heading_anchors = 3

# --- autodoc / napoleon ---------------------------------------------------------------------
autodoc_typehints = "signature"
# Type aliases by name: without this, autodoc expands ``ArrayLike`` into its eight-member
# union on every argument. The modules use ``from __future__ import annotations``, so the
# annotations are strings that this table keeps as written (the glossary explains each name).
autodoc_type_aliases = {
    "ArrayLike": "ArrayLike",
    "DTypeLike": "DTypeLike",
    "npt.ArrayLike": "numpy.typing.ArrayLike",
}
# The glossary entry each alias's name links to (docs/glossary.md).
GLOSSARY_TERMS = {"ArrayLike": "ArrayLike", "DTypeLike": "DTypeLike"}
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = (
    True  # `mask_dtype=jnp.float32`, not "<class ...>"
)
autosummary_generate = (
    False  # the API pages are written by hand, one section per name
)
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# A NamedTuple's fields as one compact "Variables" list (name, type, text on one line each)
# rather than an entry of its own per field.
napoleon_use_ivar = True
python_use_unqualified_type_names = True
add_function_parentheses = (
    False  # the porting table writes the signature after the name
)

# --- nitpicky mode without network ----------------------------------------------------------
nitpicky = True
# No intersphinx (CI reaches package registries only), so names from jax, numpy, chex and the
# standard library's typing helpers have no target here. They are left as plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|jnp|chex|lax)(\..*)?"),
    (
        r"py:.*",
        r"(Array|ArrayLike|DTypeLike|PRNGKeyArray|Any|Self|Literal|Iterator)",
    ),
    (r"py:.*", r"(collections\.abc|typing)\..*"),
    (
        r"py:class",
        r"(int|float|bool|str|tuple|list|dict|None|object|type|slice)",
    ),
]

# Every public object, by identity: the path it is documented at.
_NAMESPACES = (
    "jgather.masking",
    "jgather.segment",
    "jgather.tokens",
    "jgather",
)


def _canonical_paths() -> dict[str, str]:
    """Map every other path a public object is reachable by to its documented path."""
    canonical: dict[int, str] = {}
    for ns in (
        _NAMESPACES
    ):  # jgather.masking first: the flat jgather.* aliases defer to it
        mod = importlib.import_module(ns)
        for name in mod.__all__:
            canonical.setdefault(id(getattr(mod, name)), f"{ns}.{name}")
    aliases: dict[str, str] = {}
    for ns in _NAMESPACES:
        mod = importlib.import_module(ns)
        for name in mod.__all__:
            obj = getattr(mod, name)
            target = canonical[id(obj)]
            for path in (
                f"{ns}.{name}",
                f"{obj.__module__}.{obj.__qualname__}",
            ):
                if path != target:
                    aliases[path] = target
    return aliases


_ALIASES = _canonical_paths()


def _resolve_to_public(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve ``jgather._x.Name`` / ``jgather.Name`` (masking alias) to the documented entry."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    public = _ALIASES.get(target)
    if (
        public is None and "." not in target
    ):  # a short name in a signature: MaskedTokens
        public = next(
            (p for p in set(_ALIASES.values()) if p.endswith("." + target)),
            None,
        )
        if (
            public is not None
            and sum(
                p.endswith("." + target) for p in set(_ALIASES.values())
            )
            > 1
        ):
            public = (
                None  # ambiguous (scatter: jgather's and jgather.segment's)
            )
    if public is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env,
        node["refdoc"],
        app.builder,
        node["reftype"],
        public,
        node,
        contnode,
    )


def _alias_to_glossary(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Link ``ArrayLike`` / ``DTypeLike`` in a signature to their glossary entries."""
    term = GLOSSARY_TERMS.get(node.get("reftarget", ""))
    if node.get("refdomain") != "py" or term is None:
        return None
    from docutils import nodes

    uri = (
        app.builder.get_relative_uri(node["refdoc"], "glossary")
        + f"#term-{term}"
    )
    return nodes.reference(
        "", "", contnode, refuri=uri, reftitle=f"glossary: {term}"
    )


_FORWARD_REF = re.compile(r"TypeAliasForwardRef\('([^']*)'\)")


def _plain_aliases(
    app: Any,
    what: str,
    name: str,
    obj: Any,
    options: Any,
    sig: str | None,
    ret: str | None,
) -> tuple[str | None, str | None]:
    """Sphinx writes an alias inside a union (``ArrayLike | None``) as
    ``TypeAliasForwardRef('ArrayLike')``; show the name."""
    fix = lambda text: _FORWARD_REF.sub(r"\1", text) if text else text
    return fix(sig), fix(ret)


_PRIVATE_MODULE = re.compile(r"``_[a-z_]+``|jgather\.(?:[a-z]+\.)*_[a-z]")


def _drop_contributor_paragraphs(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """A package docstring's paragraphs that name private modules (the layout, for
    contributors: the Development page has it) are left out of the user's API pages."""
    if what != "module":
        return
    paragraphs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    kept = [
        p
        for p in paragraphs
        if p and not _PRIVATE_MODULE.search(" ".join(p))
    ]
    lines[:] = [line for p in kept for line in [*p, ""]]


#: How Python spells public jax types when asked at run time (``jax.Array.__module__`` is
#: ``jax``, its ``__qualname__`` ``jaxlib._jax.Array``), and the public name a reader writes.
_PUBLIC_TYPE_NAMES = {
    "jax.jaxlib._jax.Array": "jax.Array",
    "jaxlib._jax.Array": "jax.Array",
}


def _public_type_names(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Field types as their public names: ``jax.Array``, never ``jax.jaxlib._jax.Array``
    (napoleon writes the run-time spelling of a NamedTuple field's annotation)."""
    for i, line in enumerate(lines):
        for private, public in _PUBLIC_TYPE_NAMES.items():
            line = line.replace(private, public)
        lines[i] = line


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-process-docstring", _drop_contributor_paragraphs)
    # After napoleon (connected when its extension loaded), which writes the field types.
    app.connect(
        "autodoc-process-docstring", _public_type_names, priority=900
    )
    app.add_css_file("custom.css")
    app.connect("missing-reference", _alias_to_glossary)
    app.connect("missing-reference", _resolve_to_public)
    app.connect("autodoc-process-signature", _plain_aliases)
    return {"parallel_read_safe": True}


# --- copy buttons: the code without its prompts and outputs -------------------------------
# A ``>>>`` example copies as its input lines only (``>>> `` and ``... `` stripped, outputs
# left out); a ``$ `` shell line copies without the ``$``; other blocks copy whole.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True
copybutton_remove_prompts = True

# --- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = f"jgather {version}"
# Only the stylesheet (docs/_static/css/ is copied into the site's _static/); the pictures
# drawn at build time reach the pages as images.
html_static_path = ["_static/css"]
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
    # One search box, the sidebar's: the top bar's persistent search field is left out.
    "navbar_persistent": [],
    # The repository button in the header, once the project has an address (URLS above); the
    # general index is in the sidebar (index.md).
    **(
        {"repository_url": REPOSITORY, "use_repository_button": True}
        if REPOSITORY
        else {}
    ),
}
