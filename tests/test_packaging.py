"""The distributions hold what they should: every file of the package in the wheel, and
in the source distribution what its test suite, experiments and docs need.

The suite itself runs on the checkout (``python -m pytest`` imports ``./jbpnn``), so a
file the wheel leaves out (a new subpackage, a data file) would pass every other test:
these tests build both distributions from a copy of the tree with setuptools' own build
hooks (no build isolation: nothing is downloaded) and read their file lists.
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import jbpnn

ROOT = Path(__file__).resolve().parents[1]
# what the build of a clean clone sees: not the caches, builds and results of a checkout
_LEFT_OUT = ("__pycache__", ".git", "build", "dist", "results", ".pytest_cache", ".ruff_cache")


def _files(root: Path) -> set[str]:
    """The files under ``root``, as relative POSIX paths, caches left out."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and not any(part in _LEFT_OUT or part.endswith(".egg-info") for part in p.parts)
        and p.suffix not in (".pyc", ".pyo")
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """A wheel and an sdist built from a copy of the tree (the checkout stays untouched)."""
    pytest.importorskip("setuptools", reason="the test extra installs setuptools")
    work = tmp_path_factory.mktemp("dist")
    src = work / "src"
    ignore = shutil.ignore_patterns(*_LEFT_OUT, "*.egg-info", "*.pyc")
    shutil.copytree(ROOT, src, ignore=ignore)
    out = work / "out"
    out.mkdir()
    script = (
        "import sys; from setuptools import build_meta as b; out = sys.argv[1]; "  # the hooks
        "w = b.build_wheel(out); s = b.build_sdist(out); print('BUILT', w, s)"  # reset argv
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(out)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # setuptools logs to stdout too: the names are on the last line
    _, wheel, sdist = run.stdout.strip().splitlines()[-1].split()
    return {"src": src, "wheel": out / wheel, "sdist": out / sdist}


def test_the_wheel_holds_every_file_of_the_package(built):
    with zipfile.ZipFile(built["wheel"]) as z:
        names = set(z.namelist())
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(z.read(info))
    in_wheel = {n for n in names if n.startswith("jbpnn/")}
    package = {f"jbpnn/{name}" for name in _files(built["src"] / "jbpnn")}
    assert package - in_wheel == set(), "left out of the wheel"
    assert in_wheel - package == set(), "in the wheel but not in the package"
    assert {"jbpnn/py.typed", "jbpnn/data/digits.npz", "jbpnn/cli/__init__.py"} <= in_wheel
    assert not any(n.startswith(("tests/", "experiments/", "docs/")) for n in names)
    # one version, jbpnn.__version__ (pyproject reads it); the licences named and shipped
    assert metadata["Version"] == jbpnn.__version__
    assert metadata["License-Expression"] == "MIT AND CC-BY-4.0"
    licences = {n.split("/licenses/", 1)[1] for n in names if "/licenses/" in n}
    assert licences == {"LICENSE", "jbpnn/data/DIGITS_LICENSE.txt"}


def test_the_sdist_holds_what_its_tests_experiments_and_docs_need(built):
    with tarfile.open(built["sdist"]) as t:
        top = Path(t.getnames()[0]).parts[0]
        names = {Path(n).relative_to(top).as_posix() for n in t.getnames() if n != top}
    wanted = {
        "tests/conftest.py",
        "experiments/bench.py",
        "docs/index.md",
        "CHANGELOG.md",
        "mkdocs.yml",
        "README.md",
        "LICENSE",
        "jbpnn/data/digits.npz",
    }
    assert wanted - names == set()
    source = _files(built["src"])
    for folder in ("jbpnn/", "tests/", "experiments/", "docs/"):
        missing = {n for n in source if n.startswith(folder)} - names
        assert missing == set(), f"left out of the sdist: {sorted(missing)}"
    assert not any("__pycache__" in n or n.startswith("results/") for n in names)
