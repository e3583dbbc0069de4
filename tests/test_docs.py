"""The documentation site's sources: every module, script and README section has its page.

The pages are computed by ``docs/docs_pages.py`` (what ``mkdocs build`` writes through
``docs/gen_pages.py``), which needs neither mkdocs nor jax, so these checks are cheap.
Building the site itself (``mkdocs build --strict``, about 10 s) is ``.ci/run``'s job;
the last test builds it too when the ``docs`` extra is installed, and skips otherwise.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_docs_pages():
    spec = importlib.util.spec_from_file_location("docs_pages", ROOT / "docs" / "docs_pages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


docs_pages = _load_docs_pages()


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return docs_pages.pages(ROOT)


def _modules_on_disk() -> list[str]:
    found = [f"jbpnn.{p.stem}" for p in (ROOT / "jbpnn").glob("*.py") if not p.stem.startswith("_")]
    found += [
        f"jbpnn.cli.{p.stem}"
        for p in (ROOT / "jbpnn" / "cli").glob("*.py")
        if not p.stem.startswith("_")
    ]
    return sorted(found + ["jbpnn", "jbpnn.cli"])


def test_every_public_module_has_an_api_page(pages):
    modules = _modules_on_disk()
    assert {"jbpnn", "jbpnn.training", "jbpnn.network", "jbpnn.cli"} <= set(modules)
    for module in modules:
        page = pages.get(f"api/{module}.md")
        assert page is not None, f"{module} has no API page"
        assert f"::: {module}" in page
        assert f"(api/{module}.md)" in pages["SUMMARY.md"], f"{module} is not in the navigation"


def test_the_package_page_links_every_exported_name(pages):
    tree = ast.parse((ROOT / "jbpnn" / "__init__.py").read_text())
    exported = next(
        [e.value for e in node.value.elts]
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    page = pages["api/jbpnn.md"]
    for name in exported:
        assert f"[`jbpnn.{name}`][jbpnn." in page, name


def test_every_experiment_script_has_a_gallery_page(pages):
    scripts = [p for p in sorted((ROOT / "experiments").glob("*.py")) if p.stem[0] != "_"]
    assert len(scripts) >= 10
    for script in scripts:
        page = pages.get(f"examples/{script.stem}.md")
        assert page is not None, f"{script.name} has no gallery page"
        source = script.read_text()
        assert source.rstrip() in page, f"{script.name}'s page does not hold its source"
        first = ast.get_docstring(ast.parse(source)).split("\n")[0]
        assert first.split("``")[0] in page
        assert f"({script.stem}.md)" in pages["examples/index.md"]
        assert f"(examples/{script.stem}.md)" in pages["SUMMARY.md"]


def test_every_readme_section_is_a_guide_with_the_readmes_text(pages):
    readme = (ROOT / "README.md").read_text()
    titles = [
        line[3:].strip()
        for line in re.sub(r"(?ms)^```.*?^```", "", readme).splitlines()
        if line.startswith("## ")
    ]
    assert "The command line" in titles and "Training" in titles
    guides = sorted(name for name in pages if name.startswith("guides/"))
    assert len(guides) == len(titles)
    for title in titles:
        page = pages[f"guides/{docs_pages.slug(title)}.md"]
        assert page.startswith(f"# {title}\n")
    # Each guide is the README's text (only its subheadings move up a level), so the
    # two cannot drift apart: every python block of the README is in a guide verbatim.
    blocks = re.findall(r"(?ms)^```python\n.*?^```", readme)
    assert blocks
    text = "\n".join(pages[name] for name in guides)
    for block in blocks:
        assert block in text


def test_the_index_has_the_readmes_first_lines(pages):
    readme = (ROOT / "README.md").read_text()
    commands = re.search(r"(?ms)^```bash\n(.*?)^```", readme).group(1)
    assert "pip install . && jbpnn train" in commands
    assert commands in pages["index.md"]
    assert docs_pages.INTRO_MARKER not in pages["index.md"]
    assert "Why MkDocs" in pages["index.md"]


def test_missing_intro_marker_is_an_error(tmp_path):
    for name in ("README.md", "CHANGELOG.md"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    for folder in ("docs", "jbpnn", "experiments"):
        (tmp_path / folder).mkdir()
    (tmp_path / "docs" / "index.md").write_text("# jbpnn\n")
    with pytest.raises(ValueError, match="readme_intro"):
        docs_pages.pages(tmp_path)


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com" in text
    headings = re.findall(r"(?m)^## (.+)$", text)
    assert headings[0] == "[Unreleased]"
    for milestone in ("Full-batch training (issue 18)", "Settings declared once (issue 17)"):
        assert any(h.startswith(milestone) for h in headings), milestone
    assert any(h.startswith("The core") for h in headings)
    kinds = set(re.findall(r"(?m)^### (.+)$", text))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}


def test_the_build_is_wired_into_pyproject_ci_and_readme():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    names = {re.split(r"[<>=\[ ]", spec)[0] for spec in extras["docs"]}
    assert {"mkdocs", "mkdocstrings-python", "mkdocs-gen-files", "mkdocs-literate-nav"} <= names
    assert all(re.search(r">=", spec) for spec in extras["docs"])
    config = (ROOT / "mkdocs.yml").read_text()
    assert "docs/gen_pages.py" in config and re.search(r"(?m)^strict: true$", config)
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".[docs]" in ci and "mkdocs build --strict" in ci
    head = (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "(docs/index.md)" in head


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("mkdocstrings") is None,
    reason='the docs extra is not installed (pip install -e ".[docs]"); .ci/run builds the site',
)
def test_the_site_builds_in_strict_mode(tmp_path):
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", DISABLE_MKDOCS_2_WARNING="true")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("index.html", "api/jbpnn.training/index.html", "examples/xor/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_readme_internal_links_point_at_the_guide_that_holds_the_heading():
    # a README section links "(#performance)"; on the site each section is its own page
    sections = [
        ("Training", "See [Performance](#performance) and [below](#stop-rules).\n### Stop rules\n"),
        ("Performance", "Back to [training](#training) and [its rules](#stop-rules).\n"),
    ]
    where = docs_pages._anchor_pages(sections)
    first = docs_pages._fix_anchors(sections[0][1], where, "training.md", "")
    second = docs_pages._fix_anchors(sections[1][1], where, "performance.md", "")
    assert "[Performance](performance.md)" in first and "[below](#stop-rules)" in first
    assert "[training](training.md)" in second and "(training.md#stop-rules)" in second
    assert docs_pages._fix_anchors("[x](#nowhere)", where, "training.md", "") == "[x](#nowhere)"
