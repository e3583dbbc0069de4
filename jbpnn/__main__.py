"""``python -m jbpnn``: the command line (see :mod:`jbpnn.cli`)."""

import sys

from jbpnn import _previous_sigint, _starting
from jbpnn.cli import main as _cli_main

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """The ``jbpnn`` command: :func:`jbpnn.cli.main`, which handles Ctrl-C from here."""
    _starting.release(_previous_sigint)
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
