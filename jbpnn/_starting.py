"""Ctrl-C while the ``jbpnn`` command starts: one line and status 130, no traceback.

The command imports JAX before its own ``main`` can catch anything, about a second in
which a Ctrl-C printed an import traceback, or, landing in one of JAX's garbage-collector
callbacks, was swallowed ("Exception ignored in: _xla_gc_callback") and the run went on
and replaced the ``--save`` file. While the package loads as the command (``jbpnn ...``
or ``python -m jbpnn ...``) a Ctrl-C therefore ends the process at once: nothing has been
written yet. :func:`jbpnn.cli.main` handles Ctrl-C itself from its first line.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

__all__ = ["hold", "is_command", "release"]


def is_command() -> bool:
    """Whether this process is the ``jbpnn`` command starting: ``python -m jbpnn`` (while
    Python locates the module, ``sys.argv[0]`` is ``"-m"``) or the installed script."""
    first = sys.argv[0] if sys.argv else ""
    return first == "-m" or os.path.basename(first) in ("jbpnn", "jbpnn.exe")


def _interrupted(signum: int, frame: Any) -> None:
    words = [a for a in sys.argv[1:2] if not a.startswith("-")]
    os.write(2, f"jbpnn{''.join(' ' + w for w in words)}: interrupted\n".encode())
    os._exit(130)


def hold() -> Any:
    """Ctrl-C ends the process with one line from now on; returns the previous handler
    (None where signals cannot be set: not the main thread). A process started with
    Ctrl-C ignored (a shell's background job, ``nohup``) keeps ignoring it."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return None
    try:
        return signal.signal(signal.SIGINT, _interrupted)
    except ValueError:
        return None


def release(previous: Any) -> None:
    """Back to ``previous`` (Python's KeyboardInterrupt when none is known), if
    :func:`hold` set the handler; otherwise nothing changes."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, previous or signal.default_int_handler)
