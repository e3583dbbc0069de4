"""The README is executed: its python blocks run, and its deterministic quoted output is real.

Every ```python block of README.md runs, in order, in ONE fresh Python process (a
block may use what an earlier one defined), in a temporary folder (files the
blocks write land there). A line printed before each block attributes a failure
to its block. Quoted console output is checked where it is deterministic: every
line a block's quoted output shows, elapsed times aside, and ``jbpnn example``'s
worked example.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from conftest import default_compile_env

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MARK = "=== README python block {} (line {}) ==="

# A fenced block: its indentation, its language and its text.
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```[ \t]*$", re.S | re.M)


def blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line, language, code)`` of every fenced block, code dedented."""
    found = []
    for m in _FENCE.finditer(text):
        line = text[: m.start()].count("\n") + 1
        found.append((line, m.group(2), textwrap.dedent(m.group(3))))
    return found


def python_blocks(text: str) -> list[tuple[int, str]]:
    return [(line, code) for line, lang, code in blocks(text) if lang == "python"]


def test_the_extraction_finds_every_block():
    text = README.read_text()
    assert len(python_blocks(text)) == text.count("```python")
    assert python_blocks("a\n  ```python\n  x = 1\n  ```\n") == [(2, "x = 1\n")]


@pytest.fixture(scope="module")
def readme_run(tmp_path_factory) -> tuple[list[tuple[int, str]], dict[int, str], str]:
    """Run every python block in one fresh process; ``(blocks, output per block, stderr)``."""
    code_blocks = python_blocks(README.read_text())
    parts = []
    for i, (line, code) in enumerate(code_blocks):
        parts.append(f"print({MARK.format(i, line)!r}, flush=True)\n{code}")
    script = "\n".join(parts) + "\nprint('=== README done ===', flush=True)\n"
    folder = tmp_path_factory.mktemp("readme")
    (folder / "readme_blocks.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JBPNN_NO_CACHE="1", MPLBACKEND="Agg")
    env = default_compile_env(env)  # the quoted output is the default optimization level's
    proc = subprocess.run(
        [sys.executable, "readme_blocks.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,  # the blocks train real networks (the train_many one: 64 of them)
    )
    outputs: dict[int, str] = {}
    pieces = re.split(r"^=== README python block (\d+) \(line \d+\) ===\n", proc.stdout, flags=re.M)
    for index, text in zip(pieces[1::2], pieces[2::2]):
        outputs[int(index)] = text
    if "=== README done ===" not in proc.stdout:
        failed = max(outputs, default=0)
        line = code_blocks[failed][0] if code_blocks else 0
        pytest.fail(
            f"README python block {failed} (line {line}) failed (exit {proc.returncode}):\n"
            f"{proc.stderr[-4000:]}"
        )
    return code_blocks, outputs, proc.stderr


def test_every_python_block_runs_in_order(readme_run):
    code_blocks, outputs, _ = readme_run
    assert sorted(outputs) == list(range(len(code_blocks)))


# Elapsed times ("1.2 s", "in 0.96 s") are the only part of a quoted output allowed to vary.
_SECONDS = re.compile(r"\b\d+(?:\.\d+)? s\b")


def _timeless(text: str) -> list[str]:
    return [_SECONDS.sub("<t> s", line.rstrip()) for line in text.splitlines()]


def quoted_outputs(text: str, code_blocks: list[tuple[int, str]]) -> dict[int, str]:
    """``{python block index: the quoted output right after it}``.

    A quoted output is an unlabelled block that follows the python block with nothing
    but blank lines between; a ``$ command`` transcript is not the block's own output.
    """
    all_blocks = blocks(text)
    lines = text.splitlines()
    found = {}
    for i, (line, code) in enumerate(code_blocks):
        k = next(j for j, b in enumerate(all_blocks) if b[0] == line)
        if k + 1 >= len(all_blocks) or all_blocks[k + 1][1] != "":
            continue
        closing = line + code.count("\n") + 1  # the closing fence, 1-based
        if any(s.strip() for s in lines[closing : all_blocks[k + 1][0] - 1]):
            continue  # prose between them: not this block's output
        quoted = all_blocks[k + 1][2]
        if not quoted.startswith("$ "):
            found[i] = quoted
    return found


def test_quoted_output_is_what_the_blocks_print(readme_run):
    """Every line of a python block's quoted output is what it prints (times aside)."""
    code_blocks, outputs, _ = readme_run
    quoted = quoted_outputs(README.read_text(), code_blocks)
    assert len(quoted) >= 3  # training, the article's BPNN class, scikit-learn
    for i, text in quoted.items():
        assert _timeless(outputs[i]) == _timeless(text), (code_blocks[i][0], outputs[i])


def test_the_quoted_output_check_sees_a_changed_digit():
    text = "```python\nprint(1)\n```\n\n```\nErr: 0.1932648 in 1.2 s\n```\n"
    ((i, quoted),) = quoted_outputs(text, python_blocks(text)).items()
    assert _timeless("Err: 0.1932648 in 0.9 s") == _timeless(quoted)
    assert _timeless("Err: 0.1932647 in 1.2 s") != _timeless(quoted)
    assert quoted_outputs("```python\nx\n```\n```\n$ jbpnn train\n```\n", [(1, "x\n")]) == {}


def test_quoted_worked_example_is_the_real_output():
    """The README's ``jbpnn example`` excerpt is the first example, printed by the CLI."""
    from jbpnn import cli

    text = README.read_text()
    quoted = next(
        code for _, lang, code in blocks(text) if lang == "" and code.startswith("== the article")
    )
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(["example", "--which", "article"]) == 0
    assert out.getvalue().startswith(quoted), out.getvalue()


def test_the_article_the_readme_points_to_is_in_the_repository():
    text = README.read_text()
    for path in re.findall(r"`((?:docs|shared)/[\w./-]+\.md)`", text):
        assert (ROOT / path).is_file(), path
    assert "docs/ARTICLE.md" in text
