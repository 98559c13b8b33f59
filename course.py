#!/usr/bin/env python3
"""Set up and run the declib course with nothing but Python >= 3.10.

    python3 course.py lab     # create/reuse .venv, install the course, open the notebooks in JupyterLab
    python3 course.py test    # create/reuse .venv, install the course with its test tools, run every test

Both create the virtual environment ``.venv`` next to this file (or reuse it) and install the project into it;
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


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test", "setup"):
        print(__doc__)
        return 2
    command, extra = argv[0], argv[1:]
    python = ensure_environment()
    if command == "setup":
        return 0
    if command == "lab":
        return subprocess.call([str(python), "-m", "jupyter", "lab", str(ROOT / "notebooks"), *extra], cwd=ROOT)
    return subprocess.call([str(python), "-m", "pytest", *extra], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
