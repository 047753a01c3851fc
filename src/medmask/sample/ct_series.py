"""A CT series in DICOM for a voxel grid: the source images a DICOM SEG refers to.

One CT Image Storage file per slice of ``space`` (its third axis), pixel (row r, column
c) of slice k holding ``volume[c, r, k]``: the layout of a NIfTI made from the series,
so masks on ``space`` export onto it voxel for voxel. UIDs are derived from ``seed``, so
the same call writes the same files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)
from spacetransformer import Space

__all__ = ["write_ct_series"]

_FROM_TEMPLATE = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge", "StudyDate",
    "StudyTime", "StudyDescription", "AccessionNumber", "Manufacturer",
    "ManufacturerModelName", "KVP", "BodyPartExamined", "InstitutionName",
)  # fmt: skip


def write_ct_series(
    volume: NDArray[Any],
    space: Space,
    folder: str | os.PathLike[str],
    *,
    seed: str = "medmask-sample",
    tilt_degrees: float = 0.0,
    patient_name: str = "SAMPLE^PHANTOM",
    patient_id: str = "SAMPLE0001",
    template: Dataset | None = None,
) -> list[Path]:
    """Write ``volume`` (HU, on ``space``) as a CT series; return the files, slice order.

    Parameters
    ----------
    volume : numpy.ndarray
        Values in Hounsfield units, shape ``space.shape``.
    space : spacetransformer.Space
        The grid: axis 0 becomes the columns, axis 1 the rows, axis 2 the slices.
    folder : str or os.PathLike
        Created if missing; files ``CT0001.dcm`` ...
    seed : str
        Source of the UIDs (same seed: same UIDs).
    tilt_degrees : float
        Gantry tilt: each slice shifted along the column direction by ``tan(tilt)`` times
        the slice spacing, as a tilted acquisition stores it (for tests of refusal).
    patient_name, patient_id : str
        Patient module values.
    template : pydicom.dataset.Dataset, optional
        A real CT header whose patient, study and equipment attributes the slices take
        (names, IDs, dates, manufacturer, kVp...); geometry and UIDs stay ours.
    """
    shape = tuple(int(n) for n in space.shape)
    if volume.shape != shape:
        raise ValueError(f"volume shape {volume.shape} is not the space's {shape}")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    x, y, z = (
        np.asarray(d, dtype=np.float64)
        for d in (space.x_orientation, space.y_orientation, space.z_orientation)
    )
    sx, sy, sz = (float(v) for v in space.spacing)
    origin = np.asarray(space.origin, dtype=np.float64)
    shear = np.tan(np.radians(tilt_degrees)) * sz
    study, series, frame = (
        generate_uid(entropy_srcs=[seed, part]) for part in ("study", "series", "frame")
    )
    hu = np.clip(np.rint(volume), -32768, 32767).astype("<i2")
    paths = []
    for k in range(shape[2]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        instance = generate_uid(entropy_srcs=[seed, "slice", str(k)])
        ds.file_meta.MediaStorageSOPInstanceUID = instance
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        _describe(ds, instance, patient_name, patient_id, (study, series, frame), sz)
        ds.InstanceNumber = k + 1
        position = origin + k * sz * z + k * shear * y
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*x, *y)]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = shape[1], shape[0]
        ds.PixelSpacing = [f"{sy:g}", f"{sx:g}"]  # between rows, between columns
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        if template is not None:
            for keyword in _FROM_TEMPLATE:
                if keyword in template:
                    setattr(ds, keyword, template.data_element(keyword).value)  # type: ignore[union-attr]
        ds.PixelData = np.ascontiguousarray(hu[:, :, k].T).tobytes()
        path = out / f"CT{k + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _describe(
    ds: Dataset,
    instance: str,
    patient_name: str,
    patient_id: str,
    uids: tuple[str, str, str],
    thickness: float,
) -> None:
    """The attributes every slice shares (all but geometry, number and pixels)."""
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, instance
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240101"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = "medkit sample generator"
    ds.ReferringPhysicianName = ""
    ds.PatientName, ds.PatientID = patient_name, patient_id
    ds.PatientBirthDate, ds.PatientSex = "19700101", "O"
    ds.KVP = "120"
    ds.SliceThickness = f"{thickness:g}"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uids[0], uids[1]
    ds.StudyID, ds.SeriesNumber = "1", 1
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = uids[2], ""
