"""argparse types for the experiment scripts that parse their flags before they import
jbpnn (and so JAX): ``pure_python_bpnn.py`` (no JAX at all), ``distributed.py`` (its
workers start ``jax.distributed`` first), ``compose_targets.py`` and ``core_targets.py``
(fresh-process timings), ``bench.py`` (its contenders import lazily). The others use the
command line's own types, :mod:`jbpnn.cli.options`. A bad value is argparse's one-line
error (``--repeats 0`` ended in ``statistics.StatisticsError`` deep in a script, or
printed a table of ``nan`` with exit status 0)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


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


def positive_number(text: str) -> float:
    """A finite number ``> 0`` (a timeout of ``inf`` ended in an OverflowError, ``-1``
    and ``nan`` "timed out after -1.0 s")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and value != float("inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def output_file(parser: argparse.ArgumentParser, flag: str, path: object) -> Path:
    """Check an output file BEFORE the run, as the command line does: its folder is made
    if missing, then :func:`jbpnn.files.check_target` (never a read-only or special file,
    a folder, or a dangling symlink; a symlink to a file writes that file). A refused
    path is argparse's one-line error, exit status 2 (it was a traceback after the whole
    run, or a read-only file replaced). Imports jbpnn (and so JAX)."""
    from jbpnn.files import check_target

    target = Path(str(path))
    if str(path) and not str(path).endswith("/"):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
            why = f"{blocker} is a file, not a folder" if blocker else error.strerror
            parser.error(f"cannot write {flag} {path}: cannot make its folder ({why})")
    try:
        check_target(str(path), f"write {flag}")
    except (OSError, ValueError) as error:
        parser.error(str(error))
    return target


def write_json(path: Path, data: object, **dumps: Any) -> None:
    """``data`` as JSON in ``path``, atomically (:func:`jbpnn.files.atomic_write`: all or
    nothing, a symlink's target written, a read-only file refused)."""
    from jbpnn.files import atomic_write

    atomic_write(path, json.dumps(data, indent=1, **dumps).encode())
