"""The folders are the layers: no module imports from a layer above its own, and no
import circle, lazy imports inside functions included (read from the source with ast).

    base (errors, version, deprecation) < format < model < codecs < files < exchange
    < ops, sample < cli < the package itself and the 0.1.3 shims (core, storage, dicom)
"""

from __future__ import annotations

import ast
from pathlib import Path

import medmask
from import_floors import floor, import_circle, modules, upward_imports

PACKAGE = Path(medmask.__file__).parent
FLOORS = [
    ("errors", "version", "deprecation", "lazy"),
    ("format",),
    ("model",),
    ("codecs",),
    ("files",),
    ("exchange",),
    ("ops", "sample"),
    ("cli",),
    ("", "__main__", "core", "storage", "dicom"),  # medmask/__init__ wires the layers
]


def test_no_module_imports_from_a_floor_above_its_own() -> None:
    assert upward_imports(PACKAGE, FLOORS) == []


def test_no_import_circle() -> None:
    assert import_circle(PACKAGE) == ""


def test_the_model_does_no_io() -> None:
    """No file, image or DICOM library in the model (the readers are wired in)."""
    known = modules(PACKAGE)
    banned = ("nibabel", "pydicom", "nrrd", "highdicom", "zstandard", "PIL")
    for module, path in known.items():
        if floor(module, FLOORS) != floor("medmask.model", FLOORS):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {  # `if TYPE_CHECKING:` imports name types, they load nothing
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
            for inner in ast.walk(node)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                assert not any(n.split(".")[0] in banned for n in names), (module, names)
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "open":
                raise AssertionError(f"{module}: calls open()")
