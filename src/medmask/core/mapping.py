"""medmask 0.1.3's ``medmask.core.mapping``; now :mod:`medmask.model.mapping`."""

from __future__ import annotations

from ..model.mapping import LabelMapping

__all__ = ["LabelMapping"]
