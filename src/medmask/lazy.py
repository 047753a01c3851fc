"""Heavy libraries imported on first use, so that start-up costs only what a command needs.

``medmask catalog`` or ``medmask ls`` never touch NIfTI or images, yet every command
module is imported to build the parser; nibabel alone took 0.18 s of a 0.42 s start.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

__all__ = ["lazy_module"]


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, executed on the first access to one of its attributes
    (:class:`importlib.util.LazyLoader`); at once if something imported it already.

    Raises
    ------
    ModuleNotFoundError
        ``name`` is not installed.
    """
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module
