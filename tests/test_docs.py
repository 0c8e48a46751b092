"""The documentation site: every public name has one API entry, the site builds with warnings
as errors and every cross-reference resolved (nitpicky), every internal link, anchor and image
of the built HTML resolves, and the examples on the docs pages run as doctests.

The site is built once per session into a temporary folder, in a subprocess (Sphinx's own
deprecation warnings must not meet this session's ``filterwarnings = error``), with the flags
.ci/run uses: ``-W --keep-going -n``. The notebooks are rendered from their committed outputs
(``nb_execution_mode = "off"``), so the build takes seconds.
"""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

import jgather
import jgather.masking
import jgather.segment

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
API_PAGES = sorted((DOCS / "api").glob("*.md"))
# The hand-written pages (the notebooks are copied in at build time and are not sources here).
PAGES = sorted(
    p for p in DOCS.rglob("*.md") if not p.relative_to(DOCS).parts[0].startswith(("_", "notebooks"))
)
NAMESPACES = (jgather, jgather.segment, jgather.masking)

_DIRECTIVE = re.compile(r"^\s*\.\. (currentmodule|module|autofunction|autoclass)::\s*(\S+)", re.M)


def _api_entries() -> dict[str, list[str]]:
    """Every ``autofunction`` / ``autoclass`` entry of the API pages, as its full dotted path,
    with the pages that document it."""
    entries: dict[str, list[str]] = {}
    for page in API_PAGES:
        module = None
        for kind, arg in _DIRECTIVE.findall(page.read_text()):
            if kind in ("currentmodule", "module"):
                module = arg
            else:
                path = arg if "." in arg else f"{module}.{arg}"
                entries.setdefault(path, []).append(page.name)
    return entries


def _canonical(namespace, name: str) -> str:
    """Where a public name is documented: ``jgather``'s flat masking names under masking."""
    if namespace is jgather and name in jgather.masking.__all__:
        assert getattr(jgather, name) is getattr(jgather.masking, name), name
        return f"jgather.masking.{name}"
    return f"{namespace.__name__}.{name}"


PUBLIC = [(ns, name) for ns in NAMESPACES for name in ns.__all__]


@pytest.mark.parametrize("namespace,name", PUBLIC, ids=[f"{ns.__name__}.{n}" for ns, n in PUBLIC])
def test_every_public_name_has_one_api_entry(namespace, name):
    path = _canonical(namespace, name)
    pages = _api_entries().get(path, [])
    assert len(pages) == 1, f"{path} ({namespace.__name__}.{name}) is documented on {pages}"


def test_api_entries_are_public_names():
    public = {_canonical(ns, name) for ns, name in PUBLIC}
    stale = sorted(set(_api_entries()) - public)
    assert not stale, f"API pages document names that are not public: {stale}"


# --- the built site -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs")
    html, doctrees = out / "html", out / "doctrees"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q"]
    cmd += ["-d", str(doctrees), str(DOCS), str(html)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return html


class _Refs(HTMLParser):
    """The ids, link targets and image sources of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        if tag == "img" and a.get("src") is not None:
            self.images.append(a["src"])


def _parse(page: Path) -> _Refs:
    refs = _Refs()
    refs.feed(page.read_text(encoding="utf-8"))
    return refs


def _local(ref: str) -> tuple[str, str] | None:
    """(path, fragment) of a link into the site; None for external links and data URIs."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc:
        return None
    return unquote(parts.path), unquote(parts.fragment)


def test_every_page_is_built(site):
    expected = [site / p.relative_to(DOCS).with_suffix(".html") for p in PAGES]
    expected += [
        site / "notebooks" / f"{p.stem}.html" for p in (ROOT / "notebooks").glob("*.ipynb")
    ]
    missing = [str(p.relative_to(site)) for p in expected if not p.is_file()]
    assert not missing, f"pages not built: {missing}"


def test_every_api_entry_is_on_its_page(site):
    for path, pages in _api_entries().items():
        html = site / "api" / Path(pages[0]).with_suffix(".html")
        assert path in _parse(html).ids, f"{path}: no entry in {html.name}"


def test_internal_links_anchors_and_images_resolve(site):
    pages = sorted(site.rglob("*.html"))
    refs = {page: _parse(page) for page in pages}
    broken = []
    checked = 0
    for page, found in refs.items():
        for kind, ref in [("link", h) for h in found.hrefs] + [("image", s) for s in found.images]:
            local = _local(ref)
            if local is None:
                continue
            path, fragment = local
            target = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(site)}: {kind} {ref!r}"
            if not target.is_relative_to(site.resolve()) or not target.is_file():
                broken.append(f"{where}: no such file")
                continue
            checked += 1
            if kind == "link" and fragment and target.suffix == ".html":
                ids = refs[target].ids if target in refs else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{where}: no anchor #{fragment}")
    assert not broken, "\n".join(broken)
    assert checked > 500, f"only {checked} local links and images found: is the parser right?"


def test_notebooks_are_rendered_with_their_images(site):
    for name in ("02_mae_masking", "03_performance"):
        images = _parse(site / "notebooks" / f"{name}.html").images
        assert images, f"{name}: no images rendered (outputs not committed?)"


# --- the docs pages' examples ---------------------------------------------------------------

_FENCE = re.compile(r"^```(\S*)\n(.*?)^```", re.S | re.M)
DOCTEST_PAGES = [
    p for p in PAGES if any(lang == "pycon" for lang, _ in _FENCE.findall(p.read_text()))
]


def test_examples_are_pycon_blocks():
    """A ``>>>`` example in any other fence would be rendered but never run."""
    for page in PAGES:
        for lang, body in _FENCE.findall(page.read_text()):
            assert lang == "pycon" or ">>>" not in body, f"{page.name}: a ```{lang} block holds >>>"
    names = {p.relative_to(DOCS).as_posix() for p in DOCTEST_PAGES}
    assert {
        "index.md",
        "guides/porting.md",
        "guides/out_of_range.md",
        "guides/masking_cookbook.md",
    } <= names


@pytest.mark.parametrize(
    "page", DOCTEST_PAGES, ids=[p.relative_to(DOCS).as_posix() for p in DOCTEST_PAGES]
)
def test_docs_examples_run(page):
    # One doctest per page, its blocks in order sharing one namespace, as a reader runs them.
    text = page.read_text()
    blocks = [body for lang, body in _FENCE.findall(text) if lang == "pycon"]
    lineno = text.count("\n", 0, text.index("```pycon"))
    test = doctest.DocTestParser().get_doctest(
        "\n".join(blocks), {"__name__": "docs"}, page.name, str(page), lineno
    )
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    with np.printoptions(precision=8, linewidth=75, threshold=1000, suppress=False):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, (
        f"{result.failed} of {result.attempted} examples failed in {page.name}"
    )
