"""Command line entry point: ``python -m jgather demo``."""

import sys

from jgather._demo import main

if __name__ == "__main__":
    sys.exit(main())
