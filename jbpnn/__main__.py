"""``python -m jbpnn``: the command line (see :mod:`jbpnn.cli`)."""

import os
import sys

from jbpnn import _previous_sigint, _starting
from jbpnn.cli import main as _cli_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """The ``jbpnn`` command: :func:`jbpnn.cli.main`, which handles Ctrl-C from here.

    Interrupted (status 130), the process ends at once after flushing its output: a
    Ctrl-C during a compilation left XLA's compiler threads running, and the
    interpreter's shutdown beside them crashed (status 139, 6 in 10 tries) after the
    one-line message. Nothing is left to write then (files are written whole or not).
    """
    _starting.release(_previous_sigint)
    status = _cli_main(argv)
    if status == 130:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed or broken pipe: nothing to keep
                pass
        os._exit(130)
    return status


if __name__ == "__main__":
    sys.exit(main())
