"""medmask 0.1.3's ``medmask.storage``: file classes and helpers, now in :mod:`medmask`.

Kept so 0.1.3 imports work; importing it warns once with the new place.
"""

from __future__ import annotations

from ..deprecation import warn_deprecated
from ..files.archive import MaskArchive
from ..files.maskfile import MaskFile, load_mask, save_mask

__all__ = ["MaskArchive", "MaskFile", "load_mask", "save_mask"]

warn_deprecated("the module medmask.storage", "import MaskArchive, MaskFile, ... from medmask")
