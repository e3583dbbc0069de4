"""The documentation's generated pages, as plain text: guides, API pages, examples gallery.

``mkdocs build`` runs ``docs/gen_pages.py`` (the mkdocs-gen-files plugin), which writes
what :func:`pages` returns into the site's virtual docs folder. Nothing here imports
mkdocs, jax or jbpnn, so ``tests/test_docs.py`` checks the same page list without
building the site. Everything is derived from the repository at build time, so the
site cannot drift from it:

- the guides are the README's ``##`` sections, one page each, split at build time;
- the index is ``docs/index.md`` with the README's first lines (its title down to the
  first ``##`` section: what jbpnn is, the two commands) put where it says
  ``{{ readme_intro }}``;
- an API page per public module, ``jbpnn/*.py`` and ``jbpnn/cli/*.py`` (names without a
  leading underscore), rendered from the docstrings by mkdocstrings;
- an examples page per ``experiments/*.py`` script: its docstring and its source (the
  scripts are not run here; the test suite runs their ``--quick`` modes).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTRO_MARKER = "{{ readme_intro }}"

_FENCE = re.compile(r"^\s*(```|~~~)")
_ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def slug(title: str) -> str:
    """A page name from a heading: ``"The command line"`` -> ``"the-command-line"``."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def readme_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """``(intro, [(title, body), ...])``: the README split at its ``##`` headings.

    Headings inside fenced code blocks (a ``# comment`` in a python block) are not
    headings. ``intro`` is what comes before the first ``##`` heading, the ``# jbpnn``
    title line excluded; each ``body`` is the section's text after its heading line.
    """
    intro: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and line.startswith("## "):
            sections.append((line[3:].strip(), []))
            continue
        if sections:
            sections[-1][1].append(line)
        elif not (not in_fence and re.match(r"# \S", line)):
            intro.append(line)
    return "\n".join(intro).strip() + "\n", [
        (title, "\n".join(body).strip() + "\n") for title, body in sections
    ]


def _promote_headings(body: str) -> str:
    """``### x`` -> ``## x`` outside code fences: a section's subsections on its own page."""
    out, in_fence = [], False
    for line in body.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if not in_fence and re.match(r"#{3,6} ", line):
            line = line[1:]
        out.append(line)
    return "\n".join(out) + "\n"


def _fix_links(body: str, depth: int) -> str:
    """README-relative links (``docs/X.md``, ``experiments/x.py``, ``CHANGELOG.md``) made
    site-relative."""
    up = "../" * depth

    def repl(m: re.Match) -> str:
        target = m.group(1)
        if target.startswith("docs/"):
            target = up + target[len("docs/") :]
        elif re.fullmatch(r"experiments/[a-z0-9_]+\.py", target):
            target = f"{up}examples/{Path(target).stem}.md"
        elif target == "CHANGELOG.md":
            target = f"{up}changelog.md"
        return f"]({target})"

    return re.sub(r"\]\(((?:docs|experiments)/[^)#\s]+|CHANGELOG\.md)\)", repl, body)


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces -> ``-``."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def _anchor_pages(sections: list[tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """``{README anchor: (guide page, anchor on it)}`` for every ``##``-``######`` heading:
    a ``##`` heading is a page of its own (no anchor), a deeper one an anchor on its page."""
    where: dict[str, tuple[str, str]] = {}
    for title, body in sections:
        page = f"{slug(title)}.md"
        where[github_anchor(title)] = (page, "")
        in_fence = False
        for line in body.splitlines():
            if _FENCE.match(line):
                in_fence = not in_fence
            m = None if in_fence else re.match(r"#{3,6} (.+)", line)
            if m:
                where.setdefault(github_anchor(m.group(1)), (page, github_anchor(m.group(1))))
    return where


def _fix_anchors(body: str, where: dict[str, tuple[str, str]], page: str, prefix: str) -> str:
    """README-internal links ``(#anchor)`` pointed at the guide page that holds the heading
    (``prefix`` is the way from the current page to the guides folder)."""

    def repl(m: re.Match) -> str:
        anchor = m.group(1)
        if anchor not in where:
            return m.group(0)  # not a README heading: left for the strict build to judge
        target, inner = where[anchor]
        if target == page:
            return f"](#{inner})" if inner else m.group(0)
        return f"]({prefix}{target}{'#' + inner if inner else ''})"

    return re.sub(r"\]\(#([^)\s]+)\)", repl, body)


def public_modules(root: Path = ROOT) -> list[str]:
    """Every public module: ``jbpnn``, ``jbpnn.<name>``, ``jbpnn.cli`` and ``jbpnn.cli.<name>``."""
    names = ["jbpnn"]
    names += [f"jbpnn.{p.stem}" for p in sorted((root / "jbpnn").glob("*.py")) if p.stem[0] != "_"]
    if (root / "jbpnn" / "cli" / "__init__.py").exists():
        names.append("jbpnn.cli")
        names += [
            f"jbpnn.cli.{p.stem}"
            for p in sorted((root / "jbpnn" / "cli").glob("*.py"))
            if p.stem[0] != "_"
        ]
    return names


def experiment_scripts(root: Path = ROOT) -> list[Path]:
    """The scripts of ``experiments/`` (helpers whose names start with ``_`` excluded)."""
    return [p for p in sorted((root / "experiments").glob("*.py")) if p.stem[0] != "_"]


def _summary(docstring: str | None) -> str:
    return (docstring or "").strip().split("\n\n")[0].replace("\n", " ")


def _module_docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))


def _plain_roles(text: str) -> str:
    """``:func:`jbpnn.x.y``` -> an API cross-reference; other roles -> inline code."""

    def repl(m: re.Match) -> str:
        target = m.group(1).removesuffix("()")
        if target.startswith("jbpnn.") or target == "jbpnn":
            return f"[`{target}`][{target}]"
        return f"`{target}`"

    return _ROLE.sub(repl, text)


def _api_page(module: str, root: Path) -> str:
    if module != "jbpnn":
        return f"# `{module}`\n\n::: {module}\n"
    # The package re-exports the public names; their documentation is on the page of the
    # module that defines them, so this page lists them instead of rendering them twice.
    init = ast.parse((root / "jbpnn" / "__init__.py").read_text(encoding="utf-8"))
    where: dict[str, str] = {}
    for node in init.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jbpnn"):
            for alias in node.names:
                where[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    exported = where
    for node in init.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
            and isinstance(node.value, (ast.List, ast.Tuple))
        ):
            names = [e.value for e in node.value.elts if isinstance(e, ast.Constant)]
            exported = {n: where[n] for n in names if n in where}

    def row(name: str, target: str) -> str:
        module = target.rsplit(".", 1)[0]
        path = root.joinpath(*module.split("."))
        if path.with_suffix(".py").exists() or (path / "__init__.py").exists():
            return f"| [`jbpnn.{name}`][{target}] | [`{module}`][{module}] |"
        return f"| `jbpnn.{name}` | `{module}` (not in this checkout) |"

    rows = "\n".join(
        row(name, target) for name, target in sorted(exported.items(), key=lambda kv: kv[0].lower())
    )
    return (
        "# `jbpnn`\n\n"
        "::: jbpnn\n"
        "    options:\n"
        "      members: false\n"
        "      show_root_heading: false\n\n"
        "## Public names\n\n"
        "Every name `import jbpnn` re-exports (`jbpnn.__all__`), linked to its "
        "documentation in the module that defines it.\n\n"
        "| name | defined in |\n|---|---|\n" + rows + "\n"
    )


def _example_page(path: Path, root: Path) -> str:
    source = path.read_text(encoding="utf-8")
    doc = _module_docstring(path) or "(This script has no docstring.)"
    rel = path.relative_to(root).as_posix()
    fence = "````" if "```" in source else "```"
    return (
        f"# `{rel}`\n\n"
        f"Run it from the repository root: `python {rel}` (`--help` lists its options).\n\n"
        f"{_plain_roles(doc)}\n\n"
        f"## Source\n\n"
        f'{fence}python title="{rel}"\n{source.rstrip()}\n{fence}\n'
    )


def pages(root: Path = ROOT) -> dict[str, str]:
    """Every generated page: ``{path inside the docs folder: Markdown text}``.

    Also ``SUMMARY.md``, the site's navigation (read by mkdocs-literate-nav).
    """
    intro, sections = readme_sections((root / "README.md").read_text(encoding="utf-8"))
    out: dict[str, str] = {}

    index = (root / "docs" / "index.md").read_text(encoding="utf-8")
    if INTRO_MARKER not in index:
        raise ValueError(f"docs/index.md must contain {INTRO_MARKER} (the README's first lines)")
    where = _anchor_pages(sections)
    intro = _fix_anchors(intro, where, "", "guides/")
    out["index.md"] = index.replace(INTRO_MARKER, _fix_links(intro, 0).rstrip())

    nav = ["* [Home](index.md)", "* Guides (the README's sections)"]
    for title, body in sections:
        name = f"guides/{slug(title)}.md"
        body = _fix_anchors(body, where, f"{slug(title)}.md", "")
        out[name] = f"# {title}\n\n" + _fix_links(_promote_headings(body), 1)
        nav.append(f"    * [{title}]({name})")

    nav.append("* [The article](ARTICLE.md)")
    nav.append("* API reference")
    for module in public_modules(root):
        name = f"api/{module}.md"
        out[name] = _api_page(module, root)
        nav.append(f"    * [{module}]({name})")

    nav.append("* Examples (experiments/)")
    gallery = [
        "# Examples\n",
        "The scripts of `experiments/`, one page each: what the script shows, how long it "
        "takes and what it writes (its docstring), then its source. They are not run when "
        "the site is built; the test suite runs their `--quick` modes.\n",
        "| script | what it shows |\n|---|---|",
    ]
    nav.append("    * [Overview](examples/index.md)")
    for path in experiment_scripts(root):
        name = f"examples/{path.stem}.md"
        out[name] = _example_page(path, root)
        summary = _plain_roles(_summary(_module_docstring(path))).replace("|", "\\|")
        gallery.append(f"| [`{path.name}`]({path.stem}.md) | {summary} |")
        nav.append(f"    * [{path.name}]({name})")
    out["examples/index.md"] = "\n".join(gallery) + "\n"

    nav.append("* [Changelog](changelog.md)")
    out["changelog.md"] = _fix_links((root / "CHANGELOG.md").read_text(encoding="utf-8"), 0)
    out["SUMMARY.md"] = "\n".join(nav) + "\n"
    return out
