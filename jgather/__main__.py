"""Command line entry point: ``python -m jgather demo`` (see :mod:`jgather.demo`)."""

import sys

from jgather.demo import main

if __name__ == "__main__":
    sys.exit(main())
