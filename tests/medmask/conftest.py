"""medmask test fixtures."""

from __future__ import annotations

import pytest

from medmask import deprecation


@pytest.fixture(autouse=True)
def fresh_deprecation_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees each old name's one-time warning afresh (restored afterwards)."""
    monkeypatch.setattr(deprecation, "_warned", set())
