"""Read a package's imports with ast (lazy ones inside functions included) to check that
its folders are floors: no import goes up, and no import circle. Used by
tests/medmask/test_layers.py and tests/dcm_extractor/test_layers.py."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from pathlib import Path

Floors = Sequence[tuple[str, ...]]


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package in folder ``package``, by dotted name."""
    found = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def floor(module: str, floors: Floors) -> int:
    """The floor of ``module``: its first sub-package's (``__main__`` modules are the
    command line, the top floor)."""
    if module.endswith("__main__"):
        return len(floors) - 1
    top = module.split(".")[1] if "." in module else ""
    for number, names in enumerate(floors):
        if top in names:
            return number
    raise AssertionError(f"{module}: in no floor (add its folder to the floors)")


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules ``module`` imports, wherever in the file."""
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


def upward_imports(package: Path, floors: Floors) -> list[str]:
    """Each import from a floor above the importing module's, as a line."""
    known = modules(package)
    return [
        f"{module} (floor {floor(module, floors)}) imports {target} (floor {floor(target, floors)})"
        for module, path in sorted(known.items())
        for target in sorted(imports(module, path, known))
        if floor(target, floors) > floor(module, floors)
    ]


def import_circle(package: Path) -> str:
    """The first import circle found, as ``a -> b -> a``; "" when there is none (a
    package's ``__init__`` importing its own submodules is no circle)."""
    known = modules(package)
    graph = {m: {t for t in imports(m, p, known) if not t.startswith(m + ".")}
             for m, p in known.items()}  # fmt: skip
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> str:
        if module in trail:
            return " -> ".join([*trail[trail.index(module) :], module])
        if module in done:
            return ""
        for target in sorted(graph[module]):
            found = visit(target, [*trail, module])
            if found:
                return found
        done.add(module)
        return ""

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return ""
