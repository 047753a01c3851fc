"""The folders are the layers: no module imports from a floor above its own, no import
circle (lazy imports inside functions included):

    base (errors, version) < reading, privacy < options < sources, sample < outputs
    < runner < cli < the package, extractor.py (the original API), __main__
"""

from __future__ import annotations

from pathlib import Path

import dcm_extractor
from import_floors import import_circle, upward_imports

PACKAGE = Path(dcm_extractor.__file__).parent
FLOORS = [
    ("errors", "version"),
    ("reading", "privacy"),
    ("options",),
    ("sources", "sample"),
    ("outputs",),
    ("runner",),
    ("cli",),
    ("", "__main__", "extractor"),
]


def test_no_module_imports_from_a_floor_above_its_own() -> None:
    assert upward_imports(PACKAGE, FLOORS) == []


def test_no_import_circle() -> None:
    assert import_circle(PACKAGE) == ""
