"""The installed distribution: import packages, typed markers, console scripts."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module
from importlib.metadata import distribution
from importlib.resources import files
from pathlib import Path

import pytest


@pytest.mark.parametrize("package", ["medmask", "dcm_extractor"])
def test_package_imports_and_exports(package: str) -> None:
    module = import_module(package)
    assert module.__all__
    for name in module.__all__:
        assert hasattr(module, name), name
    assert files(package).joinpath("py.typed").is_file()


def test_distribution_metadata() -> None:
    dist = distribution("medkit")
    assert dist.metadata["Requires-Python"] == ">=3.11"
    requirements = " ".join(dist.requires or [])
    for needed in ("numpy", "zstandard", "nibabel", "pydicom", "spacetransformer-core", "pyarrow"):
        assert needed in requirements
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts == {"medmask": "medmask.cli:main", "dcm-extract": "dcm_extractor.cli:main"}


@pytest.mark.parametrize("script", ["medmask", "dcm-extract"])
def test_console_scripts_run(script: str) -> None:
    executable = Path(sys.executable).parent / script
    result = subprocess.run(
        [str(executable), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert script in result.stdout


def test_spacetransformer_space_is_available() -> None:
    from spacetransformer import Space

    space = Space(shape=(4, 5, 6))
    assert tuple(space.shape) == (4, 5, 6)
