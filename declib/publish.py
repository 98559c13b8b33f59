"""The course as slides and as a website, built from the committed notebooks (their outputs included, nothing run).

* :func:`build_slides`: one static reveal.js deck per notebook (nbconvert's slides exporter). The cells' slideshow
  metadata (slide / subslide / fragment / skip / notes) decides what goes on which slide; in JupyterLab the same
  metadata drives "Render as slideshow" (jupyterlab-rise), with live code.
* :func:`build_site`: a static website (Sphinx with MyST-NB and the book theme, the engine of Jupyter Book 1): one
  page per notebook, navigation, full-text search, and maths rendered at build time by KaTeX (needs Node.js) to
  MathML, which browsers lay out natively: pages need nothing from the network to show their equations.

``python3 course.py slides`` and ``python3 course.py site`` call these; ``python -m declib.publish slides|site``
does the same inside an environment that has the course installed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

__all__ = ["NOTEBOOKS_DIR", "notebooks", "build_slides", "slide_count", "build_site", "check_site"]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS_DIR = ROOT / "notebooks"
SITE_DIR = ROOT / "site"  # conf.py and index.md of the website


def notebooks(folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course's notebooks, in order (``NN_topic.ipynb``)."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise FileNotFoundError(f"no notebooks named NN_topic.ipynb in {folder}")
    return found


# ------------------------------------------------------------------------------------------------------------ slides
class _Sections(HTMLParser):
    """Counts reveal.js slides: innermost ``<section>`` elements (a slide with subslides is a section of sections)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []  # per open section: has it a child section?
        self.slides = 0

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            if self.stack:
                self.stack[-1] = True
            self.stack.append(False)

    def handle_endtag(self, tag):
        if tag == "section" and self.stack:
            if not self.stack.pop():
                self.slides += 1


def slide_count(html: str) -> int:
    """The number of slides (counting subslides) in an nbconvert reveal.js deck."""
    parser = _Sections()
    parser.feed(html)
    return parser.slides


def build_slides(out: str | Path, paths: list[Path] | None = None, python: str = sys.executable) -> list[Path]:
    """Write ``out/NN_topic.slides.html`` for each notebook and return the paths.

    reveal.js itself is loaded from a CDN when a deck is opened (nbconvert's default); the deck's content, figures
    included, is all in the file. Cells marked ``skip`` are left out; ``notes`` cells become speaker notes (press
    ``S`` in the deck).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = notebooks() if paths is None else [Path(p) for p in paths]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"paths: {p} is not a notebook file")
    subprocess.run([python, "-m", "jupyter", "nbconvert", "--to", "slides", "--log-level=WARN",
                    "--SlidesExporter.reveal_scroll=True", "--SlidesExporter.reveal_transition=none",
                    "--output-dir", str(out), *map(str, paths)], check=True)
    decks = [out / f"{p.stem}.slides.html" for p in paths]
    missing = [str(d) for d in decks if not d.is_file()]
    if missing:
        raise RuntimeError(f"nbconvert wrote no deck for {missing}")
    return decks


# -------------------------------------------------------------------------------------------------------------- site
def build_site(out: str | Path, python: str = sys.executable) -> Path:
    """Build the website into ``out`` and return the folder holding ``index.html``.

    The notebooks are copied next to ``site/conf.py`` and ``site/index.md`` into ``out/source`` and rendered with
    their committed outputs (nothing is executed); the HTML goes to ``out/html``.
    """
    out = Path(out)
    source, html = out / "source", out / "html"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(SITE_DIR, source)
    (source / "notebooks").mkdir()
    for p in notebooks():
        shutil.copy2(p, source / "notebooks" / p.name)
    subprocess.run([python, "-m", "sphinx", "-b", "html", "-E", "-q", "-W", "--keep-going", "-j", "1",
                    str(source), str(html)], check=True)
    return html


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.katex = 0
        self.math = 0
        self.mathml = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if "katex" in cls.split():
            self.katex += 1
        if tag == "math":
            self.mathml += 1
        if tag in ("span", "div") and "math" in cls.split():
            self.math += 1


def check_site(html: str | Path) -> dict[str, dict]:
    """Check a built site: a page per notebook, each with its equations rendered by KaTeX and its figures present.

    Returns, per notebook, the number of equations and of figures found; raises ``AssertionError`` naming the page
    and what is wrong.
    """
    html = Path(html)
    assert (html / "index.html").is_file(), f"{html}: no index.html"
    assert (html / "search.html").is_file() and (html / "searchindex.js").is_file(), f"{html}: no search page/index"
    index = (html / "searchindex.js").read_text(encoding="utf-8")
    report = {}
    for nb in notebooks():
        page = html / "notebooks" / f"{nb.stem}.html"
        assert page.is_file(), f"{nb.name}: no page {page}"
        text = page.read_text(encoding="utf-8")
        parsed = _Page()
        parsed.feed(text)
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        n_math = sum(len(re.findall(r"\$", "".join(c["source"]))) > 0 for c in cells if c["cell_type"] == "markdown")
        n_png = sum("image/png" in o.get("data", {}) for c in cells if c["cell_type"] == "code"
                    for o in c.get("outputs", []))
        assert parsed.math >= 1 or n_math == 0, f"{page.name}: no maths found, the notebook has some"
        assert parsed.katex >= parsed.math, f"{page.name}: {parsed.math - parsed.katex} formulas not rendered by KaTeX"
        assert parsed.mathml >= parsed.math, f"{page.name}: formulas without MathML, which the browser lays out"
        assert "katex-error" not in text, f"{page.name}: KaTeX could not render a formula"
        local = [src for src in parsed.images if not re.match(r"^(https?:|data:)", src)]
        missing = [src for src in local if not (page.parent / src).resolve().is_file()]
        assert not missing, f"{page.name}: images missing: {missing[:5]}"
        figures = [src for src in local if "_images/" in src] + [s for s in parsed.images if s.startswith("data:image")]
        assert len(figures) >= n_png, f"{page.name}: {len(figures)} figures on the page, the notebook has {n_png}"
        assert f"notebooks/{nb.stem}" in index, f"{nb.name}: not in the search index"
        report[nb.stem] = {"formulas": parsed.math, "figures": len(figures)}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m declib.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["slides", "site"])
    parser.add_argument("--out", type=Path, help="output folder (default: build/slides or build/site)")
    args = parser.parse_args(argv)
    out = args.out or ROOT / "build" / args.what
    if args.what == "slides":
        for deck in build_slides(out):
            print(f"{deck}  ({slide_count(deck.read_text(encoding='utf-8'))} slides)")
        print(f"\nopen one in a browser; S shows the speaker notes. Decks: {out}")
    else:
        html = build_site(out)
        for name, r in check_site(html).items():
            print(f"{name}: {r['formulas']} formulas, {r['figures']} figures")
        print(f"\nthe site: {html / 'index.html'} (publish the folder {html}, e.g. on GitHub Pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
