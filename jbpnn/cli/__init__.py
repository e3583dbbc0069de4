"""The ``jbpnn`` command (also ``python -m jbpnn``), one module per subcommand group.

Subcommands:
    train      the main job: train on the bundled digits (or --data FILE), report
               train and test accuracy, optionally save the model and plot the curves
               (:mod:`jbpnn.cli.train`).
    predict    predictions of a saved model for a CSV/NPZ file (:mod:`jbpnn.cli.train`).
    example    the article's worked examples, printed in the article's layout
               (:mod:`jbpnn.cli.article`).
    demo       the article's two demos (binary and cat/dog) through the BPNN facade
               (:mod:`jbpnn.cli.article`).
    gradcheck  the hand-derived gradient against jax.grad (:mod:`jbpnn.cli.gradcheck`).
    sweep      a learning-rate x momentum x seed grid at once (:mod:`jbpnn.cli.sweep`).

``train``, ``predict`` and ``gradcheck`` take ``--import MODULE`` (repeatable): the user's
module that registers units or losses of their own, imported before the arguments are
read (:mod:`jbpnn.cli.imports`).

The command line holds no maths of its own: it calls the library, prints, and
chooses the exit status: 2 for every failure, printed as ONE line on stderr and
never a traceback (``JBPNN_DEBUG=1`` shows one for an unexpected error); 130 (the
shell's status for Ctrl-C) with the one line ``jbpnn COMMAND: interrupted``, also
while an ``--import`` module loads; 0 also when the reader of stdout goes away
(``jbpnn train | head -1``). Every option's
help shows its default. The files a command writes are checked before it runs and
written all or none (:mod:`jbpnn.cli.files`). Every flag is checked by the
library's own check (:mod:`jbpnn.cli.options`), so the command line and the API
accept and refuse the same values. The error and the parser that every subcommand
shares are in :mod:`jbpnn.cli.base`. It turns on JAX's persistent compilation cache
(see :func:`jbpnn.enable_compilation_cache`).
This package is the only place in jbpnn that imports argparse; ``import jbpnn``
does not import it.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from jbpnn import __version__
from jbpnn.cli import article, train
from jbpnn.cli import gradcheck as cli_gradcheck
from jbpnn.cli.base import (
    CLIError,
    HelpFormatter,
    Parser,
    add_subparser,
    catching_interrupts,
    check_interrupted,
    say,
)
from jbpnn.cli.imports import (
    IMPORTING_COMMANDS,
    REGISTERED_NOTHING,
    add_import_argument,
    import_modules,
)
from jbpnn.cli.sweep import add_sweep_arguments, run_sweep
from jbpnn.compilation_cache import default_compilation_cache

__all__ = [
    "BENCH_REMOVED",
    "CLIError",
    "HelpFormatter",
    "Parser",
    "add_subparser",
    "build_parser",
    "describe_error",
    "main",
]

BENCH_REMOVED = "jbpnn bench was removed: run `python experiments/bench.py` from a source checkout"


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``jbpnn``: every subcommand, ``--version`` and ``--help``."""
    parser = Parser(
        prog="jbpnn",
        description="Back-propagation neural networks in JAX, gradients derived by hand.",
        epilog="example:\n  jbpnn train --hidden 64 --epochs 100 --save model.npz",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    train.add_parsers(sub)
    article.add_parsers(sub)

    gc = add_subparser(
        sub,
        "gradcheck",
        "compare the hand-derived gradient with jax.grad or finite differences",
        "Build a random network and batch, compare the hand-derived batch gradient with "
        "autodiff (jax.grad) of the same loss (or central finite differences in float64), print a "
        "table per layer, and exit 1 when a check fails.",
        "jbpnn gradcheck --sizes 64,32,10 --activation tanh --reference finite_difference",
    )
    cli_gradcheck.add_arguments(gc)
    add_import_argument(gc)
    gc.set_defaults(func=cli_gradcheck.run)

    sw = add_subparser(
        sub,
        "sweep",
        "train a learning-rate x momentum x seed grid of networks at once",
        "Train 8 learning rates x 4 momenta x 8 seeds = 256 digits networks in one compiled "
        "call (train_many), print the best cells (mean +- std over seeds), write sweep.csv, "
        "sweep.json and heatmap.png (python experiments/sweep.py also times train_many "
        "against sequential train).",
        "jbpnn sweep --quick --out sweep",
    )
    add_sweep_arguments(sw, timing=False)
    sw.set_defaults(func=run_sweep)

    sub.add_parser(
        "bench",
        help="removed: run python experiments/bench.py from a source checkout",
        add_help=False,
    )
    return parser


def _cut(text: str, limit: int = 2000) -> str:
    """An error line of at most about ``limit`` characters: a value a file held (a 2 MB
    format_version) was echoed whole."""
    if len(text) <= limit:
        return text
    return (
        f"{text[: limit // 2]} ... [{len(text) - limit} characters cut] ... {text[-limit // 2 :]}"
    )


def describe_error(error: BaseException) -> str:
    """One line naming the fault: the message, or for an OS error its reason and file."""
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
        if error.filename is not None:
            text += f": {error.filename}"
    else:
        text = str(error) or type(error).__name__
    if isinstance(error, KeyError):  # str(KeyError('x')) is "'x'"
        text = f"missing {text}"
    return " ".join(text.split())  # one line, whatever the message held


class _PipeSafe(io.TextIOBase):
    """stdout that, once the reader has gone (``jbpnn train | head -1``), drops the rest.

    The command goes on (a ``--save`` is still written) and exits quietly: the
    file descriptor is pointed at ``os.devnull``, so that Python's own flush at
    exit does not fail either. With no stdout at all (started with ``>&-``: Python's
    ``sys.stdout`` is None, ``missing``) the output is dropped the same way;
    ``jbpnn predict``, whose output is its result, refuses to run without ``--out``.
    """

    def __init__(self, stream: Any):
        self.stream = stream
        self.missing = stream is None or bool(getattr(stream, "closed", False))
        self.closed_pipe = self.missing

    def write(self, text: str) -> int:
        if not self.closed_pipe:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.closed_pipe:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._drop()

    def _drop(self) -> None:
        self.closed_pipe = True
        if self.missing:
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def isatty(self) -> bool:
        return not self.closed_pipe and self.stream.isatty()

    def fileno(self) -> int:
        if self.missing:
            raise io.UnsupportedOperation("stdout is closed")
        return self.stream.fileno()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jbpnn ARGS``; returns the exit status (bare ``jbpnn`` prints the help).

    0 on success (also when the reader of stdout went away: the rest of the output
    is dropped quietly); 2 for every failure, printed as ONE line on stderr,
    ``jbpnn COMMAND: error: ...``, never a traceback; 1 when a check fails
    (``gradcheck``, ``demo``); 130 when interrupted (Ctrl-C: ``jbpnn COMMAND:
    interrupted``, one line, no file written).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # whatever follows, --help included
        say(BENCH_REMOVED)
        return 2
    stdout = sys.stdout
    sys.stdout = safe = _PipeSafe(stdout)
    try:
        with catching_interrupts():
            return _run(argv)
    except BrokenPipeError:  # a write to the real stdout, past the guard
        safe._drop()
        return 0
    finally:
        try:
            safe.flush()
        finally:
            sys.stdout = stdout


def _run(argv: list[str]) -> int:
    if argv[:1] and argv[0] in IMPORTING_COMMANDS:  # --import MODULE: before the choices
        try:
            import_modules(argv[1:])
        except CLIError as error:
            say(f"jbpnn {argv[0]}: error: {error}")
            return 2
        except KeyboardInterrupt:  # a slow module, interrupted: one line, as in a run
            say(f"jbpnn {argv[0]}: interrupted")
            return 130
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit as e:  # --help, --version, or a usage error (already printed)
        code = e.code if isinstance(e.code, int) else 2
        if code == 2 and REGISTERED_NOTHING:  # e.g. --activation softsign: "invalid choice"
            modules = ", ".join(REGISTERED_NOTHING)
            say(f"jbpnn {argv[0]}: note: --import {modules} registered no unit or loss")
        return code
    if extra:  # the subcommand's own error line (argparse's names the top-level parser)
        where = f"jbpnn {args.command}" if args.command else "jbpnn"
        say(f"{where}: error: unrecognized arguments: {' '.join(extra)} (see {where} --help)")
        return 2
    if args.command is None:
        parser.print_help()
        return 0
    with warnings.catch_warnings():
        # a warning is one line too, "jbpnn train: warning: ...", not Python's two (the
        # file and line of jbpnn's code that raised it)
        warnings.showwarning = _one_line_warning(args.command)
        return _run_command(args)


def _one_line_warning(command: str) -> Any:
    def show(message: Any, category: Any, filename: Any, lineno: Any, *_: Any) -> None:
        say(f"jbpnn {command}: warning: {_cut(str(message))}")

    return show


def _run_command(args: argparse.Namespace) -> int:
    """``args.func(args)``, its failures one line on stderr (see :func:`main`)."""
    default_compilation_cache()  # the per-user folder, unless the user set JAX's own
    try:
        status = args.func(args)
        check_interrupted()  # a Ctrl-C that a callback swallowed: still 130
        return status
    except KeyboardInterrupt:
        say(f"jbpnn {args.command}: interrupted")
        return 130
    except BrokenPipeError:
        raise  # the reader of stdout went away: main exits quietly
    except (CLIError, ValueError, TypeError, KeyError, OSError, MemoryError) as error:
        say(f"jbpnn {args.command}: error: {_cut(describe_error(error))}")
        return 2
    except Exception as error:  # a fault of jbpnn or of a library it calls: still one line
        if os.environ.get("JBPNN_DEBUG"):
            raise
        say(
            f"jbpnn {args.command}: error: {type(error).__name__}: {_cut(describe_error(error))} "
            "(an unexpected error; JBPNN_DEBUG=1 shows the traceback)"
        )
        return 2
