"""Portability and CI: what pyproject promises, what .ci/run tests, APIs outside JAX's promise,
and experiments/gpu_check.py failing on a real failure."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# The oldest Python each jax minor release installs on (jaxlib wheels): jax 0.10 needs
# Python 3.11, jax 0.11+ need 3.12.
JAX_MIN_PYTHON = {(0, 10): (3, 11), (0, 11): (3, 12)}


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def _floor(spec: str) -> tuple[int, ...]:
    m = re.search(r">=\s*(\d+(?:\.\d+)*)", spec)
    assert m, spec
    return tuple(int(p) for p in m.group(1).split("."))


def test_requires_python_is_what_the_oldest_supported_jax_installs_on():
    project = _pyproject()["project"]
    jax_dep = next(d for d in project["dependencies"] if re.match(r"jax\s*[><=]", d))
    jax_floor = _floor(jax_dep)[:2]
    python_floor = _floor(project["requires-python"])[:2]
    assert jax_floor in JAX_MIN_PYTHON, f"{jax_dep}: not a jax this project is tested with"
    assert python_floor == JAX_MIN_PYTHON[jax_floor], (project["requires-python"], jax_dep)


def test_ruff_target_is_in_step_with_requires_python():
    data = _pyproject()
    major, minor = _floor(data["project"]["requires-python"])[:2]
    assert data["tool"]["ruff"]["target-version"] == f"py{major}{minor}"


def test_ci_also_runs_the_suite_on_python_312_with_jax_0_11_2():
    script = ROOT / ".ci" / "run"
    assert script.is_file()
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert re.search(r"0\.11\.2", text) and re.search(r"3\.12", text)
    assert "venv" in text and re.search(r"jax==\"?\$?\{?\w*\}?", text)
    # the suite runs twice: with the machine's Python and in the 3.12 venv
    assert len(re.findall(r"-m pytest", text)) >= 2, text


# APIs outside JAX's compatibility promise: jax.core (Tracer & co), jax._src, and the
# dead jax.experimental.shard_map fallback (jax.shard_map is public since jax 0.7).
_FORBIDDEN = ("jax.core", "jax._src", "jax.experimental.shard_map")


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def test_no_jax_apis_outside_the_compatibility_promise():
    found = []
    for path in sorted([*(ROOT / "jbpnn").rglob("*.py"), *(ROOT / "experiments").glob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Attribute):
                names = [_dotted(node) or ""]
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in _FORBIDDEN):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
    assert found == []


def test_gpu_check_fails_when_train_many_fails(monkeypatch):
    """A train_many that raises (TypeError included) must fail gpu_check, not skip its row."""
    monkeypatch.syspath_prepend(str(ROOT / "experiments"))
    import bench
    import gpu_check

    import jbpnn.many

    def broken(*args, **kwargs):
        raise TypeError("train_many() got an unexpected keyword argument 'x'")

    monkeypatch.setattr(jbpnn.many, "train_many", broken)
    with pytest.raises(TypeError, match="unexpected keyword"):
        row = gpu_check.train_many_row(bench.QUICK)
        print(row)  # reached only when the failure was swallowed
