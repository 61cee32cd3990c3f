"""``python -m gpuseg``: the ``gpuseg`` command without its console script (e.g. from a ``--target`` install)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
