"""Teaching from the course: the opening cell's plan, slideshow metadata, the slide decks, launch links, the first
cell's bootstrap (tried in a fresh virtual environment without declib), relinking a fork, and the website."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from html import unescape
from pathlib import Path

import pytest

from declib import launch, publish
from declib.config import NOTEBOOK_MINUTES

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = publish.notebooks()
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def src(cell: dict) -> str:
    return "".join(cell["source"])


def kind(cell: dict) -> str | None:
    return cell["metadata"].get("slideshow", {}).get("slide_type")


def first_code(path: Path) -> dict:
    return next(c for c in cells(path) if c["cell_type"] == "code")


# ------------------------------------------------------------------------------------------------ the opening cell
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opening_cell_has_goals_prerequisites_time_plan_and_launch_links(path):
    opening = src(cells(path)[0])
    assert opening.startswith(f"# {path.stem[:2]} · ")
    assert launch.badges_markdown(path.name) in opening, "launch badges missing or pointing elsewhere"
    for part in ("**After this notebook you can**", "**Prerequisites**", "**Time plan.**"):
        assert part in opening, f"{path.name}: the opening cell lacks {part}"
    goals = re.search(r"\*\*After this notebook you can\*\*\n\n((?:\* .*\n)+)", opening)
    assert goals and 3 <= goals.group(1).count("\n* ") + 1 <= 6, "3 to 6 learning goals"
    minutes = NOTEBOOK_MINUTES[path.stem[:2]]["cpu"]
    said = "under a minute" if minutes < 1 else f"about {minutes:.0f} min"
    assert f"Running top to bottom: {said} on a 2-core laptop CPU" in opening, "time plan out of step with config"


def test_the_time_plan_check_can_fail(monkeypatch):
    monkeypatch.setitem(NOTEBOOK_MINUTES, "05", {"cpu": 99.0, "fast": 1.0, "full": None})
    with pytest.raises(AssertionError, match="time plan"):
        test_opening_cell_has_goals_prerequisites_time_plan_and_launch_links(NOTEBOOKS[5])


def test_lecture_plan_covers_every_notebook():
    plan = (ROOT / "LECTURES.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        part = re.search(rf"^## [^\n]*{path.stem[:2]} · .*?(?=^## |\Z)", plan, re.M | re.S)
        assert part, f"LECTURES.md has no section for {path.name}"
        rows = re.findall(r"^\| (.+?) \| (\d+) \| (live|pre-computed|board) \|", part.group(0), re.M)
        assert rows and 75 <= sum(int(r[1]) for r in rows) <= 95, f"{path.name}: a plan for about 90 minutes"
        assert f"notebooks/{path.name}" in readme
    assert "LECTURES.md" in readme


# --------------------------------------------------------------------------------------------------------- slides
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_slideshow_metadata(path):
    cs = cells(path)
    kinds = [kind(c) for c in cs]
    assert set(kinds) <= SLIDE_TYPES, f"{path.name}: cells without (valid) slideshow metadata: {set(kinds) - SLIDE_TYPES}"
    assert kinds[0] == "slide" and kind(first_code(path)) == "skip", "the title is a slide, the set-up cell is skipped"
    for c, k in zip(cs, kinds):
        if c["cell_type"] == "markdown" and re.match(r"## (\d+ · |Key takeaways|Self-check quiz)", src(c)):
            assert k == "slide", f"{path.name}: section {src(c).splitlines()[0]!r} does not start a slide"
    assert kinds.count("notes") >= 2, f"{path.name}: speaker notes where the derivations need words"
    rise = json.loads(path.read_text(encoding="utf-8"))["metadata"].get("rise", {})
    assert rise.get("scroll") is True, f"{path.name}: long slides must scroll in JupyterLab's slideshow (rise.scroll)"
    for c, k in zip(cs, kinds):
        if k == "notes":
            assert c["cell_type"] == "markdown" and src(c).startswith("*Speaker notes.*")


@pytest.fixture(scope="module")
def decks(tmp_path_factory):
    return publish.build_slides(tmp_path_factory.mktemp("slides"))


def test_slide_count_counts_subslides():
    html = "<section><section>a</section><section>b</section></section><section>c</section>"
    assert publish.slide_count(html) == 3


@pytest.mark.parametrize("i", range(len(NOTEBOOKS)), ids=[p.stem for p in NOTEBOOKS])
def test_decks_are_built_with_a_sane_number_of_slides(decks, i):
    path, deck = NOTEBOOKS[i], decks[i]
    html = deck.read_text(encoding="utf-8")
    kinds = [kind(c) for c in cells(path)]
    expected = kinds.count("slide") + kinds.count("subslide")
    n = publish.slide_count(html)
    assert 15 <= n <= 80, f"{deck.name}: {n} slides for a 90-minute lecture"
    assert n == expected, f"{deck.name}: {n} slides, the metadata asks for {expected}"
    assert html.count('<aside class="notes">') == kinds.count("notes"), "every notes cell becomes a speaker note"
    text = unescape(re.sub(r"<[^>]+>", "", html))  # what the deck shows, without the syntax highlighting's tags
    assert 'find_spec("declib")' not in text, "the skipped set-up cell is on a slide"
    assert "Traceback (most recent call last)" not in text and "jp-OutputArea-output-error" not in html
    assert html.count("data:image/png;base64") >= 1 or "image/png" not in path.read_text()


# ------------------------------------------------------------------------------------------------- launch, bootstrap
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_starts_with_the_bootstrap(path):
    assert src(first_code(path)).startswith(launch.bootstrap_code())


def test_bootstrap_does_nothing_where_declib_is_installed():
    out = subprocess.run([sys.executable, "-c", launch.bootstrap_code()], capture_output=True, text=True, check=True)
    assert out.stdout == "" and out.stderr == ""


def test_launch_urls():
    assert launch.colab_url("05_dec.ipynb") == (
        f"https://colab.research.google.com/github/{launch.REPOSITORY}/blob/main/notebooks/05_dec.ipynb")
    assert launch.binder_url("05_dec.ipynb").endswith("?urlpath=lab/tree/notebooks/05_dec.ipynb")
    for bad in ("05_dec", "notebooks/05_dec.ipynb", None):
        with pytest.raises(ValueError, match="notebook"):
            launch.colab_url(bad)


def test_pyproject_names_the_same_repository():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'Repository = "https://github.com/{launch.REPOSITORY}"' in text


def test_bootstrap_installs_the_course_in_a_fresh_environment(tmp_path):
    """A new virtual environment without declib: the first cell installs it from $DECLIB_INSTALL_SOURCE and finds
    MNIST. The environment borrows this one's installed packages (torch and the rest, through a .pth file; an
    editable declib is not visible that way), so pip installs only the course itself, as on Colab, where torch and
    most of the stack come preinstalled."""
    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    Path(site, "borrowed.pth").write_text(ours + "\n")
    probe = [py, "-c", "import importlib.util; print(importlib.util.find_spec('declib') is None)"]
    assert subprocess.run(probe, capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip() == "True"
    env = {**os.environ, "DECLIB_INSTALL_SOURCE": str(ROOT), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.setdefault("DECLIB_DATA", str(ROOT.parent / "shared" / "data"))
    out = subprocess.run([py, "-c", launch.bootstrap_code()], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert f"installing the course package declib from {ROOT}" in out.stdout and "installed declib" in out.stdout
    assert re.search(r"MNIST: (found|downloaded) the four files", out.stdout), out.stdout
    assert subprocess.run(probe, capture_output=True, text=True, check=True, cwd=tmp_path).stdout.strip() == "False"
    again = subprocess.run([py, "-c", launch.bootstrap_code()], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout == "", "a second run does nothing"


def test_links_point_a_fork_everywhere(tmp_path):
    for part in ("README.md", "pyproject.toml", "declib/launch.py", "notebooks"):
        source, copy = ROOT / part, tmp_path / part
        copy.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, copy)
        else:
            shutil.copy2(source, copy)
    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    changed = course.relink("my-uni/dl-course", root=tmp_path)
    assert {p.name for p in changed} >= {"README.md", "pyproject.toml", "launch.py", *(p.name for p in NOTEBOOKS)}
    for path in changed:
        text = path.read_text(encoding="utf-8")
        assert launch.REPOSITORY + "/" not in text.replace("my-uni/dl-course", ""), f"{path.name}: an old link left"
    nb = (tmp_path / "notebooks" / NOTEBOOKS[0].name).read_text(encoding="utf-8")
    assert launch.colab_url(NOTEBOOKS[0].name, "my-uni/dl-course") in nb
    assert "git+https://github.com/my-uni/dl-course.git" in nb
    with pytest.raises(SystemExit, match="OWNER/NAME"):
        course.relink("not a repository", root=tmp_path)


def test_readme_launch_links():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert launch.binder_url() in readme
    for path in NOTEBOOKS:
        assert launch.colab_url(path.name) in readme, f"README: no Colab link for {path.name}"


# ----------------------------------------------------------------------------------------------------------- site
def test_site_builds_with_every_page_its_maths_and_figures(tmp_path):
    if shutil.which("node") is None:
        pytest.fail("the website renders its formulas with KaTeX at build time, which needs Node.js (node)")
    html = publish.build_site(tmp_path / "site")
    report = publish.check_site(html)
    assert set(report) == {p.stem for p in NOTEBOOKS}
    for name, r in report.items():
        assert r["formulas"] >= 5 and r["figures"] >= 1, (name, r)
