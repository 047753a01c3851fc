"""``python -m medmask``: the same as the ``medmask`` command."""

import sys

from .cli import main

sys.exit(main())
