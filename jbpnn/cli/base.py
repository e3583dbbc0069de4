"""What every subcommand module of :mod:`jbpnn.cli` shares: the error and the parser.

:class:`CLIError` is a user error (one line, exit status 2); :class:`Parser` makes a
usage error one line too; :class:`HelpFormatter` shows every option's default;
:func:`add_subparser` gives each subcommand its description and example. They live
here, not in ``jbpnn/cli/__init__.py``, so that the subcommand modules and the
package's ``build_parser`` can import each other at the top of their modules.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any, NoReturn

__all__ = ["CLIError", "HelpFormatter", "Parser", "add_subparser", "stdout_closed"]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def stdout_closed() -> bool:
    """No stdout at all: Python started with file descriptor 1 closed (``jbpnn ... >&-``,
    ``sys.stdout`` None) or it was closed. (A reader that went away is another case: the
    rest of the output is dropped quietly.)"""
    out = sys.stdout
    return (
        out is None or bool(getattr(out, "missing", False)) or bool(getattr(out, "closed", False))
    )


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the descriptions' layout and appends ``(default: X)`` to every option's help.

    Options whose help already says its default (``default`` in the text) keep it;
    flags (``store_true``) and options without a default say nothing more.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help = action.help or ""
        if "default" in help or not action.option_strings:
            return help
        if action.default is None or action.default is argparse.SUPPRESS or action.nargs == 0:
            return help
        value = action.default
        if isinstance(value, (tuple, list)):
            value = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
        return f"{help} (default: {value})".strip()


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are ONE line: ``jbpnn train: error: ...`` (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_subparser(
    sub: Any, name: str, help: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand parser with the wrapped description and an ``example:`` epilog."""
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog=f"example:\n  {example}",
        formatter_class=HelpFormatter,
    )
