"""medmask 0.1.3's ``medmask.core.mapping``; now :mod:`medmask.mapping`."""

from __future__ import annotations

from ..mapping import LabelMapping

__all__ = ["LabelMapping"]
