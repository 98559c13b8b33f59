"""environment.yml (conda, Binder) and pyproject.toml (pip) must name the same dependencies."""

import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10: tomli, declared in the dev extras for exactly this
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PIP = {"pytorch": "torch"}  # conda-forge names that differ from PyPI's
CONDA_ONLY = {"python", "pip"}


def split(requirement: str) -> tuple[str, str]:
    requirement = requirement.split(";")[0]  # an environment marker (pip only) does not change the package
    m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert m, f"cannot parse requirement {requirement!r}"
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return dict(split(r) for r in reqs)


def conda_requirements() -> dict[str, str]:
    deps, in_deps = {}, False
    for line in (ROOT / "environment.yml").read_text().splitlines():
        if re.match(r"^dependencies:\s*$", line):
            in_deps = True
            continue
        if in_deps and re.match(r"^\S", line):
            break
        # conda entries, and the nested pip list's (packages conda-forge may lack), but not the course itself
        m = re.match(r"^  (?:    )?- (\S[^#]*?)\s*$", line)
        if in_deps and m and not m.group(1).endswith(":") and not m.group(1).startswith("-e "):
            name, spec = split(m.group(1))
            if name not in CONDA_ONLY:
                deps[CONDA_TO_PIP.get(name, name)] = spec
    return deps


def test_same_packages_and_versions():
    assert conda_requirements() == pip_requirements()


def test_python_floor_is_the_same():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert f"python{project['requires-python']}" in (ROOT / "environment.yml").read_text()


def test_the_check_can_fail(tmp_path, monkeypatch):
    """Drift is detected: drop one dependency from a copy of environment.yml."""
    (tmp_path / "environment.yml").write_text((ROOT / "environment.yml").read_text().replace("  - tqdm>=4.64\n", ""))
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert "tqdm" not in conda_requirements() and "tqdm" in pip_requirements()


def test_tomli_is_declared_where_this_file_needs_it():
    """This file imports tomli on Python 3.10, so the dev extras must install it there."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    tomli = [r for r in dev if r.startswith("tomli")]
    assert tomli and "python_version < '3.11'" in tomli[0]
