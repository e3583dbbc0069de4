"""argparse types for the experiment scripts that parse their flags before they import
jbpnn (and so JAX): ``pure_python_bpnn.py`` (no JAX at all), ``distributed.py`` (its
workers start ``jax.distributed`` first), ``compose_targets.py`` and ``core_targets.py``
(fresh-process timings), ``bench.py`` (its contenders import lazily). The others use the
command line's own types, :mod:`jbpnn.cli.options`. A bad value is argparse's one-line
error (``--repeats 0`` ended in ``statistics.StatisticsError`` deep in a script, or
printed a table of ``nan`` with exit status 0)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def at_least(low: int) -> Callable[[str], int]:
    """An integer ``>= low``."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    return check


def non_negative(text: str) -> float:
    """A finite number ``>= 0``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value >= 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value
