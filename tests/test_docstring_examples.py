"""The examples in the docstrings of both packages (numpydoc ``Examples``) run and show
what they say: documentation that could rot silently is a test."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

import dcm_extractor
import medmask


def _modules_with_examples() -> list[str]:
    """Every module of both packages whose source holds an example (``>>>``), found from
    the files, not by importing (medmask 0.1.3's module names warn once when imported)."""
    names = []
    for package in (medmask, dcm_extractor):
        folder = Path(package.__file__ or "").parent
        for path in sorted(folder.rglob("*.py")):
            if ">>> " not in path.read_text(encoding="utf-8"):
                continue
            parts = path.relative_to(folder.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert {"dcm_extractor.sources.series", "dcm_extractor.reading.charset"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_hold(name: str) -> None:
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    assert tests, f"{name}: its '>>> ' is in no docstring doctest finds"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples fail"
