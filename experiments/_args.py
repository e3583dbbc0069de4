"""argparse types the experiment scripts share: a bad value is argparse's one-line error
(``--repeats 0`` ended in ``statistics.StatisticsError`` deep in a script, or printed a
table of ``nan`` with exit status 0)."""

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


def sizes(text: str) -> tuple[int, ...]:
    """Layer sizes, ``1024,2048,10``: at least two integers >= 1."""
    try:
        out = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected layer sizes such as 1024,2048,10, got {text!r}"
        ) from None
    if len(out) < 2 or min(out) < 1:
        raise argparse.ArgumentTypeError(f"expected at least two sizes >= 1, got {text!r}")
    return out
