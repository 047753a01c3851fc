"""Heavy libraries imported on first use, so that start-up costs only what a command needs.

``medmask catalog`` or ``medmask ls`` never touch NIfTI or images, yet every command
module is imported to build the parser; nibabel alone took 0.18 s of a 0.42 s start.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["lazy_module"]


class _Deferred(ModuleType):
    """A stand-in for a module not imported yet: the first attribute asked of it imports
    the module (:func:`importlib.import_module`, under Python's import lock, so threads
    asking at once all wait for the one import) and copies its attributes here, so that
    later lookups are plain ones; what the module gains later is asked of it.

    Python 3.11's :class:`importlib.util.LazyLoader`, used here before, is not safe for
    threads (CPython gh-114763, fixed in 3.12.3): while one thread executed the module the
    others saw it empty ("module 'nibabel' has no attribute 'Nifti1Image'"), so packs run
    by two threads of one Dask worker failed.
    """

    def __getattr__(self, attr: str) -> Any:
        real = importlib.import_module(self.__name__)
        if not self.__dict__.get("_copied_from_the_module"):
            self.__dict__.update(real.__dict__)
            self.__dict__["_copied_from_the_module"] = True
        return getattr(real, attr)


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, imported on the first access to one of its attributes
    (safe when threads make it at once); at once if something imported it already.

    Raises
    ------
    ModuleNotFoundError
        ``name`` is not installed.
    """
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return _Deferred(name)
