"""The documentation site: ``mkdocs build --strict`` (a warning fails the build), every page
rendered by headless Chromium (Debian's ``chromium``) with its title, every internal link and
anchor resolving to a built file, and the generated references complete."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from .conftest import REPO
from .pipeline.test_report import CHROMIUM, CHROMIUM_FLAGS, needs_chromium

SOURCES = sorted(p.relative_to(REPO / "docs").with_suffix(".html")
                 for p in (REPO / "docs").rglob("*.md") if "hooks" not in p.parts)


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert "WARNING" not in proc.stderr, proc.stderr[-5000:]
    return out


class _Page(HTMLParser):
    """Links (``href``/``src``), element ids and the h1's text of one HTML page."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.h1 = ""
        self._in_h1 = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and attrs.get("rel") in ("canonical",)):
                self.links.append(attrs[key])
        self._in_h1 = self._in_h1 or tag == "h1"

    def handle_endtag(self, tag):
        if tag == "h1":
            self._in_h1 = False

    def handle_data(self, data):
        if self._in_h1:
            self.h1 += data


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _title(source: Path) -> str:
    text = (REPO / "docs" / source.with_suffix(".md")).read_text(encoding="utf-8")
    return re.search(r"^# (.+)$", text, flags=re.MULTILINE).group(1).replace("`", "").strip()


def test_every_page_is_built(site):
    for page in SOURCES:
        assert (site / page).is_file(), page
    assert not (site / "hooks").exists()  # the build hook is not published


@needs_chromium
def test_every_page_renders_in_headless_chromium_with_its_title(site):
    def dom(page: Path) -> str:
        return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--dump-dom", (site / page).as_uri()], capture_output=True,
                              text=True, timeout=120).stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        doms = dict(zip(SOURCES, pool.map(dom, SOURCES)))
    for page, html in doms.items():
        parsed = _Page()
        parsed.feed(html)
        assert _title(page) in parsed.h1, (page, parsed.h1)
        assert "md-content" in html, page  # the theme's layout rendered around the page


def test_every_internal_link_resolves(site):
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith(("//", "mailto:")):
                continue
            # 404.html links from the site's root (a server serves it at any depth)
            base = site if parts.path.startswith("/") else path.parent
            target = (base / unquote(parts.path).lstrip("/")).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                broken.append(f"{path.relative_to(site)}: {link}")
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{path.relative_to(site)}: {link} (no #{parts.fragment})")
    assert not broken, broken


def test_the_references_cover_every_command_and_public_name(site):
    import labeling
    from labeling.cli import build_parser

    cli = _parse(site / "reference" / "cli.html")
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(commands) <= cli.ids | {i.split("-", 1)[-1] for i in cli.ids}, sorted(commands)
    api = (site / "reference" / "api.html").read_text(encoding="utf-8")
    missing = [name for name in labeling.__all__ if f'id="labeling.' not in api or not re.search(
        rf'id="labeling\.[\w.]*\.{re.escape(name)}"|<code>{re.escape(name)}</code>', api)]
    assert not missing, missing


def test_readme_links_to_docs_pages_that_exist():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / link).is_file(), link
