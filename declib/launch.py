"""One-click launch: the Colab and Binder links of each notebook, and the lines that open every notebook's first code
cell so that it also runs where the course is not installed (Colab, or a bare Python).

The repository's address lives here once (``REPOSITORY``, mirrored by ``[project.urls]`` in ``pyproject.toml``); a
fork changes it everywhere with ``python3 course.py links OWNER/NAME``. Tests check that the README, every notebook's
badges and its first cell agree with it.
"""

from __future__ import annotations

__all__ = ["REPOSITORY", "BRANCH", "colab_url", "binder_url", "badges_markdown", "bootstrap_code"]

#: owner/name of the course's GitHub repository (``python3 course.py links OWNER/NAME`` rewrites it)
REPOSITORY = "declib/declib"
#: the branch the launch links open
BRANCH = "main"

COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"


def _check_name(notebook: str) -> None:
    if not isinstance(notebook, str) or not notebook.endswith(".ipynb") or "/" in notebook:
        raise ValueError(f"notebook must be a notebook's file name such as '05_dec.ipynb', got {notebook!r}")


def colab_url(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """Colab opens a notebook straight from GitHub; its first cell then installs the course (see
    :func:`bootstrap_code`)."""
    _check_name(notebook)
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/notebooks/{notebook}"


def binder_url(notebook: str | None = None, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """Binder builds ``environment.yml`` and opens JupyterLab, on ``notebook`` when one is given."""
    base = f"https://mybinder.org/v2/gh/{repository}/{branch}"
    if notebook is None:
        return base + "?urlpath=lab/tree/notebooks"
    _check_name(notebook)
    return f"{base}?urlpath=lab/tree/notebooks/{notebook}"


def badges_markdown(notebook: str, repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """The two launch badges, as one line of Markdown, for the top of a notebook."""
    return (f"[![Open in Colab]({COLAB_BADGE})]({colab_url(notebook, repository, branch)}) "
            f"[![Launch on Binder]({BINDER_BADGE})]({binder_url(notebook, repository, branch)})")


def bootstrap_code(repository: str = REPOSITORY, branch: str = BRANCH) -> str:
    """The lines that open every notebook's first code cell.

    Where ``declib`` is importable (a local install, Binder) they do nothing and print nothing. Elsewhere (Colab, a
    bare Python) they say what they are about to do, install the course with pip, from ``$DECLIB_INSTALL_SOURCE``
    when set, else from ``branch`` of the repository, then find MNIST (``$DECLIB_DATA``, the user cache, else a
    checked download) and say what they did.
    """
    return (
        "# Colab, or a Python without the course: install declib and find MNIST (nothing happens where they are)\n"
        "import importlib, importlib.util, os, subprocess, sys\n"
        'if importlib.util.find_spec("declib") is None:\n'
        f'    source = os.environ.get("DECLIB_INSTALL_SOURCE", "git+https://github.com/{repository}.git@{branch}")\n'
        '    print(f"installing the course package declib from {source} (a minute or two) ...", flush=True)\n'
        '    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)\n'
        "    importlib.invalidate_caches()\n"
        "    from declib.data import prepare_mnist\n"
        '    print(f"installed declib\\n{prepare_mnist()}")\n'
    )
