"""What a person sees: every notebook run through JupyterLab's own menus in a real browser.

nbval runs the notebooks in a kernel; nothing there renders a widget or notices a slider that no longer redraws its
plot. Here Playwright drives Debian's Chromium against a JupyterLab started on loopback with a throwaway settings
folder (a copy of the notebooks, so nothing committed is touched). For each notebook it clears the outputs, runs all
cells with *Run → Run All Cells*, and requires

* every code cell executed, and no error output (read from the notebook as the browser saves it);
* every widget output rendered by the widget manager (not "Loading widget…" nor an error);
* for every slider: moving it one step with the keyboard changes what its widget shows (a round trip to the kernel).

A screenshot per notebook goes to ``$DECLIB_ARTIFACTS/browser/`` (default ``.ci-artifacts/browser``).

Without Chromium or Playwright these tests are skipped, unless ``DECLIB_BROWSER_TESTS=require`` (``.ci/run`` sets
it), which turns a missing browser into a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CHROMIUM = os.environ.get("DECLIB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = os.environ.get("DECLIB_BROWSER_TESTS") == "require"
ARTIFACTS = Path(os.environ.get("DECLIB_ARTIFACTS", ROOT / ".ci-artifacts")) / "browser"
RUN_TIMEOUT_S = 30 * 60  # one notebook, all cells (the slowest takes about 7 min in the fast profile)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]  # the machine's network is closed

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None


def _unavailable() -> str | None:
    if sync_playwright is None:
        return "the playwright package is not installed (pip install playwright)"
    if CHROMIUM is None:
        return "no Chromium found (Debian: apt-get install -y chromium; or set DECLIB_CHROMIUM to its path)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """JupyterLab settings for the run: every cell stays in the page (no windowing), no autosave, no pop-ups."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }
    for name, value in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on loopback serving a copy of the course; yields its base ``url`` and the copy's ``root``."""
    reason = _unavailable()
    if reason:
        (pytest.fail if REQUIRED else pytest.skip)(reason)
    root = tmp_path_factory.mktemp("course")
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "results", root / "results")  # notebooks 05 and 06 read the main job's tables
    home = tmp_path_factory.mktemp("jupyter")
    _write_settings(home / "settings")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    port = _free_port()
    log = open(home / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--allow-root",
         f"--ServerApp.root_dir={root}", "--IdentityProvider.token=", "--ServerApp.password=",
         "--ServerApp.disable_check_xsrf=True",  # loopback only, no token: lets the clean-up DELETE kernels
         f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status", timeout=2)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"JupyterLab did not start: {(home / 'lab.log').read_text()[-3000:]}")
            time.sleep(0.5)
    try:
        yield SimpleNamespace(url=url, root=root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _shut_down_kernels(url: str) -> None:
    """Free the memory of a finished notebook's kernel (clean-up, through the server's REST API)."""
    for kernel in json.load(urllib.request.urlopen(f"{url}/api/kernels", timeout=10)):
        request = urllib.request.Request(f"{url}/api/kernels/{kernel['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=30)


def _menu(page, top: str, item: str) -> None:
    """Click a menu bar entry, then one of its items, as a person would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$")).first.click()


def _wait_idle(page, timeout_s: float) -> None:
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=timeout_s * 1000)


PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show (other tabs stay in the page, hidden)

PROMPTS = """(sel) => [...document.querySelector(sel).querySelectorAll('.jp-Notebook .jp-CodeCell')]
    .map(c => (c.querySelector('.jp-InputArea-prompt') || {}).textContent || '')"""

WIDGET_STATE = """(sel) => {
  const panel = document.querySelector(sel);
  const outs = [...panel.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]')];
  return outs.map(o => ({rendered: !!o.querySelector('.jupyter-widgets, .widget-box, .widget-interact'),
                         text: o.textContent.slice(0, 300)}));
}"""


def _run_all(page, name: str) -> None:
    """Clear every output, run all cells through the menus, and wait until no cell is queued or running (Run All
    stops at a cell that raises, so that too ends the wait)."""
    _wait_idle(page, 120)
    _menu(page, "Edit", "Clear Outputs of All Cells")
    _menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    started = False
    while time.monotonic() < deadline:
        page.wait_for_timeout(1000)
        prompts = page.evaluate(PROMPTS, PANEL)
        busy = sum("*" in t for t in prompts)
        started = started or busy > 0 or all(re.search(r"\[\d+\]", t) for t in prompts)
        if started and not busy:
            _wait_idle(page, 60)
            return
    pytest.fail(f"{name}: still running after {RUN_TIMEOUT_S} s")


def _save_and_read(page, path: Path) -> dict:
    """Save the notebook through the UI (it is a throwaway copy) and read what the kernel produced."""
    before = path.stat().st_mtime_ns
    page.locator(PANEL).locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 60
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert path.stat().st_mtime_ns != before, f"{path.name}: saving from the browser did not write the file"
    return json.loads(path.read_text())


SHOWN = "o => [...o.querySelectorAll('img')].map(i => i.src).join('|') + '\\n' + o.innerText"  # a widget's picture


def _move_sliders(page, name: str) -> list[str]:
    """Move every slider of every interactive widget one step; return what did not redraw."""
    problems = []
    interacts = page.locator(PANEL).locator(".widget-interact")
    for i in range(interacts.count()):
        box = interacts.nth(i)
        output = box.locator(".widget-output")
        handles = box.locator(".noUi-handle")
        for j in range(handles.count()):
            box.scroll_into_view_if_needed()
            before = output.evaluate(SHOWN)
            readout = box.locator(".widget-readout").nth(j).text_content()
            handle = handles.nth(j)
            handle.focus()
            at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
            page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
            deadline = time.monotonic() + 60
            shown = before
            while (shown == before or not shown.strip()) and time.monotonic() < deadline:
                page.wait_for_timeout(250)
                shown = output.evaluate(SHOWN)
            after = box.locator(".widget-readout").nth(j).text_content()
            if shown == before or not shown.strip():
                problems.append(f"{name}: widget {i}, slider {j} ({readout} -> {after}): what it shows did not change")
            elif after == readout:
                problems.append(f"{name}: widget {i}, slider {j}: the readout stayed at {readout}")
            _wait_idle(page, 120)
    return problems


def _widget_cells(path: Path) -> int:
    """How many code cells call one of the notebook's ``declib.widgets`` functions (each shows one widget)."""
    sources = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    names = {n.strip() for s in sources for m in re.finditer(r"from declib\.widgets import ([^\n]+)", s)
             for n in m.group(1).split(",")}
    return sum(any(re.search(rf"\b{re.escape(n)}\(", s) for n in names) for s in sources)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_jupyterlab(path, lab, browser):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{lab.url}/lab/tree/notebooks/{path.name}?reset")  # a clean workspace: only this notebook
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=120_000)
        _run_all(page, path.name)
        ran = _save_and_read(page, lab.root / "notebooks" / path.name)
        code = [c for c in ran["cells"] if c["cell_type"] == "code"]
        errors = [f"cell {i}: {o['ename']}: {o['evalue']}" for i, c in enumerate(code) for o in c["outputs"]
                  if o["output_type"] == "error"]
        assert not errors, f"{path.name}: error output: {errors}"
        not_run = [i for i, c in enumerate(code) if c["execution_count"] is None]
        assert not not_run, f"{path.name}: code cells {not_run} did not run"
        widgets = page.evaluate(WIDGET_STATE, PANEL)
        broken = [w["text"] for w in widgets if not w["rendered"] or re.search(r"Loading widget|Error", w["text"])]
        assert not broken, f"{path.name}: widgets not rendered: {broken}"
        problems = _move_sliders(page, path.name)
        first = page.locator(PANEL).locator(".widget-interact").first
        if first.count():
            first.scroll_into_view_if_needed()
        assert not problems, "\n".join(problems)
        expected = _widget_cells(path)
        got = page.locator(PANEL).locator(".widget-interact").count()
        assert got == expected, f"{path.name}: {got} interactive widgets on the page, {expected} cells make one"
    finally:  # clean-up must not hide the failure that brought us here
        try:
            page.screenshot(path=str(ARTIFACTS / f"{path.stem}.png"))  # at the first widget, or where it stopped
        finally:
            page.close()
            _shut_down_kernels(lab.url)
