"""``python -m autometa``: the ``autometa`` command."""

import sys

from autometa.cli import main

if __name__ == "__main__":
    sys.exit(main())
