"""argparse types of the command line, each built on :mod:`jbpnn.checks`.

So that ``jbpnn ... --seed 2**70`` is refused with the message ``train(key=2**70)``
gets, as one usage line, before anything runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from jbpnn.checks import check_int, check_number, check_seed, check_threshold

__all__ = [
    "integer",
    "non_negative_int",
    "number",
    "positive_int",
    "positive_number",
    "seed",
    "threshold",
]


def _type(name: str, parse: Callable[[str], Any], check: Callable[[Any], Any]) -> Any:
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}") from None
        try:
            result = check(value)
        except (ValueError, TypeError) as e:  # "the seed: a seed must ..." -> "a seed must ..."
            raise argparse.ArgumentTypeError(str(e).removeprefix("the seed: ")) from None
        return value if result is None else result

    convert.__name__ = name  # argparse names the type in its messages
    return convert


def integer(low: int) -> Any:
    """An argparse type: an int ``>= low``."""
    return _type(f"an integer >= {low}", int, lambda v: check_int("the value", v, low))


def number(low: float, high: float | None = None) -> Any:
    """An argparse type: a finite float ``low <= x < high``."""
    return _type("a number", float, lambda v: check_number("the value", v, low, high))


positive_int = integer(1)
non_negative_int = integer(0)


def _positive(value: float) -> None:
    check_number("the value", value, 0.0)
    if value <= 0:
        raise ValueError(f"the value must be above 0, got {value!r}")


positive_number = _type("a number > 0", float, _positive)
seed = _type("an int seed", int, lambda v: check_seed("the seed", v))
threshold = _type("a number >= 0", float, lambda v: check_threshold("the value", v))
