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

The command line holds no maths of its own: it calls the library, prints, and
chooses the exit status (2 for a user error, printed as one line). It turns on
JAX's persistent compilation cache (see :func:`jbpnn.enable_compilation_cache`).
This package is the only place in jbpnn that imports argparse; ``import jbpnn``
does not import it.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Sequence
from typing import Any

from jbpnn import __version__
from jbpnn.compilation_cache import enable_compilation_cache

__all__ = ["BENCH_REMOVED", "CLIError", "add_subparser", "build_parser", "main"]

BENCH_REMOVED = "jbpnn bench was removed: run `python experiments/bench.py` from a source checkout"


class CLIError(Exception):
    """A user error: printed as one line, exit status 2."""


def add_subparser(
    sub: Any, name: str, help: str, description: str, example: str
) -> argparse.ArgumentParser:
    """A subcommand parser with the wrapped description and an ``example:`` epilog."""
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(description, 79),
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``jbpnn``: every subcommand, ``--version`` and ``--help``."""
    from jbpnn.cli import article, train
    from jbpnn.cli import gradcheck as cli_gradcheck
    from jbpnn.cli.sweep import add_sweep_arguments, run_sweep

    parser = argparse.ArgumentParser(
        prog="jbpnn",
        description="Back-propagation neural networks in JAX, gradients derived by hand.",
        epilog="example:\n  jbpnn train --hidden 64 --epochs 100 --save model.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    gc.set_defaults(func=cli_gradcheck.run)

    sw = add_subparser(
        sub,
        "sweep",
        "train a learning-rate x momentum x seed grid of networks at once",
        "Train 8 learning rates x 4 momenta x 8 seeds = 256 digits networks in one compiled "
        "call (train_many), print the best cells (mean +- std over seeds), write sweep.csv, "
        "sweep.json and heatmap.png, and time train_many against sequential train.",
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jbpnn ARGS``; returns the exit status (bare ``jbpnn`` prints the help)."""
    from jbpnn.data import DataError

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # whatever follows, --help included
        print(BENCH_REMOVED, file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    enable_compilation_cache()
    try:
        return args.func(args)
    except (CLIError, DataError, FileNotFoundError, ValueError, TypeError) as error:
        print(f"jbpnn {args.command}: error: {error}", file=sys.stderr)
        return 2
