"""``python -m jbpnn``: the command line (see :mod:`jbpnn.cli`)."""

import sys

from jbpnn.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
