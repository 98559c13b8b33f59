#!/usr/bin/env python3
"""Set up and run the declib course with nothing but Python >= 3.10.

    python3 course.py lab     # create/reuse .venv, install the course, open the notebooks in JupyterLab
    python3 course.py test    # create/reuse .venv, install the course with its test tools, run every test

and, for teaching and publishing:

    python3 course.py slides  # a reveal.js deck per notebook in build/slides (--out DIR to choose)
    python3 course.py site    # the course website in build/site/html (Sphinx + MyST-NB; needs Node.js for KaTeX)
    python3 course.py links OWNER/NAME   # point every Colab/Binder link and install source at your fork

Each creates the virtual environment ``.venv`` next to this file (or reuse it) and install the project into it;
the install is skipped when ``pyproject.toml`` has not changed since the last one. Extra arguments go to
``jupyter lab`` or ``pytest`` respectively, e.g. ``python3 course.py test tests/test_metrics.py -x``.

Set ``DECLIB_VENV`` to use another folder for the environment. Uses only the standard library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("DECLIB_VENV", ROOT / ".venv"))
STAMP = VENV / ".declib-install-stamp"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list, **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def has_module(python: Path, module: str) -> bool:
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True).returncode == 0


def ensure_environment() -> Path:
    """Create or reuse the virtual environment and install the course into it (with its test tools)."""
    if sys.version_info < (3, 10):
        sys.exit(f"declib needs Python >= 3.10; this is {sys.version.split()[0]} ({sys.executable})")
    python = venv_python()
    if not python.exists():
        run([sys.executable, "-m", "venv", VENV])
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted and has_module(python, "declib"):
        return python
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    if not has_module(python, "torch") and sys.platform.startswith("linux") and shutil.which("nvidia-smi") is None:
        # Without a GPU, PyPI's Linux torch wheel would drag in several GB of CUDA libraries: take the CPU build.
        try:
            run(pip + ["torch", "--index-url", "https://download.pytorch.org/whl/cpu"])
        except subprocess.CalledProcessError:
            print("(the CPU-only torch index was not reachable; installing torch from PyPI instead)", flush=True)
    run(pip + ["-e", f"{ROOT}[dev]"])
    STAMP.write_text(wanted + "\n")
    return python


def relink(repository: str, root: Path = ROOT) -> list[Path]:
    """Point the launch links (README, notebooks, declib/launch.py, pyproject.toml) at ``repository`` (OWNER/NAME).

    Only addresses of the current repository change: github.com/OLD, mybinder.org's gh/OLD/ and Colab's github/OLD/.
    """
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise SystemExit(f"links: expected OWNER/NAME, e.g. my-university/declib, got {repository!r}")
    launch = root / "declib" / "launch.py"
    old = re.search(r'^REPOSITORY = "([^"]+)"', launch.read_text(), re.M).group(1)
    pattern = re.compile(r"(github\.com/|/gh/|/github/)" + re.escape(old) + r"(?=[/.\"?)\s]|$)")
    changed = []
    for path in [root / "README.md", root / "pyproject.toml", launch, *sorted((root / "notebooks").glob("*.ipynb"))]:
        text = path.read_text(encoding="utf-8")
        new = pattern.sub(lambda m: m.group(1) + repository, text)
        if path == launch:
            new = new.replace(f'REPOSITORY = "{old}"', f'REPOSITORY = "{repository}"')
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test", "setup", "slides", "site", "links"):
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    if command == "links":
        if len(extra) != 1:
            print("usage: python3 course.py links OWNER/NAME")
            return 2
        for path in relink(extra[0]):
            print(f"updated {path.relative_to(ROOT)}")
        return 0
    python = ensure_environment()
    if command == "setup":
        return 0
    if command in ("slides", "site"):
        return subprocess.call([str(python), "-m", "declib.publish", command, *extra], cwd=ROOT)
    if command == "lab":
        return subprocess.call([str(python), "-m", "jupyter", "lab", str(ROOT / "notebooks"), *extra], cwd=ROOT)
    return subprocess.call([str(python), "-m", "pytest", *extra], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
