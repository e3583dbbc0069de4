"""Figures: loss curves and hyperparameter heatmaps, written as PNG (or PDF, SVG...) files.

The only module of jbpnn that imports matplotlib, and only inside the functions
(``pip install "jbpnn[plot]"``): importing jbpnn never loads it. Files are written
atomically (:func:`jbpnn.files.atomic_write`: a unique temporary file in the same
folder, ``fsync``-ed, then renamed; special and read-only files are refused).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from jbpnn.files import atomic_write

__all__ = ["figure_format", "plot_heatmap", "plot_history", "require_matplotlib"]


def require_matplotlib(what: str = "plotting") -> None:
    """Raise ImportError naming ``pip install "jbpnn[plot]"`` if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(
            f'{what} needs matplotlib, which is not installed: pip install "jbpnn[plot]"'
        ) from None


def _pyplot(what: str) -> Any:
    require_matplotlib(what)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_format(path: str | os.PathLike | BinaryIO, suffix: str | None = None) -> str:
    """The format a figure is written in: ``suffix`` (or, for a file name, its suffix:
    ``.pdf``, ``.svg``, ...), PNG without one or where what follows the last dot is no
    word (``curve_lr0.1``) (needs matplotlib).

    Raises:
        ValueError: a suffix matplotlib writes no format for (``curve.xyz`` held PNG bytes
            before), listing those it writes.
    """
    to_file = hasattr(path, "write")
    if suffix is None:
        suffix = "" if to_file else Path(path).suffix  # type: ignore[arg-type]
    kind = suffix.lower().lstrip(".")
    if not kind.isalpha():  # no suffix, or a dot in the name ("curve_lr0.1"): PNG
        return "png"
    require_matplotlib("a figure")
    from matplotlib.backend_bases import FigureCanvasBase

    known = FigureCanvasBase.get_supported_filetypes()
    if kind not in known:
        raise ValueError(
            f"cannot write a figure as {kind!r} ({path}): matplotlib writes "
            f"{', '.join(sorted(known))}; give one of those suffixes (none: PNG)"
        )
    return kind


def _save(fig: Any, plt: Any, path: str | os.PathLike | BinaryIO, kind: str) -> None:
    """Write ``fig`` to ``path`` atomically (:func:`jbpnn.files.atomic_write`), in the
    format ``kind`` (:func:`figure_format`'s: a ``curve.pdf`` held PNG bytes once); or
    into an open binary file (``io.BytesIO``: no file, not even a temporary one)."""
    to_file = hasattr(path, "write")
    try:
        if to_file:
            fig.savefig(path, format=kind)
        else:
            atomic_write(path, lambda f: fig.savefig(f, format=kind), what="write the figure to")  # type: ignore[arg-type]
    finally:
        plt.close(fig)


def plot_history(
    path: str | os.PathLike | BinaryIO,
    history: Mapping[str, np.ndarray],
    title: str,
    *,
    suffix: str | None = None,
) -> None:
    """Save the loss curves of one training as a PNG (needs matplotlib).

    Args:
        path: the file to write; its suffix names the format (PNG without one; a suffix
            matplotlib writes no format for is refused). Or an open binary file
            (``io.BytesIO``), written in the format ``suffix`` names.
        history: ``loss`` of shape ``(epochs,)`` and, when present, ``val_loss`` and
            ``val_accuracy`` of the same shape (a :class:`jbpnn.training.TrainResult`'s
            ``history``, or the result itself); for ``train_many``, one network's
            (``result[i]``). One epoch is drawn as points. The losses are drawn on a log
            axis, or on a linear one when a loss is zero or negative (a log axis would
            leave those epochs out).
        title: the figure's title.
        suffix: the format when ``path`` is an open binary file (``"png"``, ``"pdf"``,
            ``"svg"``, ...; a leading dot is accepted); PNG when None. Given with a file
            name, it replaces the name's suffix as the format. A format matplotlib does
            not write is refused (ValueError), before anything is drawn.

    Raises:
        ValueError: no ``loss``, a curve that is not 1-D (``train_many``'s whole
            history), or curves of different lengths.
    """
    curves = _curves(history)
    plt = _pyplot("the loss-curve plot")
    kind = figure_format(path, suffix)  # before anything is drawn
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    epochs = np.arange(1, len(curves["loss"]) + 1)
    dot = {"marker": "o"} if len(epochs) == 1 else {}  # one epoch: a point, not a line
    ax.plot(epochs, curves["loss"], label="train loss", **dot)
    if "val_loss" in curves:
        ax.plot(epochs, curves["val_loss"], label="validation loss", **dot)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (mean E per example)")
    losses = np.concatenate([curves[k] for k in ("loss", "val_loss") if k in curves])
    if not np.any(losses <= 0):  # a log axis drops a zero or negative loss: linear then
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if "val_accuracy" in curves:
        ax2 = ax.twinx()
        ax2.plot(
            epochs, curves["val_accuracy"], color="tab:green", ls="--", label="val accuracy", **dot
        )
        ax2.set_ylabel("validation accuracy")
        ax2.set_ylim(0, 1.0)
        ax2.legend(loc="center right")
    ax.legend(loc="upper right")
    fig.tight_layout()
    _save(fig, plt, path, kind)


def _curves(history: Any) -> dict[str, np.ndarray]:
    """The 1-D curves of ``history`` (a TrainResult's, or the TrainResult itself), checked:
    a clear error for what a figure of one training cannot show."""
    history = getattr(history, "history", history)  # a TrainResult (or a ManyResult: below)
    if not isinstance(history, Mapping) or "loss" not in history:
        raise ValueError(
            "plot_history: history must be a mapping with a 'loss' curve (TrainResult."
            f"history), got {type(history).__name__}"
            + (f" with keys {sorted(history)}" if isinstance(history, Mapping) else "")
        )
    curves = {
        k: np.asarray(history[k], np.float64)
        for k in ("loss", "val_loss", "val_accuracy")
        if k in history
    }
    loss = curves["loss"]
    if loss.ndim != 1 or loss.size == 0:
        many = " (one row per network: plot result[i].history of one)" if loss.ndim == 2 else ""
        raise ValueError(
            f"plot_history: history['loss'] must be one curve of shape (epochs,), got shape "
            f"{loss.shape}{many}"
        )
    for k, curve in curves.items():
        if curve.shape != loss.shape:
            raise ValueError(
                f"plot_history: history[{k!r}] has shape {curve.shape}, the loss {loss.shape}: "
                "the curves of one training have one value per epoch each"
            )
    return curves


def _axis(summary: list[Mapping[str, Any]], column: str, what: str) -> list[Any]:
    """The sorted values of ``column`` (numbers or names), checked for plot_heatmap."""
    for i, row in enumerate(summary):
        if column not in row:
            raise ValueError(f"plot_heatmap: row {i} has no column {column!r} ({what})")
        if row[column] is None:
            raise ValueError(f"plot_heatmap: row {i} has no value (None) in {column!r} ({what})")
    try:
        return sorted({row[column] for row in summary})
    except TypeError:
        kinds = sorted({type(row[column]).__name__ for row in summary})
        raise ValueError(
            f"plot_heatmap: the values of {column!r} ({what}) mix types {kinds} that do not "
            "sort together"
        ) from None


def _ticks(values: list[Any]) -> list[str]:
    """The tick labels of one axis, each value's own: ints and bools as ``str`` gives
    them, floats with the fewest significant digits (3 at least; ``repr`` where that is
    shorter) that keep the axis' labels distinct (0.3 and 0.1 + 0.2 differ), text as
    it is."""

    def label(v: Any, digits: int) -> str:
        if isinstance(v, (bool, np.bool_)):
            return str(bool(v))
        if isinstance(v, (numbers.Integral, np.integer)):
            return str(int(v))
        if isinstance(v, (numbers.Real, np.floating)):
            short, exact = f"{v:.{digits}g}", repr(float(v))
            return exact if len(exact) <= len(short) else short
        return str(v)

    for digits in range(3, 18):  # 17: every float its own text (repr where it is shorter)
        labels = [label(v, digits) for v in values]
        if len(set(labels)) == len(labels):
            break
    return labels


def plot_heatmap(
    summary: Iterable[Mapping[str, Any]],
    path: str | os.PathLike | BinaryIO,
    *,
    suffix: str | None = None,
    x: str = "lr",
    y: str = "m",
    value: str = "val_accuracy_mean",
    title: str | None = None,
    x_label: str = "learning rate",
    y_label: str = "momentum m",
    value_label: str = "validation accuracy (mean over seeds)",
) -> None:
    """Save a heatmap of ``value`` over the grid ``x`` by ``y`` as a PNG (needs matplotlib).

    Args:
        summary: one row per ``(x, y)`` cell, e.g. from
            :meth:`jbpnn.tables.ResultsTable.summarize`.
        path: the file to write; its suffix names the format (PNG without one; a suffix
            matplotlib writes no format for is refused). Or an open binary file
            (``io.BytesIO``), written in the format ``suffix`` names.
        suffix: the format when ``path`` is an open binary file (``"png"``, ``"pdf"``,
            ``"svg"``, ...; a leading dot is accepted); PNG when None. Given with a file
            name, it replaces the name's suffix as the format. A format matplotlib does
            not write is refused (ValueError), before anything is drawn.
        x: the column of the horizontal axis (numbers or names, e.g. activations).
        y: the column of the vertical axis (numbers or names).
        value: the column shown as colour and written in each cell (3 significant
            digits; ``inf``, ``-inf`` or ``nan`` where it is not finite); a cell with no
            row is drawn as ``nan``.
        title: the figure's title; None (or empty) for none.
        x_label: the label of the horizontal axis.
        y_label: the label of the vertical axis.
        value_label: the label of the colour bar.

    Raises:
        ValueError: no rows, a row without one of the columns or with None on an axis,
            axis values that do not sort together, or two rows for one cell.
    """
    summary = list(summary)  # read three times below: a generator would be empty after one
    if not summary:
        raise ValueError(
            "plot_heatmap: the summary has no rows, nothing to draw; give one row per "
            f"({x}, {y}) cell (ResultsTable.summarize)"
        )
    xs, ys = _axis(summary, x, "x"), _axis(summary, y, "y")
    for i, row in enumerate(summary):
        if value not in row:
            raise ValueError(f"plot_heatmap: row {i} has no column {value!r} (value)")
    plt = _pyplot("the heatmap")
    kind = figure_format(path, suffix)  # before anything is drawn
    cells = [(r[x], r[y]) for r in summary]
    if len(set(cells)) != len(cells):
        twice = next(c for c in cells if cells.count(c) > 1)
        raise ValueError(
            f"plot_heatmap: two rows for the cell {x}={twice[0]!r}, {y}={twice[1]!r}; give one "
            "row per cell (summarize over the other columns first)"
        )
    grid_values = np.full((len(ys), len(xs)), np.nan)
    for r in summary:
        grid_values[ys.index(r[y]), xs.index(r[x])] = r[value]
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(xs), 1.6 + 0.6 * len(ys)), dpi=120)
    image = ax.imshow(grid_values, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(xs)), _ticks(xs))
    ax.set_yticks(range(len(ys)), _ticks(ys))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    finite = grid_values[np.isfinite(grid_values)]
    middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
    for i in range(len(ys)):
        for j in range(len(xs)):
            v = grid_values[i, j]
            text = f"{v:.3g}" if np.isfinite(v) else "nan" if math.isnan(v) else f"{v}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="black" if np.isfinite(v) and v > middle else "white",
            )
    fig.colorbar(image, ax=ax, label=value_label)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    _save(fig, plt, path, kind)
