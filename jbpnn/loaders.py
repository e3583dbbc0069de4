"""Reading a user's data files: CSV / TSV, NPZ, and a model's features by column name.

NumPy only (no JAX), so the command line can load and check data before JAX starts.

- :func:`load_table`: a ``.csv``, ``.tsv`` or ``.npz`` file by its suffix, as a
  :class:`Table`; :func:`load_csv` and :func:`load_npz` read one kind each
  (:func:`detect_delimiter` finds a CSV's separator, :func:`check_delimiter` checks
  one given). Bad files raise
  :class:`DataError` naming the file and the line.
- :func:`load_features`: the feature columns a model was trained on, matched by
  column name (or by position in a file without a header).

The bundled digits, splits, scalers and label encoding are in :mod:`jbpnn.data`,
which re-exports :func:`load_csv`, :func:`load_npz` and :class:`DataError` (the
README documents the readers there).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
import shlex
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MISSING_MARKERS",
    "DataError",
    "Table",
    "check_delimiter",
    "detect_delimiter",
    "load_csv",
    "load_features",
    "load_npz",
    "load_table",
]

StrPath = str | PathLike


class DataError(ValueError):
    """Bad data: the message names the file and, where it applies, the line."""


class Table(NamedTuple):
    """A table loaded from a user's file.

    Attributes:
        X: features, shape ``(n, d)``, float64 (lossless; scalers return float32).
        y: targets, shape ``(n,)``: float64 when every target value is a number,
            otherwise strings (a categorical target, for :class:`jbpnn.data.LabelEncoder`);
            ``None`` when loaded with ``has_target=False``.
        feature_names: ``d`` names, from the header, else ``col0, col1, ...`` by index.
        target_name: the target column's name, or ``None`` without a target.
        columns: every column of the file in its order, the target included (a CSV's
            header, or ``col0, col1, ...``); ``None`` when unknown (NPZ).
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    columns: list[str] | None = None


def load_table(path: StrPath, target: str | int | None = None, **kwargs: Any) -> Table:
    """Load a CSV (``.csv``, ``.tsv``) or NPZ (``.npz``) file by its suffix.

    Args:
        path: the file.
        target: the target column (CSV: name or index, default the last column) or
            array name (NPZ: default ``"y"``).
        **kwargs: passed on to :func:`load_csv` or :func:`load_npz` (e.g. ``has_target``).

    Returns:
        A :class:`Table`.

    Raises:
        FileNotFoundError: no such file.
        DataError: unknown suffix or bad contents.
    """
    path = _existing_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        # An int target (a CSV column index) reaches load_npz, which names it as missing.
        return load_npz(path, "y" if target is None else target, **kwargs)  # type: ignore[arg-type]
    if suffix in _DELIMITERS:
        kwargs.setdefault("delimiter", _DELIMITERS[suffix])
        return load_csv(path, target, **kwargs)
    raise DataError(
        f"{path}: unsupported file type {suffix or '(no suffix)'!r}; "
        f"expected one of {', '.join(sorted([*_DELIMITERS, '.npz']))}"
    )


_DELIMITERS: dict[str, str | None] = {".csv": None, ".tsv": "\t"}  # None: detected
_CANDIDATE_DELIMITERS = (",", "\t", ";", "|")
_DECIMAL_COMMA = re.compile(r"[+-]?[0-9]+,[0-9]+")
# Excel's first line naming the separator ("sep=;"), which it reads and then skips
_SEP_LINE = re.compile(r"sep=([^\r\n])(?:\r\n|\r|\n)?", re.IGNORECASE)


def check_delimiter(delimiter: str) -> str:
    """``delimiter`` if it can separate the fields of a CSV, else ``ValueError``.

    One character that is not a letter, a digit, a quote or a line break (``,``,
    ``;``, tab, ``|``, a space, ...).
    """
    if (
        not isinstance(delimiter, str)
        or len(delimiter) != 1
        or delimiter.isalnum()
        or delimiter in '"\r\n'
    ):
        raise ValueError(
            "the delimiter must be one character that is not a letter, a digit, a quote or "
            f"a line break (',', ';', tab, '|'), got {delimiter!r}"
        )
    return delimiter


def detect_delimiter(path: StrPath) -> str:
    """The field separator of a delimited text file: ``,``, tab, ``;`` or ``|``.

    A first line ``sep=;`` (as Excel writes) names it. Else, of the candidates that
    split the first 50 non-blank lines into a dominant number of fields (the same
    count, at least 2, on more than half of the lines: one ragged line does not
    change the separator, the loader then reports that line), the one that agrees on
    the most lines, then the one giving the most numbers (``1,5`` counts, for a ``;``
    file with decimal commas); ``,`` when none does.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            lines = list(itertools.islice(f, 500))
    except (OSError, UnicodeDecodeError):
        return ","  # reading the file again says what is wrong
    if lines and (sep := _SEP_LINE.fullmatch(lines[0])):
        return sep.group(1)
    sample = [line for line in lines if line.strip()][:50]
    best, best_key = ",", (0, -1.0)
    for d in _CANDIDATE_DELIMITERS:
        try:
            rows = list(csv.reader(sample, delimiter=d))
        except csv.Error:
            continue
        if not rows:
            continue
        count, agree = Counter(len(r) for r in rows).most_common(1)[0]
        if count < 2 or 2 * agree <= len(rows):
            continue
        cells = [c.strip() for r in rows if len(r) == count for c in r]
        score = sum(_kind(c) == "number" or bool(_DECIMAL_COMMA.fullmatch(c)) for c in cells)
        key = (agree, score / len(cells))
        if key > best_key:
            best, best_key = d, key
    return best


def load_csv(
    path: StrPath,
    target: str | int | None = None,
    header: bool | str = "auto",
    *,
    has_target: bool = True,
    delimiter: str | None = None,
) -> Table:
    """Load a numeric table with one target column from a delimited text file.

    Header detection (``header="auto"``): the first row is a header when a column
    of numbers (below it) holds a word there (a header names its number columns
    with words), and data when every column of numbers holds a number there. One
    case cannot be told and is refused, asking for ``header=True``/``False``: the
    number columns hold numbers, but a column of text labels (values that repeat)
    holds a value found nowhere below it, as a header ``1,2,3,label`` and a
    headerless first row ``0.2,-0.5,0.4,bird`` (a class of one row) both do. With no
    column of numbers, such a new label makes the row a header; with a single row,
    every cell text does. Pass ``header=True``/``False`` to decide yourself.

    A first line ``sep=;`` (Excel's) names the delimiter and is skipped. Blank lines
    are skipped; cells are stripped of surrounding spaces; a UTF-8 byte order mark is
    ignored. Comment lines (``# ...``) are not supported: one is refused, named. A
    column with an empty header cell holding increasing row numbers (the index
    ``df.to_csv(path)`` writes) is refused, as is a column empty in every row (a
    delimiter at the end of every line); never used as a feature or the target.

    Numbers are written with ASCII digits, an optional sign, a decimal point and
    an exponent (``-1.5e3``); unlike Python's ``float``, underscores are not digit
    separators (``2023_01_05`` is text, not 20230105). Missing-value markers
    (:data:`MISSING_MARKERS`: ``NaN``, ``NA``, ``NULL``, ``None``, ... as pandas
    reads them) and empty cells are refused, in features and in the target alike
    (a ``NaN`` label never becomes a class).

    Args:
        path: the file.
        target: the target column: a header name, an index (negative counts from
            the end; a string of digits that is not a name is taken as an index), or
            ``None`` for the last column.
        header: ``"auto"``, ``True`` or ``False``.
        has_target: ``False`` for a file of features only (``y`` is then ``None``).
        delimiter: the field separator, one character (:func:`check_delimiter`);
            ``None`` detects it (:func:`detect_delimiter`).

    Returns:
        A :class:`Table`: ``X`` float64 ``(n, d)``, ``y`` ``(n,)`` float64 if every
        target cell is a number, else strings.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a ``header`` or ``delimiter`` that is none of the above.
        DataError: empty file, no data rows, a first row that may be a header or data,
            ragged rows, a comment line, a pandas row index, an empty column, a
            non-numeric / empty / NaN feature cell, an empty target cell, an unknown
            target column; each message names the file and, for a cell or row, its
            line number.
    """
    path = _existing_file(path)
    if header not in ("auto", True, False):
        raise ValueError(f"header must be 'auto', True or False, got {header!r}")
    if delimiter is None:
        delimiter = detect_delimiter(path)
    check_delimiter(delimiter)
    rows = _read_rows(path, delimiter)
    if not rows:
        raise DataError(f"{path} is empty: no rows to load")
    first_line, first = rows[0]
    if header == "auto":
        found = _looks_like_header(first, [row for _, row in rows[1:]])
        if found is None:
            raise _ambiguous_header(
                path, first_line, first, [row for _, row in rows[1:]], delimiter
            )
        header = found
    names = [name if header and name else f"col{j}" for j, name in enumerate(first)]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:  # a model with them could not be given its own file again (predict matches names)
        raise DataError(
            f"{path}: columns {twice} appear more than once in the header (line {first_line}); "
            "give every column its own name"
        )
    data = rows[1:] if header else rows
    if not data:
        raise DataError(f"{path} has a header (line {first_line}) but no data rows")
    for line, row in data:
        if len(row) != len(names):
            raise _ragged(path, (line, row), (first_line, first), bool(header), delimiter)
    if has_target and len(names) == 1:
        raise DataError(
            f"{path} has a single column, so no features beside the target"
            + _delimiter_hint(first, delimiter)
        )
    _refuse_unusable_columns(path, (first_line, first) if header else None, data, delimiter)
    t = _target_index(path, names, target, bool(header)) if has_target else None
    feature_cols = [j for j in range(len(names)) if j != t]
    X = np.empty((len(data), len(feature_cols)), dtype=np.float64)
    try:
        for i, (line, row) in enumerate(data):
            for k, j in enumerate(feature_cols):
                X[i, k] = _parse_feature(path, line, names[j], row[j])
    except DataError as e:  # a column of text labels: the target, not named?
        column = [cells[j] for _, cells in data]
        if t is None or _kind(row[j]) != "text" or _number_hint(row[j]) or _written_number(row[j]):
            raise
        if any(_number(c) is not None for c in column):
            raise
        ref = names[j] if header else str(j)
        raise DataError(
            f"{e}; column {names[j]!r} holds no numbers: if it is the target, name it "
            f"(target={ref!r}; jbpnn train: --target {ref})"
        ) from None
    y = None
    if t is not None:
        y = _parse_target(path, names[t], [(line, row[t]) for line, row in data])
    return Table(
        X, y, [names[j] for j in feature_cols], None if t is None else names[t], list(names)
    )


def _delimiter_hint(first: list[str], delimiter: str) -> str:
    others = [d for d in _CANDIDATE_DELIMITERS if d != delimiter and d in first[0]]
    if not others:
        return ""
    shown = {"\t": "tab"}.get(others[0], repr(others[0]))
    flag = {"\t": "tab"}.get(others[0], shlex.quote(others[0]))
    return (
        f"; its first line holds {shown}, not {delimiter!r}: is the file delimited by "
        f"{shown}? Say so: delimiter={others[0]!r} in Python, --delimiter {flag} to "
        "jbpnn train or predict"
    )


def _shown(cells: list[str], delimiter: str, width: int = 60) -> str:
    """A row as its line reads, cut to about ``width`` characters."""
    text = delimiter.join(cells)
    return text if len(text) <= width else text[: width - 3] + "..."


def _ragged(
    path: Path,
    bad: tuple[int, list[str]],
    first: tuple[int, list[str]],
    header: bool,
    delimiter: str,
) -> DataError:
    """The error of row ``bad`` whose field count differs from the ``first`` row's.

    A row that starts with ``#`` (not a missing-value marker such as ``#N/A``) is
    named as a comment line, which the loaders do not support.
    """
    for line, cells in (first, bad):
        if cells and cells[0].startswith("#") and not _is_missing(cells[0]):
            return DataError(
                f"{path}, line {line}: {_shown(cells, delimiter)!r} looks like a comment; "
                "comment lines are not supported: delete it"
            )
    (line, row), (first_line, _) = bad, first
    return DataError(
        f"{path}, line {line}: has {len(row)} fields, expected {len(first[1])} "
        f"(as in {'the header' if header else 'the first row'}, line {first_line})"
    )


def _refuse_unusable_columns(
    path: Path,
    header: tuple[int, list[str]] | None,
    data: list[tuple[int, list[str]]],
    delimiter: str,
) -> None:
    """Refuse a column empty in every row, and a pandas row index (see :func:`load_csv`).

    Args:
        path: the file, for the message.
        header: ``(line, cells)`` of the header, or ``None`` without one.
        data: the data rows, ``(line, cells)``, each as wide as the first.
        delimiter: the field separator, for the message.
    """
    width = len(data[0][1])
    for j in range(width):
        column = [row[j] for _, row in data]
        name = header[1][j] if header is not None else ""
        what = f"column {j + 1}" + (f" ({name!r})" if name else "")
        if len(data) > 1 and not any(column):
            trailing = j == width - 1 and not name
            raise DataError(
                f"{path}: {what} is empty in every row"
                + (
                    f": every line ends with {delimiter!r}? delete the trailing delimiters"
                    if trailing
                    else "; delete the column or fill it in"
                )
            )
        if header is not None and not name and _row_numbers(column):
            raise DataError(
                f"{path}: {what} has no name in the header (line {header[0]}) and holds the "
                f"row numbers {', '.join(column[:3])}{', ...' if len(column) > 3 else ''}: "
                "it looks like a row index written by pandas (df.to_csv(path) writes one, "
                "df.to_csv(path, index=False) does not); delete that column, or name it in "
                "the header if it is a feature"
            )


def _row_numbers(cells: list[str]) -> bool:
    """Whether ``cells`` are non-negative integers in increasing order (0, 1, 2, ...)."""
    if not all(re.fullmatch(r"[0-9]+", c) for c in cells):
        return False
    values = [int(c) for c in cells]
    return all(a < b for a, b in zip(values, values[1:]))


def _existing_file(path: StrPath) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"data file not found: {path}")
    if not path.is_file():
        raise DataError(f"{path} is not a file")
    return path


def _read_rows(path: Path, delimiter: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows as ``(line number, stripped cells)``.

    A first line ``sep=X`` (Excel's) is skipped; it must name ``delimiter``. A blank
    line is skipped; a row of empty cells (``,,``) is refused where rows follow it
    (skipped, it shifted every later row: ``predict`` printed the next row's answer on
    its line); at the end of the file (a spreadsheet's padding) it is skipped.
    """
    rows = []
    empty: int | None = None  # the line of a row of empty cells, until data follows
    reader: Any = None  # csv.reader, once the first line is read
    skipped = 0
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            head = f.readline()
            sep = _SEP_LINE.fullmatch(head)
            if sep and sep.group(1) != delimiter:
                raise DataError(
                    f"{path}, line 1: {head.strip()!r} names the delimiter "
                    f"{sep.group(1)!r}, but it is read with {delimiter!r}; drop that line "
                    "or read it with the delimiter it names"
                )
            skipped = 1 if sep else 0  # the reader's line numbers start after it
            reader = csv.reader(f if sep else itertools.chain([head], f), delimiter=delimiter)
            for row in reader:
                line = reader.line_num + skipped
                cells = [cell.strip() for cell in row]
                if any(cells):
                    if empty is not None:
                        raise DataError(
                            f"{path}, line {empty}: a row of empty cells among the data; "
                            "delete it or fill it in (missing values are refused)"
                        )
                    rows.append((line, cells))
                elif len(cells) > 1 and empty is None:
                    empty = line
        except csv.Error as e:
            line = (reader.line_num if reader is not None else 0) + skipped
            raise DataError(f"{path}, line {line}: cannot parse ({e})") from e
        except UnicodeDecodeError as e:
            raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    return rows


# A number as people write them in a table: ASCII digits, an optional sign, point and
# exponent. Python's float() also takes "1_000" (so "2023_01_05" would be 20230105),
# non-ASCII digits and surrounding spaces; none of them is a number here.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_INFINITY = re.compile(r"[+-]?(?:inf|infinity)", re.IGNORECASE)
# Missing-value markers, as pandas.read_csv reads them by default (plus "nan" in any case
# and the UCI repository's "?").
MISSING_MARKERS = frozenset(
    ["#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"]
    + ["<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
    + ["?"]  # the UCI repository's marker: one in a headerless first row made it a header
)


def _is_missing(cell: str) -> bool:
    return cell == "" or cell in MISSING_MARKERS or cell.lower() in ("nan", "+nan", "-nan")


def _number(cell: str) -> float | None:
    """The cell as a float (``inf`` spelled out included), or ``None`` if it is not a number.

    Stricter than ``float()``: no underscores (``2023_01_05`` is not 20230105), ASCII
    digits only, and missing-value markers (``NaN``, ``NA``, ...) are not numbers.
    """
    if _NUMBER.fullmatch(cell):
        return float(cell)
    if _INFINITY.fullmatch(cell):
        return float(cell)
    return None


def _kind(cell: str) -> str:
    """``"number"``, ``"missing"`` or ``"text"``."""
    if _is_missing(cell):
        return "missing"
    return "number" if _number(cell) is not None else "text"


def _looks_like_header(first: list[str], rest: list[list[str]]) -> bool | None:
    """Whether the first row names the columns: ``True``, ``False``, or ``None`` when the
    rules cannot tell (see :func:`load_csv`).

    A column of numbers (only numbers or missing values below the first row) holding
    a word in the first row makes it a header; one holding a number makes it data. A
    text label column (values that repeat below) holding in the first row a value
    found nowhere below (``label`` over ``cat, dog, cat``) makes it a header when no
    column of numbers says otherwise, and cannot be told when one does (``1,2,3,label``
    and ``0.2,-0.5,0.4,bird`` over the same rows). With a single row: a header when
    every cell is text.
    """
    if not rest:
        return all(_kind(a) == "text" for a in first)
    numbers = False  # a column of numbers holds a number in the first row
    for j, a in enumerate(first):
        below = [row[j] for row in rest if j < len(row)]
        kinds = {_kind(c) for c in below}
        if "number" in kinds and "text" not in kinds:
            if _kind(a) == "text":
                return True  # a header names its number columns with words
            numbers = numbers or _kind(a) == "number"
    if not _new_labels(first, rest):
        return False
    return None if numbers else True


def _new_labels(first: list[str], rest: list[list[str]]) -> list[int]:
    """The text label columns (values that repeat below) whose first-row value is new."""
    found = []
    for j, a in enumerate(first):
        if _kind(a) != "text":
            continue
        below = [row[j] for row in rest if j < len(row)]
        labels = [c for c in below if _kind(c) == "text"]
        if labels and a not in below and len(set(labels)) < len(labels):
            found.append(j)
    return found


def _ambiguous_header(
    path: Path,
    line: int,
    first: list[str],
    rest: list[list[str]],
    delimiter: str,
    command: str = "train",
) -> DataError:
    """The error of a first row that may be a header or data (see :func:`load_csv`)."""
    j = _new_labels(first, rest)[0]
    return DataError(
        f"{path}: cannot tell whether the first row (line {line}: {_shown(first, delimiter)}) "
        f"is a header or data: its columns of numbers hold numbers there, as data does, "
        f"but {first[j]!r} (column {j + 1}) is found nowhere below among that column's "
        "labels, as a header's name would be; say which: header=True or header=False "
        f"(jbpnn {command}: --header or --no-header)"
    )


def _target_index(path: Path, names: list[str], target: str | int | None, header: bool) -> int:
    """The column index of ``target`` (see :func:`load_csv`)."""
    m = len(names)
    if target is None:
        return m - 1
    if isinstance(target, str):
        hits = [j for j, name in enumerate(names) if name == target]
        if len(hits) > 1:
            raise DataError(f"{path}: target column {target!r} appears {len(hits)} times")
        if hits:
            return hits[0]
        if not re.fullmatch(r"-?[0-9]+", target):
            shown = ", ".join(repr(n) for n in names[:20]) + (", ..." if m > 20 else "")
            hint = "" if header else " (the file has no header row: give the column index)"
            raise DataError(
                f"{path}: no target column named {target!r}; the columns are {shown}{hint}"
            )
        target = int(target)
    if not isinstance(target, int | np.integer) or isinstance(target, bool):
        raise ValueError(f"target must be a column name, an index or None, got {target!r}")
    if not -m <= target < m:
        raise DataError(f"{path}: target column index {target} is out of range for {m} columns")
    return int(target) % m


def _parse_feature(path: Path, line: int, name: str, cell: str) -> float:
    if cell == "":
        raise DataError(f"{path}, line {line}, column {name!r}: empty cell (missing value)")
    if _is_missing(cell):
        raise DataError(
            f"{path}, line {line}, column {name!r}: {cell!r} is not a finite number "
            "(a missing value)"
        )
    value = _number(cell)
    if value is None:
        raise DataError(
            f"{path}, line {line}, column {name!r}: {cell!r} is not a number "
            f"(features must be numeric{_number_hint(cell)})"
        )
    if not math.isfinite(value):
        raise DataError(f"{path}, line {line}, column {name!r}: {cell!r} is not a finite number")
    return value


def _number_hint(cell: str) -> str:
    if re.fullmatch(
        r"[+-]?[0-9]{1,3}(,[0-9]{3}){2,}(\.[0-9]*)?|[+-]?[0-9]{1,3},[0-9]{3}\.[0-9]*", cell
    ):
        return "; thousands separators? numbers are read without them, 1000"
    if re.fullmatch(r"[+-]?[0-9]{1,3},[0-9]{3}", cell):  # 1,500: 1.5 or 1500?
        return (
            "; a decimal comma or a thousands separator? numbers are read with a point "
            "and without separators, 1.5 or 1500"
        )
    if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", cell):
        return "; a decimal comma? numbers are read with a point, 1.5"
    if "_" in cell and _number(cell.replace("_", "")) is not None:
        return "; underscores are not read as digit separators"
    return ""


def _written_number(cell: str) -> str:
    """A hint for a number with a percent sign (``12%``, ``1,5 %``), else ``""``."""
    if re.fullmatch(r"[+-]?[0-9.,]*[0-9]\s*%", cell):
        return "; a percentage? write 12% as 0.12 or 12"
    return ""


def _parse_target(path: Path, name: str, cells: list[tuple[int, str]]) -> np.ndarray:
    """Float64 if every cell is a finite number, else strings; missing values raise."""
    for line, cell in cells:
        if cell == "":
            raise DataError(f"{path}, line {line}, target column {name!r}: empty cell")
        if _is_missing(cell):
            raise DataError(
                f"{path}, line {line}, target column {name!r}: {cell!r} is a missing value; "
                "drop the rows without a target"
            )
    values = [_number(cell) for _, cell in cells]
    numbers = sum(v is not None for v in values)
    if 0 < numbers < len(values):  # a stray "?" turned a numeric target into 42 classes
        line, cell = next(c for c, v in zip(cells, values) if v is None)
        raise DataError(
            f"{path}, line {line}, target column {name!r}: {cell!r} is text in a column of "
            f"numbers ({numbers} of {len(values)} cells); drop or fix that row (a missing "
            "target), or, for class names, write every label as text"
        )
    if not numbers:  # text labels, unless every one is a number written another way
        hints = [_number_hint(cell) or _written_number(cell) for _, cell in cells]
        if all(hints):
            line, cell = cells[0]
            raise DataError(
                f"{path}, line {line}, target column {name!r}: {cell!r} and every other "
                f"target is a number written as text{hints[0]}; write the numbers with a "
                "point and no %, or give class labels that are not numbers"
            )
    if numbers:
        for (line, cell), v in zip(cells, values):
            assert v is not None  # every cell is a number
            if not math.isfinite(v):
                raise DataError(
                    f"{path}, line {line}, target column {name!r}: {cell!r} is not finite"
                )
            if _INTEGER.fullmatch(cell) and abs(int(cell)) > 2**53:
                raise DataError(  # as float64, 9007199254740993 is 9007199254740992
                    f"{path}, line {line}, target column {name!r}: the integer {cell} is "
                    "beyond 2**53, where float64 merges neighbouring integers; write such "
                    "labels as text (e.g. with a letter)"
                )
        return np.array(values, dtype=np.float64)
    return np.array([cell for _, cell in cells], dtype=str)


def load_features(
    path: StrPath,
    feature_names: Sequence[str],
    target_name: str | None = None,
    *,
    columns: Sequence[str] | None = None,
    header: bool | str = "auto",
    delimiter: str | None = None,
) -> Table:
    """Load the feature columns a model was trained on from a CSV or NPZ file.

    With a header (a CSV's first row, or an NPZ's ``feature_names`` array) the
    columns are matched **by name**: reordered to ``feature_names``, the target
    column ``target_name`` dropped if present; a missing feature or a column the
    model does not know is refused, the message naming them. Without one (or when
    the model was trained on a file without a header, its names ``col0, col1,
    ...``), the columns are taken by position and their count must be ``d`` (the
    features) or ``d + 1`` (the target column too, at its place in ``columns``,
    the training file's column order; else the last).

    Args:
        path: a ``.csv``/``.tsv`` or ``.npz`` file (NPZ: array ``X``).
        feature_names: the model's ``d`` feature names, in its input order.
        target_name: the name of the training target (may be present, is dropped).
        columns: the training file's columns in order, the target included.
        header: ``"auto"`` (a first row made of the model's column names is a
            header, matched by name even when they are ``col0, col1, ...``; one that
            is also a row of numbers, names ``0, 1``, is refused as ambiguous; else as
            :func:`load_csv` detects it, refusing as it does a row it cannot tell),
            ``True`` or ``False``.
        delimiter: the CSV separator, one character; ``None`` detects it (a ``.tsv``:
            tab).

    Returns:
        A :class:`Table`: ``X`` float64 ``(n, d)`` in the model's order, ``y`` None.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a ``delimiter`` that is not one (:func:`check_delimiter`).
        DataError: columns that do not match, a wrong column count, a first row that
            may be a header or data, bad rows, columns and cells (as :func:`load_csv`:
            a comment line, a pandas row index, an empty column).
    """
    path = _existing_file(path)
    feature_names = [str(n) for n in feature_names]
    d = len(feature_names)
    generic = all(re.fullmatch(r"col[0-9]+", n) for n in feature_names)
    if path.suffix.lower() == ".npz":
        table = load_npz(path, has_target=False)
        named = table.feature_names != [f"col{j}" for j in range(table.X.shape[1])]
        if named and not generic:
            idx = _match_names(path, table.feature_names, feature_names, target_name)
            return Table(table.X[:, idx], None, feature_names, None, table.feature_names)
        if table.X.shape[1] != d:
            raise DataError(f"{path}: 'X' has {table.X.shape[1]} columns; the model needs {d}")
        return table._replace(feature_names=feature_names)
    if delimiter is None:
        delimiter = _DELIMITERS.get(path.suffix.lower()) or detect_delimiter(path)
    check_delimiter(delimiter)
    rows = _read_rows(path, delimiter)
    if not rows:
        raise DataError(f"{path} is empty: no rows to load")
    first_line, first = rows[0]
    # as a header, an empty name is col{j}, as load_csv names it (pandas' unnamed index)
    titles = [cell or f"col{j}" for j, cell in enumerate(first)]
    known = set(feature_names) | ({target_name} if target_name is not None else set())
    named = bool(set(titles) <= known and len(set(titles)) == len(titles))
    if header == "auto" and named and all(_kind(a) == "number" for a in first):
        raise DataError(  # the model's columns are named "0", "1": data or header?
            f"{path}: its first row (line {first_line}) {','.join(first)} reads both as the "
            "model's column names and as a row of numbers; say which: header=True or False "
            "(jbpnn predict: --header or --no-header)"
        )
    detected = header == "auto"
    if header == "auto":
        if generic:  # a model from a file without a header: its data has none, unless
            # the first row is all names (numbers over the model's columns were read as a
            # header when its label appeared nowhere below, and that row was not predicted)
            header = named or all(_kind(a) == "text" for a in first)
        else:
            rest = [row for _, row in rows[1:]]
            found = named or _looks_like_header(first, rest)
            if found is None:  # numbers, and a label found nowhere below
                raise _ambiguous_header(path, first_line, first, rest, delimiter, "predict")
            header = found
    data = rows[1:] if header else rows
    if not data:
        raise DataError(f"{path} has a header (line {first_line}) but no data rows")
    width = len(first)
    for line, row in data:
        if len(row) != width:
            raise _ragged(path, (line, row), (first_line, first), bool(header), delimiter)
    _refuse_unusable_columns(path, (first_line, first) if header else None, data, delimiter)
    if header and generic and not named:  # its names cannot be checked: by position
        warnings.warn(
            f"{path}: the model was trained on a table without a header, so its columns "
            f"have no names to match; this file's header ({','.join(first)}) is skipped "
            "and its columns are taken by position, in the training file's order",
            stacklevel=2,
        )
    if header and (named or not generic):  # by name, also a file's own col0, col1 header
        numbers = detected and any(_kind(a) == "number" for a in first)
        shown = f"line {first_line}, {_shown(first, delimiter)}" if numbers else None
        idx = _match_names(path, titles, feature_names, target_name, shown)
    elif width == d:
        idx = list(range(d))
    elif width == d + 1:
        if columns is not None and target_name in list(columns) and len(columns) == width:
            t = list(columns).index(target_name)
        elif target_name is not None and re.fullmatch(r"col[0-9]+", target_name):
            t = int(target_name[3:])
        else:
            t = width - 1
        idx = [j for j in range(width) if j != t]
    else:
        which = "its header" if header else "its first row (no header)"
        raise DataError(
            f"{path} has {width} columns ({which}, line {first_line}); the model needs {d} "
            f"features, or {d + 1} columns with its target column {target_name!r}"
        )
    names = titles if header else [f"col{j}" for j in range(width)]
    X = np.empty((len(data), d), dtype=np.float64)
    for i, (line, row) in enumerate(data):
        for k, j in enumerate(idx):
            X[i, k] = _parse_feature(path, line, names[j], row[j])
    return Table(X, None, feature_names, None, list(names))


def _match_names(
    path: Path,
    names: Sequence[str],
    feature_names: list[str],
    target_name: str | None,
    detected: str | None = None,
) -> list[int]:
    """The index in ``names`` of each of ``feature_names``; refuses missing and extra ones.

    ``detected``: the first row (``"line 1, 1.3,0.9,x"``), where it was taken for a
    header by detection and holds numbers: the message then says how to read it as data.
    """
    dupes = sorted({n for n in names if list(names).count(n) > 1})
    if dupes:
        raise DataError(f"{path}: columns {dupes} appear more than once in the header")
    missing = [n for n in feature_names if n not in names]
    extra = [n for n in names if n not in feature_names and n != target_name]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"it lacks the model's feature column(s) {missing}")
        if extra:
            parts.append(f"the model does not know its column(s) {extra}")
        target = f" (target {target_name!r})" if target_name else ""
        data = (
            f". The first row ({detected}) was taken for a header; if it is data, say so: "
            "header=False (jbpnn predict: --no-header)"
            if detected
            else ""
        )
        raise DataError(
            f"{path}: the columns do not match the model's: {'; '.join(parts)}. "
            f"The model was trained on {feature_names}{target}{data}"
        )
    return [list(names).index(n) for n in feature_names]


def load_npz(
    path: StrPath, target: str = "y", *, features: str = "X", has_target: bool = True
) -> Table:
    """Load features and targets from a NumPy ``.npz`` archive.

    Args:
        path: the file, e.g. written by ``np.savez(path, X=X, y=y)``.
        target: the name of the target array, shape ``(n,)``.
        features: the name of the feature array, shape ``(n, d)`` (or ``(n,)``: one
            feature). An optional array ``feature_names`` of ``d`` strings is used.
        has_target: ``False`` to load the features only (``y`` is then ``None``).

    Returns:
        A :class:`Table`: ``X`` float64 ``(n, d)``, ``y`` as stored (float64 if
        floating), ``feature_names`` from the file or ``col0, col1, ...``.

    Raises:
        FileNotFoundError: no such file.
        DataError: not an NPZ archive, a missing array (the message lists those in the
            file), wrong shapes, NaN/inf features or targets, a text label that is empty
            or a missing-value marker (:data:`MISSING_MARKERS`, as :func:`load_csv`).
    """
    path = _existing_file(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: not a readable .npz archive ({e})") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single .npy array, expected an .npz archive with X and y")
    with archive:
        wanted = [features, target] if has_target else [features]
        missing = [k for k in wanted if k not in archive.files]
        if missing:
            raise DataError(
                f"{path}: no array named {', '.join(map(repr, missing))}; "
                f"the file holds {sorted(archive.files)}"
            )
        try:
            X = archive[features]
            y = archive[target] if has_target else None
            names = archive["feature_names"] if "feature_names" in archive.files else None
        except ValueError as e:  # object arrays need pickle, which we never load
            raise DataError(f"{path}: cannot read without pickle ({e})") from e
        except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:  # a damaged member
            raise DataError(f"{path}: a damaged .npz archive ({e})") from e
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise DataError(
            f"{path}: {features!r} must be a numeric array (n, d), got {X.dtype} {X.shape}"
        )
    if 0 in X.shape:  # scaling (0, 0) columns then failed with an unrelated message
        raise DataError(
            f"{path}: {features!r} has shape {X.shape}: a table needs rows and feature columns"
        )
    X = X.astype(np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(f"{path}: {features!r} has NaN/inf, first at row {i}, column {j}")
    if y is not None:
        if y.ndim != 1 or len(y) != len(X):
            raise DataError(
                f"{path}: {target!r} must have shape ({len(X)},) to match {features!r}, "
                f"got {y.shape}"
            )
        if y.dtype.kind == "c":  # the cast to float would drop the imaginary part
            raise DataError(f"{path}: {target!r} has complex values; a target is real or a label")
        if y.dtype.kind == "S":  # bytes labels: as text (a model's metadata is JSON)
            try:
                y = np.char.decode(y, "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: {target!r} holds bytes that are not UTF-8 text") from e
        if y.dtype.kind not in "biufU":  # datetime64, timedelta64, structured
            raise DataError(
                f"{path}: {target!r} has dtype {y.dtype}; a target is numbers or text labels"
            )
        if y.dtype.kind == "f":
            y = y.astype(np.float64)
            if not np.all(np.isfinite(y)):
                raise DataError(f"{path}: {target!r} has NaN/inf")
        if y.dtype.kind == "U":  # as load_csv: stripped; a missing label never a class
            y = np.char.strip(y)
            missing = [str(v) for v in np.unique(y) if _is_missing(str(v).strip())]
            if missing:
                row = int(np.flatnonzero(np.isin(y, missing))[0])
                raise DataError(
                    f"{path}: {target!r} has the missing-value label {missing[0]!r} (first at "
                    f"row {row}): a label that marks a missing value, or an empty one, never "
                    "becomes a class; drop those rows or give them their label"
                )
    d = X.shape[1]
    if names is not None and names.shape != (d,):  # once replaced by col0, ... unsaid
        raise DataError(
            f"{path}: 'feature_names' has shape {names.shape}; {features!r} has {d} columns, "
            f"so it needs shape ({d},)"
        )
    if names is None:
        feature_names = [f"col{j}" for j in range(d)]
    else:
        if names.dtype.kind == "S":  # bytes: as the labels, text (not "b'a'")
            try:
                names = np.char.decode(names, "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}: 'feature_names' holds bytes that are not UTF-8") from e
        feature_names = [str(n).strip() for n in names.tolist()]
        twice = sorted({n for n in feature_names if feature_names.count(n) > 1})
        if twice:  # predict matches columns by name: a model with two 'a's is unusable
            raise DataError(
                f"{path}: 'feature_names' holds {twice} more than once; give each column "
                "its own name"
            )
    return Table(X, y, feature_names, target if y is not None else None)
