"""``python -m dcm_extractor ...``: the same as ``dcm-extract ...``."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
