"""medmask 0.1.3's ``medmask.core``: the model classes, now in :mod:`medmask`.

Kept so 0.1.3 imports work; importing it warns once with the new place.
"""

from __future__ import annotations

from ..deprecation import warn_deprecated
from ..model.mapping import LabelMapping
from ..model.mask import SegmentationMask

__all__ = ["LabelMapping", "SegmentationMask"]

warn_deprecated("the module medmask.core", "import SegmentationMask and LabelMapping from medmask")
