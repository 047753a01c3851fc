"""The folders are the layers: no module imports from a layer above its own, and no
import circle, lazy imports inside functions included (read from the source with ast).

    base (errors, version, deprecation) < format < model < codecs < files < exchange
    < ops, sample < cli < the package itself and the 0.1.3 shims (core, storage, dicom)
"""

from __future__ import annotations

import ast
from pathlib import Path

import medmask

PACKAGE = Path(medmask.__file__).parent
FLOORS = [
    ("errors", "version", "deprecation"),
    ("format",),
    ("model",),
    ("codecs",),
    ("files",),
    ("exchange",),
    ("ops", "sample"),
    ("cli",),
    ("", "__main__", "core", "storage", "dicom"),  # medmask/__init__ wires the layers
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def floor(module: str) -> int:
    if module.endswith("__main__"):  # python -m medmask(.sample): the command line itself
        return len(FLOORS) - 1
    top = module.split(".")[1] if "." in module else ""
    for number, names in enumerate(FLOORS):
        if top in names:
            return number
    raise AssertionError(f"{module}: in no floor (add its folder to FLOORS)")


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The medmask modules ``module`` imports, wherever in the file (lazy ones too)."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                name = f"{target}.{alias.name}"
                found.add(name if name in known else target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != module}


def test_no_module_imports_from_a_floor_above_its_own() -> None:
    known = modules()
    upward = [
        f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
        for module, path in known.items()
        for target in imports(module, path, known)
        if floor(target) > floor(module)
    ]
    assert upward == []


def test_no_import_circle() -> None:
    known = modules()
    graph = {module: imports(module, path, known) for module, path in known.items()}
    # a package's __init__ importing its own submodules is no circle
    graph = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph.items()}
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycle = [*trail[trail.index(module) :], module]
            raise AssertionError("import circle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_model_does_no_io() -> None:
    """No file, image or DICOM library in the model (the readers are wired in)."""
    known = modules()
    banned = ("nibabel", "pydicom", "nrrd", "highdicom", "zstandard", "PIL")
    for module, path in known.items():
        if floor(module) != floor("medmask.model"):
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
