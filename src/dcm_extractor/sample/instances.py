"""DICOM objects built from a real CT header template, serialized to bytes.

Every image keeps the template's header (private tags, image type, geometry) and gets
fresh, seed-derived UIDs, the patient's demographics in the patient's character set,
its series' scanner and reconstruction (``scanners.py``), and small synthetic pixel
data of a chosen size.
"""

from __future__ import annotations

import copy
import io
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from .patients import Patient
from .scanners import Acquisition

__all__ = [
    "BASIC_TEXT_SR",
    "InstanceFactory",
    "SeriesPlan",
    "default_template",
    "derived_uid",
]

BASIC_TEXT_SR: str = "1.2.840.10008.5.1.4.1.1.88.11"  # PS3.4 Annex B storage SOP class
_UID_NAMESPACE = uuid.UUID("6f1c8f0e-3f6a-5d7e-9a53-6d656b697431")  # medkit sample data


def default_template() -> str:
    """Path of pydicom's bundled ``CT_small.dcm``: a real GE CT header, available offline."""
    path = get_testdata_file("CT_small.dcm")
    if path is None:  # pragma: no cover - only when pydicom's data files are stripped
        raise FileNotFoundError("pydicom's bundled CT_small.dcm is missing; pass a template")
    return str(path)


def derived_uid(seed: int, *parts: object) -> str:
    """A UID derived from the seed and the parts: same inputs, same UID.

    ``2.25.<n>`` with ``n`` a name-based (version 5) UUID, as PS3.5 B.2 allows; the
    parts are joined with a separator so ``("a", "bc")`` and ``("ab", "c")`` differ.
    """
    name = "\x1f".join([str(seed), *map(str, parts)])
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


@dataclass(frozen=True)
class SeriesPlan:
    """One series to generate: whose it is, which study, how many images, how acquired."""

    patient: Patient
    study_uid: str
    study_date: str
    series_uid: str
    series_number: int
    description: str
    image_count: int
    acquisition: Acquisition


class InstanceFactory:
    """Makes DICOM files from one template header.

    Parameters
    ----------
    seed : int
        Seeds the UIDs and the pixel noise.
    image_size : int
        Rows and Columns of the generated images (small keeps big data sets small).
    template : str | os.PathLike[str] | None
        A real CT file whose header is reused; pydicom's ``CT_small.dcm`` when None.
    """

    def __init__(
        self, seed: int, image_size: int, template: str | os.PathLike[str] | None = None
    ) -> None:
        if image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {image_size}")
        self.seed = seed
        self.image_size = image_size
        self._rng = np.random.default_rng(seed)
        source = dcmread(template if template is not None else default_template())
        self._template = _scrub_template(source)
        syntax = source.file_meta.TransferSyntaxUID
        # Our pixels are raw little-endian words: keep the template's syntax only if it fits.
        keep = syntax.is_little_endian and not syntax.is_compressed and not syntax.is_deflated
        self._transfer_syntax = syntax if keep else ExplicitVRLittleEndian
        self.modality = str(self._template.get("Modality", ""))
        self.manufacturer = str(self._template.get("Manufacturer", ""))

    @property
    def pixel_bytes(self) -> int:
        """Size in bytes of one image's pixel data."""
        return self.image_size * self.image_size * 2

    def series(
        self, plan: SeriesPlan, numbers: Iterable[int] | None = None
    ) -> Iterator[tuple[str, bytes]]:
        """Yield ``(SOPInstanceUID, file bytes)`` per image of the series, in order.

        ``numbers`` picks InstanceNumbers (default ``1..plan.image_count``); numbers past
        the count continue the series, e.g. for a damaged extra copy.
        """
        ds = copy.deepcopy(self._template)
        _set_patient(ds, plan.patient)
        ds.StudyInstanceUID = plan.study_uid
        ds.SeriesInstanceUID = plan.series_uid
        ds.FrameOfReferenceUID = derived_uid(self.seed, plan.series_uid, "frame")
        for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
            setattr(ds, keyword, plan.study_date)
        ds.SeriesNumber = plan.series_number
        ds.SeriesDescription = plan.description
        ds.Rows = ds.Columns = self.image_size
        _set_acquisition(ds, plan.acquisition)
        step = plan.acquisition.spacing
        for number in numbers if numbers is not None else range(1, plan.image_count + 1):
            sop_uid = derived_uid(self.seed, plan.series_uid, number)
            ds.SOPInstanceUID = sop_uid
            ds.InstanceNumber = number
            ds.ImagePositionPatient = [-100.0, -100.0, -step * number]
            ds.SliceLocation = -step * number
            ds.add_new(0x7FE00010, "OW", self._pixels(number))  # PixelData, 16-bit words
            yield sop_uid, self._encode(ds)

    def structured_report(self, plan: SeriesPlan) -> tuple[str, bytes]:
        """A Basic Text SR in the plan's study: a DICOM file that is not an image."""
        ds = Dataset()
        ds.SOPClassUID = BASIC_TEXT_SR
        ds.SOPInstanceUID = derived_uid(self.seed, plan.series_uid, "sr")
        _set_patient(ds, plan.patient)
        ds.StudyInstanceUID = plan.study_uid
        ds.SeriesInstanceUID = plan.series_uid
        ds.StudyDate = ds.ContentDate = plan.study_date
        ds.Modality = "SR"
        ds.SeriesNumber = plan.series_number
        ds.InstanceNumber = 1
        ds.Manufacturer = self.manufacturer
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
        ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
        finding = Dataset()
        finding.RelationshipType = "CONTAINS"
        finding.ValueType = "TEXT"
        finding.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
        finding.TextValue = "No acute findings."
        ds.ContentSequence = Sequence([finding])
        return ds.SOPInstanceUID, self._encode(ds)

    def _pixels(self, number: int) -> bytes:
        """A smooth disc (a 'body') plus noise, so zips compress as real CT roughly does."""
        n = self.image_size
        yy, xx = np.mgrid[0:n, 0:n]
        r2 = ((yy - n / 2) ** 2 + (xx - n / 2) ** 2) / max(n / 2.2, 1.0) ** 2
        body = np.where(r2 < 1.0, 1000.0 + 40.0 * np.cos(number / 3.0 + r2 * 6.0), 24.0)
        noise = self._rng.normal(0.0, 12.0, size=(n, n))
        return np.clip(body + noise, 0, 4095).astype("<u2").tobytes()

    def _encode(self, ds: Dataset) -> bytes:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = self._transfer_syntax
        ds.file_meta = meta
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()


def _scrub_template(source: Dataset) -> Dataset:
    """Drop the template's own identities and pixels; keep everything else real."""
    ds = copy.deepcopy(source)
    for keyword in ("PixelData", "OtherPatientIDsSequence", "PatientAge", "PatientBirthDate"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    return ds


def _set_patient(ds: Dataset, patient: Patient) -> None:
    ds.SpecificCharacterSet = patient.charset
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientSex = patient.sex
    ds.PatientBirthDate = patient.birth_date
    if patient.age is not None:
        ds.PatientAge = patient.age
    elif "PatientAge" in ds:
        del ds.PatientAge


def _set_acquisition(ds: Dataset, acquisition: Acquisition) -> None:
    ds.Manufacturer = acquisition.manufacturer
    ds.ManufacturerModelName = acquisition.model
    ds.ConvolutionKernel = acquisition.kernel
    ds.KVP = acquisition.kvp
    ds.SliceThickness = ds.SpacingBetweenSlices = acquisition.slice_thickness
    if acquisition.contrast:
        ds.ContrastBolusAgent = acquisition.contrast
    elif "ContrastBolusAgent" in ds:
        del ds.ContrastBolusAgent


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item
