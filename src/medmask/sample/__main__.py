"""``python -m medmask.sample OUT_DIR [options]``: same as ``medmask sample``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["sample", *sys.argv[1:]]))
