"""The progress line of ``jbpnn train`` and ``jbpnn sweep``, on stderr.

:class:`ProgressBar` takes the ``progress`` dicts of :func:`jbpnn.training.train`
(``epoch``, ``epochs``, ``loss``, ``val_loss``, ``elapsed``, ``stop_reason``) and of
:func:`jbpnn.many.train_many` (``epoch``, ``epochs``, ``running``, ``elapsed``). It
shows a phase before the first chunk of epochs returns (``compiling...``: on a cold
start that is most of the wait), then the bar, the epoch, the losses, the rate
(epochs per second, measured after the first chunk so compilation is left out) and
the time left; it ends on the real last epoch and the reason training stopped.

With tqdm installed it draws a tqdm bar. Without it, one line rewritten in place:
``\\r``, the line cut to the terminal's width less one column (so it never wraps
into a new line), and padded with spaces to the length of the previous one (so no
stale characters of a longer line remain).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from typing import Any, TextIO

from jbpnn.cli.base import check_interrupted

__all__ = ["UNFINISHED", "ProgressBar", "have_tqdm", "unfinished"]


def have_tqdm() -> bool:
    """Whether tqdm can be imported."""
    try:
        import tqdm  # noqa: F401  (lazy: tqdm is optional; a missing one means the fallback)
    except ImportError:
        return False
    return True


def unfinished(error: BaseException) -> str:
    """How the line of a run that raised ``error`` ends: ``"interrupted"`` (Ctrl-C) or
    ``"failed"``."""
    return "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f}s"
    m, s = divmod(int(round(s)), 60)
    return f"{m}m{s:02d}s" if m < 60 else f"{m // 60}h{m % 60:02d}m"


# How a run that did not finish ends its line: no "done:", and the bar stays where it was.
UNFINISHED = ("interrupted", "failed")

# What a narrow terminal loses first (see ProgressBar._line).
_DROP_ORDER = ("ETA ", "epoch/s", "val ", "time", "loss ", "running")


def _dropped(field: str, prefix: str) -> bool:
    if prefix in ("epoch/s", "running"):  # "3.2 epoch/s", "3/256 running"
        return field.endswith(f" {prefix}")
    if prefix == "time":
        return field[:1].isdigit() and field[-1:] in "sm" and " " not in field
    return field.startswith(prefix)


class ProgressBar:
    """One updating progress line; call it with each progress dict, then :meth:`close`.

    Args:
        epochs: the epochs the run may take (the bar's length).
        stream: where to draw (default ``sys.stderr``).
        networks: for ``train_many``, the number of networks (shown with ``running``).
        use_tqdm: draw with tqdm (default: when it is installed).
    """

    def __init__(
        self,
        epochs: int,
        stream: TextIO | None = None,
        *,
        networks: int | None = None,
        use_tqdm: bool | None = None,
    ):
        self.epochs = epochs
        self.networks = networks
        # None: no stderr at all (2>&-, sys.stderr None): the run goes on without a bar
        self.stream = sys.stderr if stream is None else stream
        self.start = time.perf_counter()
        self.info: dict[str, Any] | None = None
        self._first: tuple[int, float] | None = None  # (epoch, elapsed) of the first chunk
        self._shown = 0  # length of the line on screen (fallback)
        self._closed = False
        self._tqdm = None
        if use_tqdm is None:
            use_tqdm = have_tqdm()
        use_tqdm = use_tqdm and self.stream is not None
        if use_tqdm:
            from tqdm import tqdm  # lazy: optional, and only when a bar is drawn with it

            self._tqdm = tqdm(
                total=epochs,
                unit="epoch",
                desc="compiling...",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
        else:
            self._draw(self._line())

    # ------------------------------------------------------------ what is shown
    def rate(self) -> float | None:
        """Epochs per second since the first chunk returned (compilation left out)."""
        if self.info is None or self._first is None:
            return None
        epoch0, t0 = self._first
        done, dt = self.info["epoch"] - epoch0, self.info["elapsed"] - t0
        return done / dt if done > 0 and dt > 0 else None

    def _fields(self, timing: bool = True) -> list[str]:
        """What follows the epoch; ``timing=False``: no rate, time or ETA (tqdm shows them)."""
        info = self.info
        if info is None:
            return ["compiling..."] if timing else []
        fields = []
        if info.get("loss") is not None:
            fields.append(f"loss {info['loss']:.4g}")
        if info.get("val_loss") is not None:
            fields.append(f"val {info['val_loss']:.4g}")
        if info.get("running") is not None:
            fields.append(f"{info['running']}/{self.networks or '?'} running")
        if not timing:
            return fields
        rate = self.rate()
        if rate is not None:
            fields.append(f"{rate:.3g} epoch/s")
        fields.append(_seconds(info["elapsed"]))
        stop = self._stop_reason()
        if stop:
            fields.append(stop if stop in UNFINISHED else f"done: {stop}")
        elif rate is not None:
            fields.append(f"ETA {_seconds((self.epochs - info['epoch']) / rate)}")
        return fields

    def _stop_reason(self) -> str | None:
        info = self.info or {}
        if info.get("stop_reason"):
            return str(info["stop_reason"])
        if info.get("running") == 0:  # at the last epoch, the networks ran out of epochs
            return "max_epochs" if info["epoch"] >= self.epochs else "every network stopped"
        if self._closed and info:
            return "max_epochs" if info["epoch"] >= self.epochs else "stopped"
        return None

    def _line(self, width: int | None = None) -> str:
        """The line to show, at most ``width`` characters (default: the terminal's less 1).

        When it does not fit, the bar goes first, then the ETA, the rate, the
        validation loss, the time, the loss and the networks running: the epoch and the
        stop reason stay (cut at the width where even they do not fit).
        """
        epoch = 0 if self.info is None else self.info["epoch"]
        if width is None:
            try:  # the terminal this line is drawn on (stdout may be redirected)
                columns = os.get_terminal_size(self.stream.fileno()).columns - 1
            except (AttributeError, OSError, ValueError):
                columns = shutil.get_terminal_size((80, 24)).columns - 1
        else:
            columns = width
        columns = max(columns, 1)
        fields = [f"epoch {epoch}/{self.epochs}", *self._fields()]
        for prefix in _DROP_ORDER:
            if len("  ".join(fields)) <= columns:
                break
            fields = [f for f in fields if not _dropped(f, prefix)]
        tail = "  ".join(fields)
        room = columns - len(tail) - 3  # "[" bar "] "
        bar = ""
        if room >= 8:
            n = min(room, 24)
            finished = self._stop_reason() not in (None, *UNFINISHED)
            done = n if finished else int(n * epoch / max(self.epochs, 1))
            bar = f"[{'#' * done}{'.' * (n - done)}] "
        return (bar + tail)[:columns]

    # ------------------------------------------------------------ drawing
    def _draw(self, line: str, end: str = "") -> None:
        if self.stream is None:
            return
        pad = " " * max(0, self._shown - len(line))
        try:
            self.stream.write(f"\r{line}{pad}{end}")
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed (2>&-), full, a broken pipe: nobody
            pass  # is watching, and the run goes on without its bar
        self._shown = 0 if end else len(line)

    def __call__(self, info: dict[str, Any]) -> None:
        """Show one progress dict of ``train`` or ``train_many`` (a Ctrl-C that a callback
        swallowed stops the run here: :func:`jbpnn.cli.base.check_interrupted`)."""
        check_interrupted()
        if self._first is None:
            self._first = (info["epoch"], info["elapsed"])
        self.info = dict(info)
        if self._tqdm is not None:
            self._tqdm.set_description("stopping" if self._stop_reason() else "training", False)
            self._tqdm.set_postfix_str(", ".join(self._fields(timing=False)), refresh=False)
            self._tqdm.update(info["epoch"] - self._tqdm.n)
        else:
            self._draw(self._line())

    def close(self, epochs_run: int | None = None, stop_reason: str | None = None) -> None:
        """End the line on the real last epoch and the stop reason (and a newline).

        Args:
            epochs_run: the epoch the run ended on (default: the last one shown).
            stop_reason: why it stopped (default: the last one shown); ``"interrupted"``
                (Ctrl-C) or ``"failed"`` (an error) end the line where the run was, with
                no "done:".
        """
        if self._closed:
            return
        self._closed = True
        info = dict(self.info or {"epoch": 0, "elapsed": time.perf_counter() - self.start})
        if epochs_run is not None:
            info["epoch"] = epochs_run
        if stop_reason is not None:
            info["stop_reason"] = stop_reason
        self.info = info
        if self._tqdm is not None:
            bar = self._tqdm
            bar.update(info["epoch"] - bar.n)
            stop = self._stop_reason()
            if info["epoch"] < self.epochs and stop not in UNFINISHED:
                bar.total = info["epoch"]  # stopped early: end full at the real last epoch
            bar.set_description(stop if stop in UNFINISHED else f"done: {stop}", False)
            bar.set_postfix_str(", ".join(self._fields(timing=False)), refresh=False)
            bar.close()
        else:
            self._draw(self._line(), end="\n")
