"""``python -m dcm_extractor.sample OUT_DIR [options]``: same as ``dcm-extract sample``."""

from __future__ import annotations

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["sample", *sys.argv[1:]]))
