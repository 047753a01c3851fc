"""Realistic, seeded DICOM sample data with ground truth, for the demo, tests and benchmarks.

Run ``python -m dcm_extractor.sample OUT_DIR`` or call :func:`generate_dicom_dataset`.
"""

from __future__ import annotations

from .dataset import DicomSample, generate_dicom_dataset
from .instances import default_template
from .patients import Patient, age_in_years, showcase_patients
from .truth import TRUTH_FORMAT

__all__ = [
    "TRUTH_FORMAT",
    "DicomSample",
    "Patient",
    "age_in_years",
    "default_template",
    "generate_dicom_dataset",
    "showcase_patients",
]
