"""``python -m jbpnn``: the command line (see :mod:`jbpnn.cli`)."""

import sys

from jbpnn import _previous_sigint, _starting

_starting.hold()  # still starting: jbpnn.cli loads below
from jbpnn.cli import main as _cli_main  # noqa: E402

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """The ``jbpnn`` command: :func:`jbpnn.cli.main`, which handles Ctrl-C from here."""
    _starting.release(_previous_sigint or _starting.signal.default_int_handler)
    return _cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
