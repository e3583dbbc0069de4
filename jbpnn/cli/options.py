"""argparse types of the command line, each the library's own check (:mod:`jbpnn.checks`).

A numeric flag accepts and refuses exactly what the library accepts and refuses for
the argument it becomes, because it calls the same check with the same range:

- ``--lr``: as every optimizer checks ``lr``, ``check_number(lr, 0)``: 0 is allowed;
- ``--momentum`` (and ``jbpnn sweep --momenta``): as ``momentum(m=)``, ``0 <= m < 1``;
- ``--weight-decay``: as the optimizers, ``check_number(weight_decay, 0)``;
- ``--epochs``: as ``train(epochs=)``, ``check_int(epochs, 1)``;
- ``--batch-size``: as ``train(batch_size=)``, ``check_int``, with 0 for None (below);
- ``--tol``, ``--min-weight-change``: as the stop rules, ``check_threshold``: >= 0;
- ``--validation-fraction``: ``[0, 1)``, as the estimators' ``validation_fraction``;
- ``--test-fraction``: ``(0, 1)``, as ``train_test_split(test_fraction=)``;
- ``--seed``: ``check_seed``, ``0 .. 2**32 - 1``, as ``as_key``;
- ``--delimiter``: as ``load_csv(delimiter=)``, ``check_delimiter``: one character.

The message is the check's own, which argparse prefixes with the flag (``jbpnn train:
error: argument --epochs: the value must be an integer >= 1, got 0``), one line,
before anything runs.

Where the command line spells an API value its own way (the one table of them):

=============================== ==============================================
command line                     API
=============================== ==============================================
``--batch-size 0``               ``batch_size=None``: full batch
``--batch-size`` above the rows  full batch, as scikit-learn (the API refuses it)
``--hidden none``                no hidden layer: ``sizes=(n_in, n_out)``
``--validation-fraction 0``      no validation rows: no early stopping
``--n-iter-no-change off``       ``n_iter_no_change=None``: early stopping off
                                 (0 is refused by both: see :mod:`jbpnn.stopping`)
``--delimiter tab``              ``delimiter="\\t"`` (also ``--delimiter '\\t'``)
=============================== ==============================================

Comma lists (``jbpnn train --hidden 64,32``, ``jbpnn sweep --lrs 0.01,0.1 --momenta
0.5,0.9``, ``jbpnn gradcheck --sizes 64,32,10``) are read by one parser,
:func:`comma_list`: each item is checked as the single value is, and a bad list
raises ``argparse.ArgumentTypeError`` with one message shape, the bad item, the list
and what the flag takes: ``argument --hidden: item '0' of '64,0' is refused (the value
must be an integer >= 1, got 0); expected layer widths such as 64 or 64,32, or none``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

from jbpnn.checks import check_int, check_number, check_seed, check_threshold
from jbpnn.loaders import check_delimiter
from jbpnn.optimizers import levenberg_marquardt
from jbpnn.stopping import Stopping

__all__ = [
    "FlagType",
    "batch_size",
    "comma_list",
    "delimiter",
    "fraction",
    "integer",
    "learning_rate",
    "momentum_m",
    "non_negative_int",
    "number",
    "open_fraction",
    "patience",
    "positive_int",
    "seed",
    "threshold",
]


class FlagType:
    """An argparse type: the text of one value, parsed, then checked by a library check.

    An instance is what ``add_argument(type=...)`` takes (:data:`seed`,
    :data:`fraction`, ...). Argparse calls it with one argument, ``text``, the flag's
    value as typed (``"0.1"``, ``"off"``); it returns the value the API gets (``text``
    parsed, then checked; a value the command line spells its own way becomes the
    API's, ``--batch-size 0`` None), or raises ``argparse.ArgumentTypeError`` with the
    check's message, which argparse prints after the flag's name. The constructor's
    arguments (below) say how to parse and check.
    """

    def __init__(
        self,
        what: str,
        parse: Callable[[str], Any],
        check: Callable[[Any], Any],
        spellings: Mapping[Any, Any] | None = None,
    ) -> None:
        """Make the type of one flag.

        Args:
            what: what the flag takes, for the message of a value that does not parse
                (``"an integer >= 1"``).
            parse: text -> value (``int``, ``float``); ``ValueError`` if it cannot.
            check: the library check of the value; raises ``ValueError`` or
                ``TypeError``; returns the value to use, or None to keep the parsed one.
            spellings: checked values the command line spells its own way -> the API's
                value (``{0: None}``: ``--batch-size 0`` is full batch).
        """
        self.what, self.parse, self.check = what, parse, check
        self.spellings = dict(spellings or {})
        self.__name__ = what  # argparse names the type by it in some messages

    def __call__(self, text: str) -> Any:
        """The value of one flag's text, as argparse calls a type.

        Args:
            text: the flag's value as typed on the command line (``"0.1"``, ``"off"``).

        Returns:
            The value the API gets, ``text`` parsed, then checked by the library check
            (:meth:`checked`, which keeps the check's value where it returns one and turns
            the command line's own spellings, e.g. ``--batch-size 0``, into the API's).

        Raises:
            argparse.ArgumentTypeError: ``text`` does not parse (``expected an integer
                >= 1, got 'x'``), or the library check refuses the value (the check's
                message).
        """
        try:
            value = self.parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {self.what}, got {text!r}") from None
        return self.checked(value)

    def checked(self, value: Any) -> Any:
        """``value`` through the library check; ``argparse.ArgumentTypeError`` if refused."""
        try:
            result = self.check(value)
        except (ValueError, TypeError) as e:  # "the seed: a seed must ..." -> "a seed must ..."
            raise argparse.ArgumentTypeError(str(e).removeprefix("the seed: ")) from None
        value = value if result is None else result
        return self.spellings.get(value, value)


def integer(low: int) -> FlagType:
    """An int ``>= low``, checked by :func:`jbpnn.checks.check_int`."""
    return FlagType(f"an integer >= {low}", int, lambda v: check_int("the value", v, low))


def number(low: float, high: float | None = None) -> FlagType:
    """A finite float ``low <= x < high``, checked by :func:`jbpnn.checks.check_number`."""
    return FlagType("a number", float, lambda v: check_number("the value", v, low, high))


def _open_fraction(value: float) -> None:
    # train_test_split's own check (jbpnn.data), which jbpnn.checks has no function for
    if not 0.0 < value < 1.0:
        raise ValueError(f"the value must be in (0, 1), got {value}")


positive_int = integer(1)
"""Argparse type: text -> an int >= 1 (``check_int``), e.g. ``--epochs``."""
non_negative_int = integer(0)
"""Argparse type: text -> an int >= 0 (``check_int``)."""
seed = FlagType("an int seed", int, lambda v: check_seed("the seed", v))
"""Argparse type: text -> a seed ``0 .. 2**32 - 1`` (``check_seed``, as ``as_key``)."""


def _threshold_text(text: str) -> float | None:
    return None if text.strip().lower() in ("off", "none") else float(text)


def _check_threshold(value: float | None) -> float | None:
    """The library's check of a stop-rule threshold, its None spelled ``off``."""
    try:
        return check_threshold("the value", value)
    except ValueError as e:
        raise ValueError(str(e).replace("None", "off")) from None


# train(tol=), min_weight_change=, ...: a number >= 0, or off (None), as the API
threshold = FlagType("a number >= 0, or off", _threshold_text, _check_threshold)
"""Argparse type: text -> a stop-rule threshold >= 0, or None for ``off``/``none``."""
learning_rate = number(0.0)  # every optimizer: check_number("lr", lr, low=0.0)
"""Argparse type: text -> a finite learning rate >= 0, as every optimizer checks ``lr``."""
momentum_m = number(0.0, 1.0)  # momentum(): check_number("m", m, low=0.0, high=1.0)
"""Argparse type: text -> a momentum ``0 <= m < 1``, as ``momentum(m=)``."""
fraction = number(0.0, 1.0)  # [0, 1): a share of rows that may be none
"""Argparse type: text -> a fraction in ``[0, 1)`` (``--validation-fraction``)."""


def _check_damping(value: float) -> None:
    levenberg_marquardt(mu=value)  # the library's check of mu: finite and > 0


damping = FlagType("a number > 0", float, _check_damping)  # --mu of lm and br
open_fraction = FlagType("a number", float, _open_fraction)  # (0, 1), as train_test_split
"""Argparse type: text -> a fraction in ``(0, 1)`` (``--test-fraction``)."""


def _patience_text(text: str) -> int | None:
    return None if text.strip().lower() in ("off", "none") else int(text)


def _check_patience(value: int | None) -> int | None:
    """Stopping's own check of ``n_iter_no_change``, its None spelled ``off``."""
    try:
        return Stopping(n_iter_no_change=value).n_iter_no_change
    except ValueError as e:
        raise ValueError(str(e).replace("None", "off")) from None


def _delimiter_text(text: str) -> str:
    return "\t" if text.lower() in ("tab", "\\t") else text


# load_csv(delimiter=): one character, tab spelled tab
delimiter = FlagType("one character, or tab", _delimiter_text, check_delimiter)
"""Argparse type: text -> a CSV's field separator, one character (``tab``: a tab)."""

# train(n_iter_no_change=): a count >= 1, or off (None); 0 is refused as by the API
patience = FlagType("a count >= 1 of epochs, or off", _patience_text, _check_patience)
"""Argparse type: text -> ``n_iter_no_change``, a count >= 1 of epochs, or None for ``off``."""
# train(batch_size=): check_int(batch_size, 1, allow_none=True), None spelled 0
batch_size = FlagType(
    "an integer >= 0", int, lambda v: check_int("the value", v, 0), spellings={0: None}
)
"""Argparse type: text -> a batch size >= 1, or None (full batch) for ``0``."""


def comma_list(
    item: FlagType,
    expected: str,
    *,
    at_least: int = 1,
    words: Mapping[str, tuple] | None = None,
    distinct: bool = False,
) -> Callable[[str], tuple]:
    """An argparse type for a comma-separated list: ``"64,32"`` -> ``(64, 32)``.

    Args:
        item: the type of one item (e.g. :data:`positive_int`): each is parsed and
            checked as the single value would be.
        expected: what the flag takes, for the message (``"layer widths such as 64,32"``).
        at_least: the fewest items.
        words: whole-list spellings, case-insensitive (``{"none": ()}``).
        distinct: refuse a value given twice (a grid's axis: its cells would be pooled).

    Returns:
        A function ``text -> tuple`` of the items' values.

    Raises (the function):
        argparse.ArgumentTypeError: ``item 'x' of '1,x' is not a number; expected ...``,
        ``item '-1' of '1,-1' is refused (<the library's message>); expected ...``, or
        ``'4' has 1 item, too few; expected ...``.
    """

    def convert(text: str) -> tuple:
        if words and text.strip().lower() in words:
            return words[text.strip().lower()]
        values = []
        for part in text.split(","):
            try:
                value = item.parse(part.strip())
            except ValueError:
                problem = f"item {part!r} of {text!r} is not {item.what}"
                raise _list_error(problem, expected) from None
            try:
                values.append(item.checked(value))
            except argparse.ArgumentTypeError as e:
                problem = f"item {part!r} of {text!r} is refused ({e})"
                raise _list_error(problem, expected) from None
        if len(values) < at_least:
            raise _list_error(f"{text!r} has {len(values)} item(s), too few", expected)
        if distinct and len(set(values)) < len(values):
            twice = next(v for i, v in enumerate(values) if v in values[:i])
            raise _list_error(f"{twice!r} is given twice in {text!r}", f"distinct {expected}")
        return tuple(values)

    convert.__name__ = "a comma-separated list"
    return convert


def _list_error(problem: str, expected: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{problem}; expected {expected}")
