"""Write a folder of DICOM cases in the layouts users really have, with ground truth.

Showcase cases (always written unless ``showcase=False``):

============================  ===============================================================
``Smith_John/``               nested study/series folders, two studies, files with and without
                              ``.dcm``; README.txt, Thumbs.db, an empty file, a truncated
                              image and a structured report (Latin-1 name, ID ``000123``)
``王小明/``                   two zips: deflate with GBK member names and no UTF-8 flag, and
                              stored with a Thumbs.db member (GB18030 name, age ``006M``)
``LiNa_007/``                 a zip and the same images extracted beside it (UTF-8 name)
``Mueller_Anna/``             a CD export: DICOMDIR + ``PT000000/ST000000/...`` (age ``003W``)
``ChenJing_CT.zip``           top-level zip, two series (GB18030 name, no age, birth date)
``ZhaoLei.zip``               top-level zip, members at its root (GBK name)
``SunLi_split/``              one series split across two zips, and a loose series with a
                              slice missing (a gap)
============================  ===============================================================

Bulk cases (``bulk_cases=N``) alternate between a folder of series folders and one
deflated zip per case, for benchmarks.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileSet
from pydicom.uid import UID

from ..errors import SampleDataError
from .instances import InstanceFactory, SeriesPlan, derived_uid
from .patients import Patient, bulk_patient, showcase_patients
from .scanners import acquisition
from .truth import CaseTruth, DatasetTruth, JunkReason

__all__ = ["DicomSample", "generate_dicom_dataset"]

CASES_DIRNAME = "dicom_cases"
TRUTH_FILENAME = "ground_truth.json"
_ZIP_TIME = (2024, 1, 1, 0, 0, 0)  # fixed member timestamps keep zips byte-identical per seed

README_TEXT = b"Exported from PACS viewer.\r\nDo not delete this folder.\r\n"
# Thumbs.db is an OLE2 compound file: its real 8-byte signature, then filler.
THUMBS_DB = bytes.fromhex("d0cf11e0a1b11ae1") + bytes(504)


@dataclass(frozen=True)
class DicomSample:
    """Where a generated data set lives.

    Attributes
    ----------
    cases_root : Path
        The folder of case folders (pass it as ``--data-root``).
    truth_path : Path
        The ground-truth JSON beside it.
    file_count : int
        Files and zip members written, junk included.
    """

    cases_root: Path
    truth_path: Path
    file_count: int


def generate_dicom_dataset(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    showcase: bool = True,
    bulk_cases: int = 0,
    series_per_case: int = 2,
    images_per_series: int = 3,
    image_size: int = 32,
    template: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> DicomSample:
    """Generate DICOM cases under ``out_dir/dicom_cases`` and ``out_dir/ground_truth.json``.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to write into; created if missing.
    seed : int
        Same seed, same parameters, same template: byte-identical files.
    showcase : bool
        Write the showcase cases (every layout and every kind of junk).
    bulk_cases : int
        Extra cases for benchmarks; even-numbered ones are folders, odd ones zips.
    series_per_case, images_per_series : int
        Size of each bulk case (showcase series use ``images_per_series`` too).
    image_size : int
        Rows and Columns of every image; small keeps large data sets small.
    template : str or os.PathLike, optional
        A real CT file whose header every image reuses; pydicom's ``CT_small.dcm``
        by default (e.g. ``../shared/data/ct_sample/I10`` for a modern header).
    overwrite : bool
        Replace an existing ``dicom_cases`` folder instead of refusing.

    Returns
    -------
    DicomSample
        Paths of the cases root and the ground truth.

    Raises
    ------
    SampleDataError
        When ``out_dir/dicom_cases`` exists and ``overwrite`` is False.
    ValueError
        When a count or size is out of range.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     sample = generate_dicom_dataset(folder, bulk_cases=1)
    ...     print(sample.cases_root.name)
    dicom_cases
    """
    sizes = {
        "series_per_case": series_per_case,
        "images_per_series": images_per_series,
        "image_size": image_size,
    }
    for name, value in sizes.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if bulk_cases < 0:
        raise ValueError(f"bulk_cases must be >= 0, got {bulk_cases}")
    out = Path(out_dir)
    root = out / CASES_DIRNAME
    if root.exists():
        if not overwrite:
            raise SampleDataError(
                f"{root} already exists; --overwrite (overwrite=True) replaces it"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True)

    factory = InstanceFactory(seed, image_size, template)
    writer = _CaseWriter(root, factory, images_per_series)
    params = {
        "showcase": showcase,
        "bulk_cases": bulk_cases,
        "series_per_case": series_per_case,
        "images_per_series": images_per_series,
        "image_size": image_size,
        "template": Path(template).name if template is not None else "CT_small.dcm",
    }
    truth = DatasetTruth(seed, params, factory.modality, image_size)
    if showcase:
        truth.cases.extend(writer.showcase())
    rng = random.Random(seed)
    for index in range(bulk_cases):
        truth.cases.append(writer.bulk(rng, index, series_per_case))
    truth_path = out / TRUTH_FILENAME
    truth.save(truth_path)
    return DicomSample(root, truth_path, writer.file_count)


class _ZipBuilder:
    """Collects members, then writes one zip; optionally with legacy (GBK) member names."""

    def __init__(self, compression: int, legacy_encoding: str | None = None) -> None:
        self.compression = compression
        self.legacy_encoding = legacy_encoding
        self.members: list[tuple[str, bytes]] = []

    def add(self, name: str, data: bytes) -> None:
        self.members.append((name, data))

    def write(self, path: Path) -> None:
        with zipfile.ZipFile(path, "w") as archive:
            for name, data in self.members:
                info = (
                    _LegacyNameZipInfo(name, self.legacy_encoding)
                    if self.legacy_encoding
                    else zipfile.ZipInfo(name, _ZIP_TIME)
                )
                info.compress_type = self.compression
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)


class _LegacyNameZipInfo(zipfile.ZipInfo):
    """A member name stored in a legacy code page without the UTF-8 flag (bit 11).

    Windows' built-in zip tool and many Chinese archivers write names this way; readers
    must be told the encoding (``ZipFile(..., metadata_encoding="gbk")``).
    """

    def __init__(self, filename: str, encoding: str) -> None:
        super().__init__(filename, _ZIP_TIME)
        self.legacy_encoding = encoding
        self.create_system = 0  # MS-DOS, as Windows tools record it

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - overrides zipfile's
        return self.filename.encode(self.legacy_encoding), self.flag_bits & ~0x800


class _CaseWriter:
    """Writes cases under one root and records every file in the case's truth."""

    def __init__(self, root: Path, factory: InstanceFactory, images_per_series: int) -> None:
        self.root = root
        self.factory = factory
        self.n = images_per_series
        self.file_count = 0

    # -- helpers ---------------------------------------------------------------------------
    def _plan(
        self, case: str, patient: Patient, study: int, date: str, number: int, desc: str
    ) -> SeriesPlan:
        seed = self.factory.seed
        return SeriesPlan(
            patient=patient,
            study_uid=derived_uid(seed, case, "study", study),
            study_date=date,
            series_uid=derived_uid(seed, case, "study", study, "series", number),
            series_number=number,
            description=desc,
            image_count=self.n,
            acquisition=acquisition(seed, case, study, number),
        )

    def _write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.file_count += 1

    def _write_zip(self, rel: str, builder: _ZipBuilder) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        builder.write(path)
        self.file_count += len(builder.members)

    def _series_into_zip(
        self, case: CaseTruth, zip_rel: str, builder: _ZipBuilder, plan: SeriesPlan, folder: str
    ) -> None:
        for number, (uid, data) in enumerate(self.factory.series(plan), start=1):
            member = f"{folder}IM{number:04d}.dcm"
            builder.add(member, data)
            case.add_image(zip_rel, member, plan, uid)

    # -- showcase cases --------------------------------------------------------------------
    def showcase(self) -> list[CaseTruth]:
        patients = showcase_patients()
        return [
            self._nested_two_studies("Smith_John", patients["Smith_John"]),
            self._gbk_zips("王小明", patients["王小明"]),
            self._zip_and_extracted("LiNa_007", patients["LiNa_007"]),
            self._cd_export("Mueller_Anna", patients["Mueller_Anna"]),
            self._top_level_zip("ChenJing_CT", patients["ChenJing_CT"], "20240102", "ChenJing/", 2),
            self._top_level_zip("ZhaoLei", patients["ZhaoLei"], "20240115", "", 1),
            self._split_and_gap("SunLi_split", patients["SunLi_split"]),
        ]

    def _nested_two_studies(self, name: str, patient: Patient) -> CaseTruth:
        case = CaseTruth(name, patient)
        layout = [
            (
                self._plan(name, patient, 1, "20240105", 1, "Thorax"),
                "20240105_CT/1_Thorax/",
                ".dcm",
            ),
            (self._plan(name, patient, 1, "20240105", 2, "Abdomen"), "20240105_CT/2_Abdomen/", ""),
            (
                self._plan(name, patient, 2, "20240312", 1, "Thorax"),
                "20240312_CT/1_Thorax/",
                ".dcm",
            ),
        ]
        for plan, folder, suffix in layout:
            for number, (uid, data) in enumerate(self.factory.series(plan), start=1):
                rel = f"{name}/{folder}IM{number:04d}{suffix}"
                self._write(rel, data)
                case.add_image(rel, None, plan, uid)
        follow_up = layout[2][0]
        _, data = next(self.factory.series(follow_up, numbers=[self.n + 1]))
        cut = len(data) - self.factory.pixel_bytes // 2  # ends inside the pixel data
        junk: list[tuple[str, bytes, JunkReason]] = [
            (f"{name}/README.txt", README_TEXT, "not_dicom"),
            (f"{name}/20240105_CT/1_Thorax/Thumbs.db", THUMBS_DB, "not_dicom"),
            (f"{name}/20240105_CT/2_Abdomen/IM9999", b"", "empty"),
            (f"{name}/20240312_CT/1_Thorax/IM{self.n + 1:04d}.dcm", data[:cut], "truncated"),
            (
                f"{name}/20240312_CT/SR0001.dcm",
                self.factory.structured_report(follow_up)[1],
                "non_image",
            ),
        ]
        for rel, payload, reason in junk:
            self._write(rel, payload)
            case.add_junk(rel, None, reason)
        return case

    def _gbk_zips(self, name: str, patient: Patient) -> CaseTruth:
        case = CaseTruth(name, patient)
        plain = self._plan(name, patient, 1, "20240220", 1, "平扫")
        contrast = self._plan(name, patient, 1, "20240220", 2, "增强")
        gbk_rel, stored_rel = f"{name}/CT平扫.zip", f"{name}/CT增强.zip"
        gbk = _ZipBuilder(zipfile.ZIP_DEFLATED, legacy_encoding="gbk")
        self._series_into_zip(case, gbk_rel, gbk, plain, f"{name}/平扫/")
        self._write_zip(gbk_rel, gbk)
        stored = _ZipBuilder(zipfile.ZIP_STORED)
        self._series_into_zip(case, stored_rel, stored, contrast, "SE2/")
        stored.add("SE2/Thumbs.db", THUMBS_DB)
        case.add_junk(stored_rel, "SE2/Thumbs.db", "not_dicom")
        self._write_zip(stored_rel, stored)
        return case

    def _zip_and_extracted(self, name: str, patient: Patient) -> CaseTruth:
        case = CaseTruth(name, patient)
        plan = self._plan(name, patient, 1, "20240311", 1, "Chest")
        zip_rel = f"{name}/LiNa_CT.zip"
        builder = _ZipBuilder(zipfile.ZIP_DEFLATED)
        for number, (uid, data) in enumerate(self.factory.series(plan), start=1):
            member = f"CT/IM{number:04d}.dcm"
            builder.add(member, data)
            case.add_image(zip_rel, member, plan, uid)
            self._write(f"{name}/{member}", data)
            case.add_duplicate(f"{name}/{member}", plan, uid, zip_rel)
        self._write_zip(zip_rel, builder)
        return case

    def _cd_export(self, name: str, patient: Patient) -> CaseTruth:
        case = CaseTruth(name, patient)
        plan = self._plan(name, patient, 1, "20240131", 1, "Chest")
        fileset = FileSet()
        fileset.UID = UID(derived_uid(self.factory.seed, name, "fileset"))
        fileset.ID = "MEDKITCD"
        for _, data in self.factory.series(plan):
            fileset.add(dcmread(io.BytesIO(data)))
        case_dir = self.root / name
        fileset.write(case_dir)
        _discard_staging(fileset)
        for instance in fileset:
            inside = Path(instance.path).relative_to(case_dir.resolve()).as_posix()
            rel = f"{name}/{inside}"
            case.add_image(rel, None, plan, str(instance.SOPInstanceUID))
            self.file_count += 1
        case.add_junk(f"{name}/DICOMDIR", None, "dicomdir")
        self.file_count += 1
        return case

    def _split_and_gap(self, name: str, patient: Patient) -> CaseTruth:
        """One series split across two zips (a DVD export in parts), and a loose series
        missing its middle slice (a gap the series table must show)."""
        case = CaseTruth(name, patient)
        split = self._plan(name, patient, 1, "20231120", 1, "动脉期")
        parts = (range(1, self.n + 1), range(self.n + 1, 2 * self.n + 1))
        for part, numbers in enumerate(parts, start=1):
            zip_rel = f"{name}/{name}_part{part}.zip"
            builder = _ZipBuilder(zipfile.ZIP_DEFLATED)
            for number, (uid, data) in zip(
                numbers, self.factory.series(split, numbers), strict=True
            ):
                member = f"SE1/IM{number:04d}.dcm"
                builder.add(member, data)
                case.add_image(zip_rel, member, split, uid)
            self._write_zip(zip_rel, builder)
        gap = self._plan(name, patient, 1, "20231120", 2, "Gap")
        kept = [1, 2, *range(4, self.n + 4)]  # slice 3 missing: the steps are 5, 10, 5 ... mm
        for number, (uid, data) in zip(kept, self.factory.series(gap, kept), strict=True):
            rel = f"{name}/SE2/IM{number:04d}.dcm"
            self._write(rel, data)
            case.add_image(rel, None, gap, uid)
        case.gaps.add(gap.series_uid)
        return case

    def _top_level_zip(
        self, name: str, patient: Patient, date: str, prefix: str, series: int
    ) -> CaseTruth:
        zip_rel = f"{name}.zip"
        case = CaseTruth(name, patient, top_level_zip=zip_rel)
        builder = _ZipBuilder(zipfile.ZIP_DEFLATED)
        for number in range(1, series + 1):
            plan = self._plan(name, patient, 1, date, number, "CT")
            folder = f"{prefix}SE{number}/" if series > 1 else prefix
            self._series_into_zip(case, zip_rel, builder, plan, folder)
        self._write_zip(zip_rel, builder)
        return case

    # -- bulk cases ------------------------------------------------------------------------
    def bulk(self, rng: random.Random, index: int, series: int) -> CaseTruth:
        name, patient = bulk_patient(rng, index)
        case = CaseTruth(name, patient)
        date = f"2024{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        plans = [self._plan(name, patient, 1, date, k, f"Series {k}") for k in range(1, series + 1)]
        if index % 2 == 0:
            for plan in plans:
                for number, (uid, data) in enumerate(self.factory.series(plan), start=1):
                    rel = f"{name}/SE{plan.series_number}/IM{number:04d}.dcm"
                    self._write(rel, data)
                    case.add_image(rel, None, plan, uid)
        else:
            zip_rel = f"{name}/{name}.zip"
            builder = _ZipBuilder(zipfile.ZIP_DEFLATED)
            for plan in plans:
                self._series_into_zip(case, zip_rel, builder, plan, f"SE{plan.series_number}/")
            self._write_zip(zip_rel, builder)
        return case


def _discard_staging(fileset: FileSet) -> None:
    """Remove the staging folder FileSet keeps until garbage collection (else a ResourceWarning)."""
    stage = getattr(fileset, "_stage", {})
    staging = stage.get("t") if isinstance(stage, dict) else None
    if staging is not None:
        staging.cleanup()
