"""Fixtures shared by both packages' tests: generated data sets and the shared real data."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from dcm_extractor.sample import DicomSample, generate_dicom_dataset
from medmask.sample import MaskSample, generate_masks

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The fast header reader's strict mode: a failure it does not document as a hand-over to
# pydicom raises instead of costing only speed (dcm_extractor.reading.fastheader). Set in
# the environment, so the command-line runs and worker processes the tests start have it.
os.environ.setdefault("DCM_EXTRACT_STRICT", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def dicom_sample(tmp_path_factory: pytest.TempPathFactory) -> DicomSample:
    """The showcase DICOM data set plus two bulk cases (one folder, one zip), seed 0."""
    return generate_dicom_dataset(tmp_path_factory.mktemp("dicom"), bulk_cases=2)


@pytest.fixture(scope="session")
def mask_sample(tmp_path_factory: pytest.TempPathFactory) -> MaskSample:
    """The small generated mask set, seed 0."""
    return generate_masks(tmp_path_factory.mktemp("masks"))


def _run_in_terminal(argv: list[str]) -> tuple[int, str]:
    """Run ``argv`` with stdin, stdout and stderr on a pseudo-terminal; all it printed."""
    import pty  # POSIX only: imported when a test asks for a terminal

    master, slave = pty.openpty()
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    process.wait()
    os.close(master)
    return process.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def run_in_terminal() -> Callable[[list[str]], tuple[int, str]]:
    """Runs a command on a pseudo-terminal (for progress bars); skips where there is none."""
    if not hasattr(os, "openpty"):
        pytest.skip("pseudo-terminals are POSIX")
    return _run_in_terminal
