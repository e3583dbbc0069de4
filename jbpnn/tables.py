"""Hyperparameter grids and the one-row-per-network results table.

:func:`grid` builds the columns of a grid (every combination, first axis slowest);
:class:`ResultsTable` is a small table of rows with fixed columns that prints,
sorts, summarises over seeds and round-trips through CSV and JSON, with no pandas;
its files are written atomically (:func:`jbpnn.files.atomic_write`).
:meth:`jbpnn.many.ManyResult.table` returns one.
"""

from __future__ import annotations

import csv
import decimal
import errno
import io
import itertools
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np

from jbpnn.checks import check_int, scalar_value
from jbpnn.files import atomic_write

__all__ = ["ResultsTable", "grid"]


def grid(**axes: Any) -> dict[str, np.ndarray]:
    """Every combination of the given values, as columns of equal length.

    ``grid(lr=[0.1, 0.3], m=[0.0, 0.9], seed=range(2))`` has 8 rows; the first
    axis varies slowest (as ``itertools.product``)::

        lr   0.1 0.1 0.1 0.1 0.3 0.3 0.3 0.3
        m    0.0 0.0 0.9 0.9 0.0 0.0 0.9 0.9
        seed 0   1   0   1   0   1   0   1

    A single value (not a list; a 0-d array too) is an axis of length one. Pass the
    columns to :func:`train_many`: ``seeds=g.pop("seed"), hparams=g``.

    A column of numbers (ints and floats: floats), of bools or of text is a NumPy array
    of that kind; any other column (tuples such as ``hidden=[(64, 32), (128,)]``, or a
    mix of kinds such as ``["relu", 1]`` or ``[True, 2]``) is an array of dtype object
    that holds each value as given (0-d arrays and NumPy scalars as Python scalars):
    nothing is converted to another kind.

    Returns:
        ``{name: array of shape (rows,)}`` in the order given.
    """
    if not axes:
        raise ValueError("grid needs at least one axis, e.g. grid(lr=[0.1, 0.3])")
    values = {}
    for name, v in axes.items():
        if isinstance(v, (str, bytes)) or not isinstance(v, Iterable) or getattr(v, "ndim", 1) == 0:
            v = [v]  # one value (a 0-d array included): an axis of length one
        # a 0-d array as the value it holds (NumPy's scalars keep their dtype)
        v = [
            x if isinstance(x, np.generic) or getattr(x, "ndim", None) != 0 else scalar_value(x)
            for x in v
        ]
        if not v:
            raise ValueError(f"grid axis {name!r} is empty; give at least one value")
        values[name] = v
    rows = list(itertools.product(*values.values()))
    return {name: _grid_column([r[i] for r in rows]) for i, name in enumerate(values)}


def _grid_column(column: list[Any]) -> np.ndarray:
    """One column of :func:`grid`, shape ``(rows,)``: a NumPy array of numbers, bools or
    text when every value is of that kind; else dtype object holding the values as given."""
    kinds = {_scalar_kind(v) for v in column}
    if len(kinds) == 1 and None not in kinds:
        return np.asarray(column)
    out = np.empty(len(column), dtype=object)
    for i, v in enumerate(column):  # one by one: a tuple stays one cell, not a row of cells
        out[i] = v
    return out


def _scalar_kind(v: Any) -> str | None:
    """``"bool"``, ``"number"`` (an int or a float, not a bool), ``"str"``, ``"bytes"``;
    None for anything else (a tuple, a list, an array, an object)."""
    if isinstance(v, (bool, np.bool_)):
        return "bool"
    if isinstance(v, (numbers.Real, np.number)):
        return "number"
    if isinstance(v, str):
        return "str"
    if isinstance(v, bytes):
        return "bytes"
    return None


# ---------------------------------------------------------------- results tables
class ResultsTable:
    """A small table: a list of rows (dicts) with fixed columns, no pandas needed.

    Printable (``print(table)``), sortable (:meth:`sort`), summarised over seeds
    (:meth:`summarize`) and saved as CSV or JSON (:meth:`to_csv`, :meth:`to_json`,
    read back with :meth:`from_csv`, :meth:`from_json`).

    Args:
        rows: an iterable of mappings (dicts), one per row, each with every column.
        columns: the column names, each once (a list, not one string); by default the
            first row's keys.

    Raises:
        TypeError: ``rows`` not an iterable of mappings, or ``columns`` a bare string.
        ValueError: a column named twice, or a row whose columns differ.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None):
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Iterable):
            raise TypeError(
                f"rows must be an iterable of dicts (one per row), got {type(rows).__name__}"
            )
        self.rows = []
        for i, r in enumerate(rows):
            if not isinstance(r, Mapping):
                raise TypeError(f"row {i} must be a dict of column: value, got {r!r}")
            self.rows.append(dict(r))
        if columns is None:
            columns = list(self.rows[0]) if self.rows else []
        elif isinstance(columns, (str, bytes)):
            raise TypeError(
                f"columns must be a list of column names, got the single string {columns!r} "
                f"(for one column: [{columns!r}])"
            )
        self.columns = list(columns)
        repeated = sorted({str(c) for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise ValueError(
                f"columns must name each column once; {repeated} appear more than once in "
                f"{self.columns}"
            )
        for i, row in enumerate(self.rows):
            if set(row) != set(self.columns):
                raise ValueError(
                    f"row {i} has columns {sorted(row)}, expected {sorted(self.columns)}"
                )

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, key: int | str) -> Any:
        """``table[i]`` is row ``i`` (a dict); ``table["lr"]`` a column (a list)."""
        if isinstance(key, str):
            if key not in self.columns:
                raise KeyError(f"no column {key!r}; columns are {self.columns}")
            return [r[key] for r in self.rows]
        return self.rows[key]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultsTable) or self.columns != other.columns:
            return False
        return len(self) == len(other) and all(
            all(_same(a[c], b[c]) for c in self.columns) for a, b in zip(self.rows, other.rows)
        )

    def __repr__(self) -> str:
        return f"ResultsTable({len(self)} rows, columns={self.columns})"

    def sort(self, by: str | Sequence[str], descending: bool = False) -> ResultsTable:
        """A new table sorted by one or more columns (NaN last, either direction).

        Numbers of every kind (Python's, NumPy's scalars, 0-d NumPy or JAX arrays,
        ``Decimal``) sort by value, before any text, in either direction: ``descending``
        (a bool) reverses the order of the numbers and of the texts among themselves only.
        """
        if not isinstance(descending, (bool, np.bool_)):
            raise TypeError(f"descending must be True or False, got {descending!r}")
        descending = bool(descending)  # sorted(reverse=) takes no NumPy bool
        by = [by] if isinstance(by, str) else list(by)
        for name in by:
            if name not in self.columns:
                raise KeyError(f"no column {name!r} to sort by; columns are {self.columns}")

        def missing(v: Any) -> bool:
            x = _number(v)
            return v is None or (x is not None and math.isnan(x))

        def order(v: Any) -> tuple:  # numbers of any kind by value, before anything else
            x = _number(v)
            if x is not None:
                return (0, x, "")
            return (1, 0.0, str(v))

        # one stable pass per column, the last first; each its direction, numbers before
        # text and NaN/None last in both (a string column made every column sort as text
        # when descending; reversing the whole order put text before the numbers)
        rows = list(self.rows)
        for name in reversed(by):
            key = partial(_cell_order, order, name)
            present = [r for r in rows if not missing(r[name])]
            numbers_ = sorted((r for r in present if key(r)[0] == 0), key=key, reverse=descending)
            others = sorted((r for r in present if key(r)[0] != 0), key=key, reverse=descending)
            rows = numbers_ + others + [r for r in rows if missing(r[name])]
        return ResultsTable(rows, self.columns)

    def head(self, k: int = 10) -> ResultsTable:
        """The first ``k`` rows (all of them when fewer), as a table."""
        return ResultsTable(self.rows[:k], self.columns)

    def select(self, columns: Sequence[str]) -> ResultsTable:
        """Only these columns, in this order."""
        for name in columns:
            if name not in self.columns:
                raise KeyError(f"no column {name!r}; columns are {self.columns}")
        return ResultsTable([{c: r[c] for c in columns} for r in self.rows], columns)

    def summarize(
        self, by: Sequence[str], values: Sequence[str] = ("val_accuracy",)
    ) -> ResultsTable:
        """One row per distinct value of ``by``: count, mean, std, min and max of ``values``.

        For example ``table.summarize(["lr", "m"], ["val_accuracy"])`` averages over
        seeds; ``std`` is the sample standard deviation (0 for a single value).
        ``n`` counts the group's rows, NaN included. NaN values (diverged networks) are
        left out of the figures (all NaN: the figures are NaN); infinite values are kept,
        so one ``inf`` makes the mean and max ``inf`` (and the std NaN).
        A column of ``values`` must hold numbers (None counts as NaN); one name may be
        given as a string.

        Rows whose ``by`` values are equal form one group: every NaN is one group (of
        whatever kind, after a CSV round trip too), as is None; lists and arrays are
        compared by their items (``hidden=[64, 32]``).

        Raises:
            KeyError: no such column.
            ValueError: a column of ``values`` holds something other than a number, or a
                column of ``by`` holds a value that cannot be compared (a dict).
        """
        by = [by] if isinstance(by, str) else list(by)
        values = [values] if isinstance(values, str) else list(values)
        for name in (*by, *values):  # as sort and select: the columns there are
            if name not in self.columns:
                raise KeyError(f"no column {name!r} to summarize; columns are {self.columns}")
        groups: dict[tuple, list[dict]] = {}
        for row in self.rows:
            key = tuple(_group_key(c, row[c]) for c in by)
            groups.setdefault(key, []).append(row)
        out = []
        for rows in groups.values():
            row = {c: rows[0][c] for c in by}  # the group's value as its first row holds it
            row["n"] = len(rows)
            for v in values:
                xs = np.array([_summary_number(v, r[v]) for r in rows], dtype=float)
                xs = xs[~np.isnan(xs)]  # NaN only: an inf (a diverged loss) stays in
                with np.errstate(invalid="ignore"):  # inf - inf in the std: NaN, as it is
                    row[f"{v}_mean"] = float(xs.mean()) if xs.size else math.nan
                    row[f"{v}_std"] = (
                        float(xs.std(ddof=1)) if xs.size > 1 else 0.0 if xs.size else math.nan
                    )
                row[f"{v}_min"] = float(xs.min()) if xs.size else math.nan
                row[f"{v}_max"] = float(xs.max()) if xs.size else math.nan
            out.append(row)
        stats = [f"{v}_{s}" for v in values for s in ("mean", "std", "min", "max")]
        return ResultsTable(out, [*by, "n", *stats])

    # -- text ------------------------------------------------------------
    def to_text(self, max_rows: int | None = None, digits: int = 4) -> str:
        """Aligned columns; floats with ``digits`` significant digits.

        Args:
            max_rows: print at most this many rows (an int >= 0), then a line saying how
                many more there are; None prints them all.
            digits: significant digits of a float, an int >= 1.
        """
        max_rows = check_int("max_rows", max_rows, 0, allow_none=True, none_means="every row")
        digits = check_int("digits", digits, 1)
        rows = self.rows if max_rows is None else self.rows[:max_rows]
        cells = [[_cell(r[c], digits) for c in self.columns] for r in rows]
        widths = [
            max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)
        ]
        lines = ["  ".join(c.rjust(w) for c, w in zip(self.columns, widths))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
        if max_rows is not None and len(self.rows) > max_rows:
            lines.append(f"... ({len(self.rows) - max_rows} more rows)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    # -- CSV / JSON --------------------------------------------------------
    def to_csv(self, path: str | os.PathLike | None = None) -> str:
        """CSV text with a header row (floats written exactly); also written to ``path``.

        NumPy scalars and 0-d NumPy or JAX arrays are written as the numbers they hold
        (exactly, as :meth:`to_json` writes them). A row with a carriage return in a
        cell is written with every cell quoted, so the carriage return comes back.

        Raises:
            ValueError: a cell that is an array of several values (its text would be
                NumPy's shortened repr), naming its row and column.
        """
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        # Python 3.11's csv quotes a field with "\n" but not one with a lone "\r", which
        # it then cannot read back: such a row is written with every field quoted
        quoted = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        writer.writerow(self.columns)
        for i, r in enumerate(self.rows):
            cells = [_csv_cell(r[c], i, c) for c in self.columns]
            (quoted if any("\r" in cell for cell in cells) else writer).writerow(cells)
        text = buf.getvalue()
        if path is not None:
            _write_text(path, text)
        return text

    @classmethod
    def from_csv(cls, source: str | os.PathLike) -> ResultsTable:
        """Read a table written by :meth:`to_csv` (a path, or the CSV text itself).

        Cells come back as None (empty), True/False, ints, floats (exactly as written) or
        text; a text that reads as one of the others (``"007"``, ``"True"``, ``""``) comes
        back as that value: CSV has no types (JSON keeps text as text). A string that holds
        a newline, or the empty string (an empty table), is CSV text; any other string, or
        an ``os.PathLike``, is the path of a CSV file.
        """
        text = _read_source(source, "\n", "CSV")
        reader = csv.reader(io.StringIO(text))
        try:
            columns = next(reader)
        except StopIteration:
            raise ValueError("CSV table is empty: expected a header row") from None
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(columns):
                raise ValueError(f"CSV line {line} has {len(cells)} cells, expected {len(columns)}")
            rows.append({c: _parse_cell(v) for c, v in zip(columns, cells)})
        return cls(rows, columns)

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """JSON ``{"columns": [...], "rows": [{...}, ...]}``, a row per line (NaN, inf: null).

        NumPy scalars and 0-d NumPy or JAX arrays are written as the numbers they hold.

        Raises:
            ValueError: a cell JSON cannot hold as a value (an array of several values, an
                object of another type), naming its row and column.
        """
        rows = [
            json.dumps({c: _json_cell(r[c], i, c) for c in self.columns}, allow_nan=False)
            for i, r in enumerate(self.rows)
        ]
        text = f'{{"columns": {json.dumps(self.columns)},\n "rows": [\n  ' + ",\n  ".join(rows)
        text += "\n ]\n}" if rows else "]\n}"
        if path is not None:
            _write_text(path, text + "\n")
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike) -> ResultsTable:
        """Read a table written by :meth:`to_json` (a path, or the JSON text); null -> NaN.

        A string that starts with ``{`` or ``[`` (or holds a ``{``) is JSON text; any other
        string, or an ``os.PathLike``, is the path of a JSON file.
        """
        text = _read_source(source, "{", "JSON", starts=("{", "["))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            if text is source:  # a str taken for the JSON text itself
                raise ValueError(
                    f"from_json: the string {_short(source)} was read as JSON text (it holds "
                    f"'{{' or starts with '[') and is not valid JSON: {error}; to read a file "
                    "whose path holds '{', pass it as a pathlib.Path"
                ) from None
            raise ValueError(f"from_json: {str(source)!r} is not valid JSON: {error}") from None
        if not isinstance(data, dict) or "columns" not in data or "rows" not in data:
            raise ValueError(
                'JSON table must be an object with "columns" and "rows", got '
                + (
                    f"an object with keys {sorted(data)}"
                    if isinstance(data, dict)
                    else f"a {type(data).__name__}"
                )
            )
        rows = [
            {c: math.nan if r.get(c) is None else r[c] for c in data["columns"]}
            for r in data["rows"]
        ]
        return cls(rows, data["columns"])


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


def _cell(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _refuse_array(v: Any, row: int, column: str, method: str, hint: str) -> NoReturn:
    """Raise the ValueError of a cell ``method`` cannot write: an array of several values
    or an object of another type (``v`` after :func:`scalar_value`)."""
    shape = getattr(v, "shape", None)
    what = f"an array of shape {shape}" if shape is not None else type(v).__name__
    raise ValueError(
        f"{method}: row {row}, column {column!r} holds {what} ({v!r}); a cell must be a "
        f"number, text, a bool or None ({hint})"
    )


def _csv_cell(v: Any, row: int = 0, column: str = "") -> str:
    v = scalar_value(v)  # NumPy's scalars (grid() gives them), 0-d arrays: Python's types
    if hasattr(v, "shape") and hasattr(v, "dtype"):  # str() of an array shortens it
        _refuse_array(v, row, column, "to_csv", "convert it first, e.g. with float()")
    if v is None:
        return ""  # read back as None
    return repr(v) if isinstance(v, float) else str(v)


def _parse_cell(text: str) -> Any:
    """A CSV cell's value: None (empty), True/False, an int, a float, else the text (so a
    text that reads as one of those, such as "007", comes back as that value)."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _number(v: Any) -> float | None:
    """``v`` as a float if it is a real number of any kind: Python's, NumPy's scalars,
    ``Decimal``, a 0-d NumPy or JAX array of a real dtype (bools count as 0 and 1);
    else None."""
    v = scalar_value(v)  # a NumPy scalar, a 0-d NumPy or JAX array as its Python value
    if isinstance(v, (numbers.Real, decimal.Decimal)):
        return float(v)
    return None


_NAN_KEY = object()  # the one group key of every NaN (no NaN equals another)
_SEQ_KEY = object()  # marks the key of a list or array (the tuple of its items' keys)


def _group_key(column: str, v: Any) -> Any:
    """A hashable stand-in for ``v`` that is equal for equal values: NaN of any kind as
    one key, a list or an array as the tuple of its items' keys."""
    v = scalar_value(v)
    x = _number(v)
    if x is not None and math.isnan(x):
        return _NAN_KEY
    if isinstance(v, (list, tuple)) or hasattr(v, "shape") and hasattr(v, "tolist"):
        items = v.tolist() if hasattr(v, "tolist") else v
        items = items if isinstance(items, (list, tuple)) else [items]
        return (_SEQ_KEY, tuple(_group_key(column, item) for item in items))
    try:
        hash(v)
    except TypeError:
        raise ValueError(
            f"summarize: column {column!r} holds {type(v).__name__} {v!r}, which cannot "
            "be grouped; group by columns of numbers, text, bools, tuples or lists"
        ) from None
    return v


def _summary_number(column: str, v: Any) -> float:
    """A cell of a column :meth:`ResultsTable.summarize` averages: its number (None: NaN)."""
    if v is None:
        return math.nan
    x = _number(v)
    if x is None:
        raise ValueError(
            f"summarize: column {column!r} is not numeric (it holds {v!r}); the values to "
            "summarize must be columns of numbers"
        )
    return x


def _json_cell(v: Any, row: int, column: str) -> Any:
    v = scalar_value(v)  # NumPy's scalars (grid() gives them), 0-d arrays: JSON's own types
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if not isinstance(v, (str, int, float, type(None), list, tuple, dict)):  # a tuple: a list
        _refuse_array(v, row, column, "to_json", "convert it first, e.g. with float() or .tolist()")
    return v


def _read_source(
    source: str | os.PathLike, marker: str, kind: str, starts: tuple[str, ...] = ()
) -> str:
    """The text of a table: ``source`` itself if it is text (holds ``marker``, starts with
    one of ``starts``, or is empty), else the file at that path."""
    if isinstance(source, str):
        if marker in source or source.lstrip().startswith(starts) or not source.strip():
            return source  # the text itself
    elif not isinstance(source, os.PathLike):
        raise TypeError(
            f"source must be a path to a {kind} file or the {kind} text, got "
            f"{type(source).__name__} {source!r}"
        )
    path = Path(source)
    if not path.is_file():
        folder = path.is_dir()
        found = "a folder" if folder else "no such file"
        raise (IsADirectoryError if folder else FileNotFoundError)(
            errno.EISDIR if folder else errno.ENOENT,
            f"expected a path to a {kind} file (or the {kind} text itself), got {str(source)!r}: "
            f"{found}",
        )
    with open(path, newline="") as file:  # as written: a "\r\n" in a CSV cell stays
        return file.read()


def _write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` as ``open(path, "w")`` would, but atomically (:mod:`jbpnn.files`)."""

    def write(file: BinaryIO) -> None:
        wrapper = io.TextIOWrapper(file, encoding=io.text_encoding(None))
        wrapper.write(text)
        wrapper.flush()
        wrapper.detach()  # the file is the writer's to close

    atomic_write(path, write, what="write the table to")


def _cell_order(order: Callable[[Any], tuple], name: str, row: Mapping[str, Any]) -> tuple:
    return order(row[name])
