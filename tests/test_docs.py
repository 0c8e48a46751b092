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
import html as html_lib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
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
NAMESPACES = (jgather, jgather.segment, jgather.masking, jgather.tokens)

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
    """The built site: built here once per session, or the one JGATHER_DOCS_SITE names (.ci/run
    builds it with these flags first and hands it to the browser check)."""
    if prebuilt := os.environ.get("JGATHER_DOCS_SITE"):
        path = (ROOT / prebuilt).resolve()
        assert (path / "index.html").is_file(), f"JGATHER_DOCS_SITE={prebuilt}: no site there"
        return path
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

# A fence's language, then its body; a directive's arguments (```{figure} path) are skipped.
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.S | re.M)
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


#: Pages whose "## " sections each run on their own, as a reader copies one recipe: every
#: section's first block imports what it needs and makes its key.
STANDALONE_SECTIONS = {"guides/masking_cookbook.md"}


def _doctest_cases() -> list[tuple[Path, str | None, str]]:
    """(page, section or None for the whole page, the pycon blocks in order)."""
    cases = []
    for page in DOCTEST_PAGES:
        text = page.read_text()
        if page.relative_to(DOCS).as_posix() not in STANDALONE_SECTIONS:
            cases.append((page, None, text))
            continue
        for section in re.split(r"^(?=## )", text, flags=re.M):
            title = section.splitlines()[0].removeprefix("## ").strip()
            if any(lang == "pycon" for lang, _ in _FENCE.findall(section)):
                cases.append((page, title, section))
    return cases


DOCTEST_CASES = _doctest_cases()


@pytest.mark.parametrize(
    "page,section,text",
    DOCTEST_CASES,
    ids=[f"{p.relative_to(DOCS).as_posix()}{f'::{s}' if s else ''}" for p, s, _ in DOCTEST_CASES],
)
def test_docs_examples_run(page, section, text):
    # One doctest per page (or section), its blocks in order sharing one fresh namespace, as a
    # reader runs them.
    blocks = [body for lang, body in _FENCE.findall(text) if lang == "pycon"]
    full = page.read_text()
    lineno = full.count("\n", 0, full.index(text)) + text.count("\n", 0, text.index("```pycon"))
    name = f"{page.name}::{section}" if section else page.name
    test = doctest.DocTestParser().get_doctest(
        "\n".join(blocks), {"__name__": "docs"}, name, str(page), lineno
    )
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    with np.printoptions(precision=8, linewidth=75, threshold=1000, suppress=False):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


# --- the reader's view ----------------------------------------------------------------------


NOTEBOOKS = ROOT / "notebooks"
#: The widest table a 1280-pixel page shows without scrolling sideways, and its longest cell.
MAX_TABLE_COLUMNS = 6
MAX_CELL_CHARS = 140
#: Code lines in the docs' pages, and in the notebooks (ruff's limit for notebooks/, see its
#: ruff.toml). At a 1280-pixel window the content column holds about 90 characters of code
#: (docs/_static/css/custom.css); test_code_fits_the_column_in_chromium checks that every block
#: of the built site shows whole and that the column holds these limits.
MAX_CODE_LINE = 80
MAX_NOTEBOOK_LINE = 88
#: Sphinx's own index pages lay out names in tables; they are not content tables.
GENERATED_PAGES = {"genindex.html", "py-modindex.html", "search.html"}


def _text(fragment: str) -> str:
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def test_user_pages_say_what_they_must(site):
    pages = {
        "installation.html": ["pip install", "wheel", "jax[cuda12]", "demo", "train", "docs"],
        "changelog.html": ["Unreleased", f"[{jgather.__version__}] - 20", "Added"],
        "citing.html": ["@software{jgather", "CITATION.cff"],
        "glossary.html": ["ArrayLike", "DTypeLike", "PRNG key"],
        "mae_pretraining.html": ["examples/mae_pretraining", "mae_pretraining"],
    }
    for name, needles in pages.items():
        text = _text((site / name).read_text(encoding="utf-8"))
        missing = [n for n in needles if n not in text]
        assert not missing, f"{name} does not say {missing}"
    floor = next(
        d.split(">=")[1]
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("jax>=")
    )
    assert f"jax {floor} and newer" in _text((site / "installation.html").read_text())


def test_citation_file_matches_the_package():
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(rf"^version: {re.escape(jgather.__version__)}$", cff, re.M)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert version == jgather.__version__, "pyproject.toml and jgather.__version__ disagree"


def test_changelog_dates_the_release_under_an_unreleased_section():
    """The version released is a dated section of the changelog, under an "Unreleased" one."""
    changelog = (ROOT / "CHANGELOG.md").read_text()
    sections = re.findall(r"^## \[([^\]]+)\](.*)$", changelog, re.M)
    assert sections[0][0] == "Unreleased", sections[:2]
    dated = dict(sections)
    assert jgather.__version__ in dated, f"no section for {jgather.__version__}"
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", dated[jgather.__version__]), (
        f"the {jgather.__version__} section is not dated: {dated[jgather.__version__]!r}"
    )
    date = dated[jgather.__version__].removeprefix(" - ")
    cff = (ROOT / "CITATION.cff").read_text()
    assert f'date-released: "{date}"' in cff, "CITATION.cff's date-released is not the changelog's"


def test_header_shows_version_repository_and_index(site):
    page = (site / "index.html").read_text(encoding="utf-8")
    assert f"jgather {jgather.__version__}" in _text(page)
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("urls", {})
    repository = urls.get("Repository")
    if repository:  # the header's repository button, once the project has an address
        assert f'href="{repository}"' in page, "no repository link in the header"
    else:
        assert "repository-button" not in page and "fa-github" not in page
    assert 'href="genindex.html"' in page, "no link to the general index"


def test_one_search_box(site):
    """The sidebar's search field only (the top bar's would be a second one)."""
    for name in ("index.html", "guides/masking_cookbook.html", "api/masking.html"):
        page = (site / name).read_text(encoding="utf-8")
        assert page.count('class="btn search-button-field') == 1, name


def test_copy_buttons_leave_out_prompts(site):
    script = (site / "_static" / "copybutton.js").read_text(encoding="utf-8")
    # conf.py's prompt pattern, as the script holds it (a regular expression, escaped).
    assert r">>> |\\.\\.\\. " in script, "copybutton is not set to strip >>> / ... prompts"
    assert "copybutton.js" in (site / "guides" / "porting.html").read_text(encoding="utf-8")


_SIGNATURE = re.compile(r'<dt class="sig sig-object py"[^>]*>(.*?)</dt>', re.S)
#: What a readable signature never shows: Any, the expansion of ArrayLike (numpy's scalar
#: types, a list of Python scalars) or a private name.
_NOISE = re.compile(
    r"\bAny\b|TypeAliasForwardRef|\bndarray\b|_SupportsArray|_NestedSequence|\bnumber\b"
    r"|bool \| int \| float|int \| float \| complex|(?<![\w.])_[A-Za-z]\w*"
)


def test_rendered_signatures_are_readable(site):
    signatures = [
        _text(m)
        for page in (site / "api").glob("*.html")
        for m in _SIGNATURE.findall(page.read_text())
    ]
    assert len(signatures) > 50, "signatures not found: has the theme's markup changed?"
    noisy = [s for s in signatures if _NOISE.search(s.removesuffix("#"))]
    assert not noisy, "signatures with Any, an expanded union or a private name:\n" + "\n".join(
        noisy
    )
    assert any("ArrayLike" in s for s in signatures)


def test_api_entries_point_at_nothing_private(site):
    for page in (site / "api").glob("*.html"):
        text = _text(page.read_text(encoding="utf-8"))
        private = ("jgather._", "jgather.masking._", "jgather.segment._", "jaxlib._jax")
        for phrase in ("module docstring", *private):
            assert phrase not in text, f"api/{page.name} says {phrase!r}"


def test_tables_fit_the_page(site):
    wide = []
    for page in sorted(site.rglob("*.html")):
        if page.name in GENERATED_PAGES:
            continue
        for table in re.findall(r"<table.*?</table>", page.read_text(encoding="utf-8"), re.S):
            rows = re.findall(r"<tr.*?</tr>", table, re.S)
            columns = max(len(re.findall(r"<t[dh][\s>]", row)) for row in rows)
            cells = [_text(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", table, re.S)]
            longest = max(cells, key=len)
            where = page.relative_to(site)
            if columns > MAX_TABLE_COLUMNS:
                wide.append(f"{where}: {columns} columns (at most {MAX_TABLE_COLUMNS})")
            if len(longest) > MAX_CELL_CHARS:
                wide.append(f"{where}: a {len(longest)}-character cell: {longest[:60]}...")
    assert not wide, "\n".join(wide)


def _code_lines():
    """(where, line) for every line of code in the docs' fences and the notebooks' cells."""
    for page in PAGES:
        for lang, body in _FENCE.findall(page.read_text()):
            if lang.startswith("{"):  # a directive (figure, toctree, eval-rst), not code
                continue
            for line in body.splitlines():
                yield page.relative_to(ROOT), line
    from _build_percent import percent_sources, read_percent

    for source in percent_sources():
        for cell in read_percent(source.read_text()).cells:
            if cell.cell_type == "code":
                for line in cell.source.splitlines():
                    yield source.relative_to(ROOT), line


def test_code_lines_fit():
    long = [
        f"{where}: ({len(line)}) {line}"
        for where, line in _code_lines()
        if len(line) > (MAX_NOTEBOOK_LINE if where.parts[0] == "notebooks" else MAX_CODE_LINE)
    ]
    assert not long, (
        f"code lines over {MAX_CODE_LINE} characters ({MAX_NOTEBOOK_LINE} in notebooks/):\n"
        + "\n".join(long)
    )


def test_pictures_are_on_their_pages(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import mask_pictures
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    cookbook = _parse(site / "guides" / "masking_cookbook.html").images
    for name, _, _ in mask_pictures.STRATEGIES:
        assert any(src.endswith(f"/{name}.png") for src in cookbook), f"no picture of {name}"
    assert any(src.endswith("/gallery.png") for src in cookbook)
    performance = _parse(site / "guides" / "performance.html").images
    for name in ("ops_vs_torch", "ops_vs_jax", "masking_vs_torch", "masking_scaling"):
        assert any(src.endswith(f"/{name}.png") for src in performance), f"no {name} plot"


def test_plots_name_the_cases_as_the_tables_do():
    """The Performance page's plots label each case with the name its tables give it."""
    import performance_plots

    page = (DOCS / "guides" / "performance.md").read_text()
    cells = [row.split("|")[1].replace("`", "").strip() for row in re.findall(r"^\|.*", page, re.M)]
    unnamed = [
        label
        for label in performance_plots.CASE_LABELS.values()
        if not any(cell.startswith(label) for cell in cells)
    ]
    assert not unnamed, f"plot labels that no table of performance.md starts with: {unnamed}"
    results = ROOT / "benchmarks" / "results"
    for name in ("ops.json", "masking.json"):
        cases = json.loads((results / name).read_text())["cases"]
        missing = [c["case"] for c in cases if c["case"] not in performance_plots.CASE_LABELS]
        assert not missing, f"{name}: cases without a table name in CASE_LABELS: {missing}"


def test_every_strategy_has_a_picture_entry():
    """Each public function that draws a mask appears in the cookbook's picture list."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import mask_pictures
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    drawn = {name for name, _, _ in mask_pictures.STRATEGIES}
    strategies = {
        "random_masking",
        "tube_masking",
        "running_cell_masking",
        "block_masking",
        "simmim_masking",
        "patch_dropout",
        "variable_ratio_masking",
        "random_masking_per_sample",
        "inverse_block_masking",
        "multiblock_masking",
    }
    assert strategies <= drawn, f"no picture entry for {sorted(strategies - drawn)}"


#: The project's internal language: how work was organised, not what the reader needs.
INTERNAL = re.compile(
    r"\bissue[- ]?#?\d+|\bissues? \d+|\blent\b|\bthis (task|session)\b|\bwho ran\b"
    r"|\bthe lead\b(?!ing)|JGATHER_NOTEBOOK_QUICK|\bno GPU was\b",
    re.I,
)


def _reader_texts():
    """(where, text) for every text a user reads: pages, notebooks, public docstrings."""
    for page in PAGES:
        yield page.relative_to(ROOT), page.read_text()
    for name in ("README.md", "CHANGELOG.md"):
        yield name, (ROOT / name).read_text()
    for source in sorted(NOTEBOOKS.glob("*.py")):
        yield source.relative_to(ROOT), source.read_text()
    for source in sorted((ROOT / "examples").rglob("*.py")):
        yield source.relative_to(ROOT), source.read_text()
    for namespace in NAMESPACES:
        yield namespace.__name__, namespace.__doc__ or ""
        for name in namespace.__all__:
            obj = getattr(namespace, name)
            yield f"{namespace.__name__}.{name}", inspect.getdoc(obj) or ""


def test_no_internal_language():
    found = [
        f"{where}: {m.group(0)!r}"
        for where, text in _reader_texts()
        for m in INTERNAL.finditer(text)
    ]
    assert not found, "internal language where users read:\n" + "\n".join(found)


def test_internal_language_test_catches_it():
    for phrase in ("the issue-10 run", "No GPU was lent to this task", "issue 20", "issue #12"):
        assert INTERNAL.search(phrase), phrase
    for phrase in ("the leading axes", "a silent wrap", "torch's issue tracker"):
        assert not INTERNAL.search(phrase), phrase


# --- the built site in a browser --------------------------------------------------------------

#: The window every page is checked at: a laptop's browser window.
WINDOW = (1280, 900)
#: The smallest text of the mask pictures, in CSS pixels as the page shows them.
MIN_PICTURE_TEXT_PX = 10
_BROWSERS = ("chromium", "chromium-browser")
#: Run in each page (inside a frame of WINDOW's size) once it has loaded: every code block
#: whose content is wider than the block, every table wider than the content column, and
#: how many characters of code the narrowest block holds.
_MEASURE = """
function measure(d, w) {
  const found = [];
  const column = (d.querySelector('article.bd-article') || d.body).clientWidth;
  let holds = Infinity;
  for (const pre of d.querySelectorAll('pre')) {
    if (!pre.clientWidth) continue;  // not displayed
    if (pre.scrollWidth > pre.clientWidth) {
      const lines = pre.textContent.split('\\n');
      const longest = lines.reduce((a, b) => (a.length >= b.length ? a : b), '');
      found.push(`a code block scrolls by ${pre.scrollWidth - pre.clientWidth} px: ${longest}`);
    }
    if (pre.closest('.cell_output, .output')) continue;  // printed output wraps
    const style = w.getComputedStyle(pre);
    const probe = d.createElement('span');
    probe.textContent = 'x'.repeat(100);
    pre.appendChild(probe);
    const char = probe.getBoundingClientRect().width / 100;
    probe.remove();
    const inner = pre.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    holds = Math.min(holds, Math.floor(inner / char));
  }
  for (const table of d.querySelectorAll('article table')) {
    const box = table.parentElement;
    if (table.offsetWidth > column || box.scrollWidth > box.clientWidth)
      found.push(`a table ${table.offsetWidth} px wide in a ${column}-px column: `
                 + table.textContent.trim().slice(0, 60));
  }
  const pictures = [...d.querySelectorAll('article img')]
    .filter(img => img.naturalWidth)
    .map(img => [img.src.split('/').pop(), img.clientWidth / img.naturalWidth]);
  return {found: found, holds: holds === Infinity ? null : holds, pictures: pictures};
}
async function run(pages) {
  const frame = document.getElementById('page');
  const results = {};
  for (const page of pages) {
    await new Promise(done => { frame.onload = done; frame.src = page; });
    const images = [...frame.contentDocument.querySelectorAll('article img')];
    images.forEach(img => { img.loading = 'eager'; });  // pictures below the fold, too
    await Promise.all(images.map(img => img.decode().catch(() => null)));
    results[page] = measure(frame.contentDocument, frame.contentWindow);
  }
  document.getElementById('results').textContent = JSON.stringify(results);
}
"""


def _chromium() -> str | None:
    return next((path for name in _BROWSERS if (path := shutil.which(name))), None)


def _measure_in_chromium(browser: str, pages: list[Path], folder: Path) -> dict[str, dict]:
    """Load ``pages`` one by one in one headless Chromium, each at WINDOW's size."""
    width, height = WINDOW
    urls = [page.as_uri() for page in pages]
    harness = folder / "harness.html"
    harness.write_text(
        f'<html><body style="margin:0"><iframe id="page" width="{width}" height="{height}"'
        ' style="border:0"></iframe><pre id="results"></pre><script>'
        + _MEASURE
        + f"window.onload = () => run({json.dumps(urls)});</script></body></html>"
    )
    # --dump-dom writes the DOM once the virtual-time budget is spent. The pages' own timers
    # spend virtual time too, and how much of it passes while a page loads depends on the
    # machine's load, so the budget scales with the pages and, if the results are not in the
    # DOM yet, a run with a budget four times larger follows (once idle, the rest of a budget
    # passes at once, so a large one costs no wall time).
    budget = 30_000 * len(pages)
    for attempt in range(3):
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu"]
        cmd += ["--allow-file-access-from-files", f"--user-data-dir={folder / f'profile{attempt}'}"]
        cmd += [f"--window-size={width + 20},{height + 20}", f"--virtual-time-budget={budget}"]
        cmd += ["--dump-dom", harness.as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        found = re.search(r'<pre id="results">(.+?)</pre>', done.stdout, re.S)
        if found:
            return json.loads(html_lib.unescape(found.group(1)))
        budget *= 4
    raise AssertionError(
        f"no results from {' '.join(cmd)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    )


def test_code_fits_the_column_in_chromium(site, tmp_path):
    """At a 1280 x 900 window no code block scrolls sideways and no table is wider than the
    column, on every page of the built site; the column holds the line limits above, and the
    mask pictures' titles are at least MIN_PICTURE_TEXT_PX tall as shown."""
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI is set but chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (Debian: apt-get install -y chromium)")
    skip = GENERATED_PAGES
    pages = [
        p
        for p in sorted(site.rglob("*.html"))
        if p.name not in skip and not p.relative_to(site).parts[0].startswith("_")
    ]
    assert len(pages) >= 20, f"only {len(pages)} pages found"
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import mask_pictures
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    mask_names = {name for name, _, _ in mask_pictures.STRATEGIES} | {"gallery"}
    results = _measure_in_chromium(browser, pages, tmp_path)
    assert len(results) == len(pages), "the harness did not measure every page"
    problems = []
    for page in pages:
        result = results[page.as_uri()]
        where = page.relative_to(site).as_posix()
        problems += [f"{where}: {text}" for text in result["found"]]
        limit = MAX_NOTEBOOK_LINE if where.startswith("notebooks/") else MAX_CODE_LINE
        if result["holds"] is not None and result["holds"] < limit:
            problems.append(f"{where}: a code block holds {result['holds']} < {limit} characters")
        for name, scale in result["pictures"]:  # the mask pictures' titles, as shown
            if name.removesuffix(".png") not in mask_names:
                continue
            shown = mask_pictures.TITLE_SIZE * mask_pictures.DPI / 72 * scale
            if shown < MIN_PICTURE_TEXT_PX:
                problems.append(f"{where}: {name}'s titles are {shown:.1f} px tall on the page")
    pictures = [
        name for r in results.values() for name, _ in r["pictures"] if name.endswith(".png")
    ]
    assert "gallery.png" in pictures and "multiblock_masking.png" in pictures, pictures
    assert not problems, "\n".join(problems)
