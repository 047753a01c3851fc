"""Modules imported on first use (medmask.lazy): not before, once, from any thread."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from medmask.lazy import lazy_module

RACE = textwrap.dedent(
    """
    import sys, threading
    from medmask.lazy import lazy_module
    name, attribute = sys.argv[1], sys.argv[2]
    module = lazy_module(name)
    assert name not in sys.modules, "imported before first use"
    barrier = threading.Barrier(8)
    got, errors = [], []
    def use():
        barrier.wait()  # every thread asks at once, while the module is not imported yet
        try:
            got.append(getattr(module, attribute))
        except Exception as err:
            errors.append(repr(err))
    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    real = getattr(sys.modules[name], attribute)
    print(len(errors), errors[:1], all(value is real for value in got), len(got))
    """
)


@pytest.mark.parametrize(("name", "attribute"), [("nibabel", "Nifti1Image"), ("PIL.Image", "open")])
def test_threads_that_first_use_a_module_at_once_all_get_it(name: str, attribute: str) -> None:
    """Python 3.11's LazyLoader let the other threads see the module empty while one
    executed it: 7 of 8 threads got "module 'nibabel' has no attribute 'Nifti1Image'"
    (packs run by two threads of one Dask worker failed so)."""
    done = subprocess.run(
        [sys.executable, "-c", RACE, name, attribute], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["0", "[]", "True", "8"], done.stdout + done.stderr


def test_a_module_not_installed_is_said_at_once() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_module_here"):
        lazy_module("no_such_module_here")
    assert lazy_module("json") is sys.modules["json"]  # (imported already: itself)
