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
import importlib
import shutil
import sys
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

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
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
            shutil.copyfile(src, dst)  # copyfile: a fresh mtime, so Sphinx rereads it


_copy_notebooks()

# --- MyST -----------------------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# --- autodoc / napoleon ---------------------------------------------------------------------
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_member_order = "bysource"
autodoc_preserve_defaults = True  # `mask_dtype=jnp.float32`, not "<class ...>"
autosummary_generate = False  # the API pages are written by hand, one section per name
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
python_use_unqualified_type_names = True
add_function_parentheses = False  # the porting table writes the signature after the name

# --- nitpicky mode without network ----------------------------------------------------------
nitpicky = True
# No intersphinx (CI reaches package registries only), so names from jax, numpy, chex and the
# standard library's typing helpers have no target here. They are left as plain text.
nitpick_ignore_regex = [
    (r"py:.*", r"(jax|jaxlib|numpy|np|jnp|chex|lax)(\..*)?"),
    (r"py:.*", r"(Array|ArrayLike|DTypeLike|PRNGKeyArray|Any|Self|Literal|Iterator)"),
    (r"py:.*", r"(collections\.abc|typing)\..*"),
    (r"py:class", r"(int|float|bool|str|tuple|list|dict|None|object|type|slice)"),
]

# Every public object, by identity: the path it is documented at.
_NAMESPACES = ("jgather.masking", "jgather.segment", "jgather")


def _canonical_paths() -> dict[str, str]:
    """Map every other path a public object is reachable by to its documented path."""
    canonical: dict[int, str] = {}
    for ns in _NAMESPACES:  # jgather.masking first: the flat jgather.* aliases defer to it
        mod = importlib.import_module(ns)
        for name in mod.__all__:
            canonical.setdefault(id(getattr(mod, name)), f"{ns}.{name}")
    aliases: dict[str, str] = {}
    for ns in _NAMESPACES:
        mod = importlib.import_module(ns)
        for name in mod.__all__:
            obj = getattr(mod, name)
            target = canonical[id(obj)]
            for path in (f"{ns}.{name}", f"{obj.__module__}.{obj.__qualname__}"):
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
    if public is None and "." not in target:  # a short name in a signature: MaskedTokens
        public = next((p for p in set(_ALIASES.values()) if p.endswith("." + target)), None)
        if public is not None and sum(p.endswith("." + target) for p in set(_ALIASES.values())) > 1:
            public = None  # ambiguous (scatter: jgather's and jgather.segment's)
    if public is None:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], public, node, contnode
    )


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", _resolve_to_public)
    return {"parallel_read_safe": True}


# --- HTML -----------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "jgather"
html_theme_options = {
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
