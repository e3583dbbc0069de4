"""A griffe extension: jbpnn's docstring dialect, read by mkdocstrings as Markdown.

jbpnn's docstrings use Google-style sections (``Args:``, ``Returns:``, ``Raises:``) with
reStructuredText inline markup: ````code```` (already code in Markdown) and roles such as
``:func:`train``` or ``:class:`~jbpnn.params.MLP```. Before mkdocstrings renders a
docstring, each role becomes a cross-reference to the object it names, resolved the way
Python resolves the name where the docstring is written: the object itself (a method of
a class), then its parents up to the module, then the ``jbpnn`` package. A role naming
something outside jbpnn (``jax.vmap``, ``ValueError``) becomes inline code. A jbpnn name
that resolves to nothing is left as a cross-reference, which mkdocs-autorefs reports,
so that ``mkdocs build --strict`` fails on a broken reference; a name no scope holds
is looked up in every jbpnn module, as Sphinx does, and linked where exactly one
defines it. References into the modules listed as ``optional`` (work in progress that
may not exist yet) become inline code while the module is absent. RST's literal-block
marker (``Example::``) becomes ``Example:``.

One more habit of the docstrings: several names documented together in an ``Args:``
or ``Attributes:`` item, their list running over lines (``tol, min_weight_change,`` /
``loss_tol, lr_factor: the stop rules ...``). Griffe reads an item as one line
``name: description``; the name lines are joined into one so that the item renders
as one row named ``tol, min_weight_change, ..., lr_factor``.
"""

from __future__ import annotations

import builtins
import re
from typing import Any

import griffe

_ROLE = re.compile(r":(func|class|meth|mod|attr|data|exc|obj):`(~?)([^`<>]+)`")
_LITERAL = re.compile(r"(?m)(\S)::$")
_BARE_LITERAL = re.compile(r"(?m)^[ \t]*::[ \t]*$\n?")
# Names outside jbpnn that the docstrings refer to: rendered as code, not linked (the
# site is built offline, with no other project's object inventory).
_EXTERNAL = set(
    """jax jnp lax np numpy optax orbax sklearn scipy torch matplotlib plt pandas pd os
    pathlib typing collections functools itertools math json argparse tempfile sys re
    dataclasses contextlib time warnings logging shutil subprocess""".split()
)


def _lookup(scope: griffe.Object | griffe.Alias, dotted: str) -> griffe.Object | None:
    try:
        found = scope.get_member(dotted)
    except (KeyError, ValueError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None
    try:
        return found.final_target if isinstance(found, griffe.Alias) else found
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return None


_NAMED_SECTIONS = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Attributes|Other Parameters|Keyword Args"
    r"|Keyword Arguments):\s*$"
)


def _join_name_lists(text: str) -> str:
    """Join the lines of a multi-line ``a, b,`` / ``c: description`` item into one."""
    lines = text.split("\n")
    out: list[str] = []
    section_indent: int | None = None
    item_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        m = _NAMED_SECTIONS.match(line)
        if m:
            section_indent, item_indent = len(m.group(1)), None
            out.append(line)
            i += 1
            continue
        if section_indent is not None and stripped and indent <= section_indent:
            section_indent = item_indent = None  # the section ended
        if section_indent is not None and stripped and item_indent is None:
            item_indent = indent
        if (
            item_indent is not None
            and indent == item_indent
            and stripped.endswith(",")
            and ":" not in stripped
        ):
            joined = line.rstrip()
            while joined.endswith(",") and i + 1 < len(lines) and lines[i + 1].strip():
                i += 1
                joined += " " + lines[i].strip()
            out.append(joined)
            i += 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class JbpnnDocstrings(griffe.Extension):
    """Read jbpnn's docstring dialect as Markdown (see the module docstring)."""

    def __init__(self, optional: list[str] | None = None) -> None:
        super().__init__()
        self.optional = list(optional or [])
        self._unique: dict[str, str | None] | None = None
        self._done: set[str] = set()

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        if pkg.path not in self._done:
            self._done.add(pkg.path)
            self._rewrite(pkg, loader, seen=set())

    # griffe 1.x calls this hook; griffe 2 renamed it on_package.
    on_package_loaded = on_package

    def _rewrite(self, obj: griffe.Object, loader: griffe.GriffeLoader, seen: set[str]) -> None:
        if obj.path in seen:
            return
        seen.add(obj.path)
        if obj.docstring is not None:
            obj.docstring.value = self._convert(obj, loader, obj.docstring.value)
        for member in obj.members.values():
            if not member.is_alias:
                self._rewrite(member, loader, seen)

    def _resolve(self, obj: griffe.Object, loader: griffe.GriffeLoader, target: str) -> str | None:
        if target.split(".")[0] == "jbpnn":
            try:
                found = loader.modules_collection.get_member(target)
            except (KeyError, ValueError):
                return None
            if isinstance(found, griffe.Alias):
                try:
                    found = found.final_target
                except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                    return None
            return found.path
        scope: griffe.Object | None = obj
        while scope is not None:
            found = _lookup(scope, target)
            if found is not None:
                return found.path
            scope = scope.parent
        found = _lookup(loader.modules_collection["jbpnn"], target)
        if found is not None:
            return found.path
        return self._unique_names(loader).get(target)

    def _unique_names(self, loader: griffe.GriffeLoader) -> dict[str, str | None]:
        """``{name: path}`` of the public names defined in exactly one jbpnn module."""
        if self._unique is None:
            seen: dict[str, set[str]] = {}

            def walk(obj: griffe.Object) -> None:
                for name, member in obj.members.items():
                    if member.is_alias or name.startswith("_"):
                        continue
                    if member.is_module:
                        walk(member)
                    elif obj.is_module:
                        seen.setdefault(name, set()).add(member.path)
                        if member.is_class:
                            for sub, m in member.members.items():
                                if not m.is_alias and not sub.startswith("_"):
                                    key = f"{name}.{sub}"
                                    seen.setdefault(key, set()).add(m.path)

            walk(loader.modules_collection["jbpnn"])
            self._unique = {k: next(iter(v)) for k, v in seen.items() if len(v) == 1}
        return self._unique

    def _absent_optional(self, loader: griffe.GriffeLoader, target: str) -> bool:
        for module in self.optional:
            if target == module or target.startswith(module + "."):
                # A module, not a re-exported name.
                obj: Any = loader.modules_collection
                for part in module.split("."):
                    members = getattr(obj, "members", None)
                    if members is None or part not in members:
                        return True
                    obj = members[part]
                return obj.is_alias or not obj.is_module
        return False

    def _convert(self, obj: griffe.Object, loader: griffe.GriffeLoader, text: str) -> str:
        def repl(m: re.Match) -> str:
            tilde, target = m.group(2), m.group(3).strip().removesuffix("()")
            shown = target.rsplit(".", 1)[-1] if tilde else target
            if m.group(1) in ("func", "meth"):
                shown += "()" if m.group(3).strip().endswith("()") else ""
            path = self._resolve(obj, loader, target)
            if path is not None:
                return f"[`{shown}`][{path}]"
            head = target.split(".")[0]
            outside = head in _EXTERNAL or hasattr(builtins, head)
            if outside or self._absent_optional(loader, target):
                return f"`{shown}`"
            return f"[`{shown}`][{target}]"  # unresolved: mkdocs-autorefs reports it

        text = _join_name_lists(text)
        text = _ROLE.sub(repl, text)
        text = _BARE_LITERAL.sub("", text)
        return _LITERAL.sub(r"\1:", text)
