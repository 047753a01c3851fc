"""Fixtures shared by both packages' tests: generated data sets and the shared real data."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcm_extractor.sample import DicomSample, generate_dicom_dataset
from medmask.sample import MaskSample, generate_masks

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


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
