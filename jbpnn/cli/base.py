"""What every subcommand module of :mod:`jbpnn.cli` shares: the error and the parser.

:class:`CLIError` is a user error (one line, exit status 2); :class:`Parser` makes a
usage error one line too; :class:`HelpFormatter` shows every option's default;
:func:`add_subparser` gives each subcommand its description and example. They live
here, not in ``jbpnn/cli/__init__.py``, so that the subcommand modules and the
package's ``build_parser`` can import each other at the top of their modules.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any, NoReturn

__all__ = [
    "CLIError",
    "HelpFormatter",
    "Parser",
    "add_subparser",
    "catching_interrupts",
    "check_interrupted",
    "say",
    "stderr_is_terminal",
    "stdout_closed",
]


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


# ---------------------------------------------------------------- Ctrl-C
_interrupted = threading.Event()  # a Ctrl-C arrived during the command


def _on_interrupt(signum: int, frame: Any) -> None:
    _interrupted.set()  # kept even where the KeyboardInterrupt below is swallowed
    raise KeyboardInterrupt


@contextlib.contextmanager
def catching_interrupts() -> Iterator[None]:
    """Ctrl-C during the command is never lost.

    Python raises a Ctrl-C's KeyboardInterrupt wherever the main thread is, also inside a
    callback whose exceptions it only reports and drops: JAX's garbage-collector callback
    (``Exception ignored in: _xla_gc_callback``, a 5-line traceback), after which the run
    went on and wrote its files with status 0. Inside this block a Ctrl-C is also
    recorded (:func:`check_interrupted` raises it again), and a KeyboardInterrupt that
    Python drops is not printed. Outside the main thread signals cannot be set: nothing
    changes there; nor in a process started with Ctrl-C ignored (a shell's background
    job, ``nohup``), which keeps ignoring it, as Python does.
    """
    _interrupted.clear()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    try:
        previous = signal.signal(signal.SIGINT, _on_interrupt)
    except ValueError:  # not the main thread
        yield
        return
    hook = sys.unraisablehook

    def quiet(info: Any) -> None:
        if not issubclass(info.exc_type, KeyboardInterrupt):
            hook(info)

    sys.unraisablehook = quiet
    try:
        yield
    finally:
        sys.unraisablehook = hook
        signal.signal(signal.SIGINT, previous)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if a Ctrl-C arrived (see :func:`catching_interrupts`):
    called before a file is written, at each progress update and when a command ends."""
    if _interrupted.is_set():
        raise KeyboardInterrupt


def say(line: str) -> None:
    """Write one line to stderr (an error, a warning, "interrupted"). Nothing when there is
    no stderr (``2>&-``: ``sys.stderr`` None) or it cannot be written (``2>/dev/full``, a
    reader gone): the exit status still tells, where the failed write exited with 1."""
    err = sys.stderr
    if err is None:
        return
    try:
        print(line, file=err)
        err.flush()
    except (OSError, ValueError):
        pass


def stderr_is_terminal() -> bool:
    """stderr is a terminal (where a progress bar is drawn by default); False without one."""
    err = sys.stderr
    try:
        return err is not None and err.isatty()
    except (OSError, ValueError):  # closed
        return False


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
    """An ArgumentParser whose errors are ONE line: ``jbpnn train: error: ...`` (exit 2).

    Options are never abbreviated (``--imp`` for ``--import`` filled the option without
    importing the module, which then went unprotected as an input: ``--save`` overwrote
    it), and ``-1e-3`` is a value, not an option (``--lr -1e-3``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        # argparse reads "-1e-3" as an option (its pattern has no exponent)
        self._negative_number_matcher = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")

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
