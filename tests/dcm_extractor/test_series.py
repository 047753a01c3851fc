"""The series table: against the sample generator's ground truth, through the command line,
de-identified, and the slice geometry behind its gap check."""

from __future__ import annotations

import copy
import csv
import json
import math
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcm_extractor.extractor import main
from dcm_extractor.reading.columns import parse_columns
from dcm_extractor.reading.extras import SERIES_KEYWORDS, SERIES_TAGS, Extras
from dcm_extractor.reading.facts import ImageFacts
from dcm_extractor.reading.fastheader import inspect_head, read_head
from dcm_extractor.reading.fullparse import inspect_dicom
from dcm_extractor.reading.tagwalk import NEEDED
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.cases import iter_case_dirs, scan_case
from dcm_extractor.sources.series import SERIES_COLUMNS, SeriesTally, slice_geometry

SERIES = Extras(series=True)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def truth(dicom_sample: DicomSample) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(dicom_sample.truth_path.read_text(encoding="utf-8"))
    return data


def test_series_rows_equal_the_ground_truth(
    dicom_sample: DicomSample, truth: dict[str, Any]
) -> None:
    expected = {c["name"]: c["series"] for c in truth["cases"] if not c["top_level_zip"]}
    checked = ("PatientID", "StudyInstanceUID", "StudyDate", "SeriesInstanceUID", "SeriesNumber",
               "SeriesDescription", "Manufacturer", "ManufacturerModelName", "ConvolutionKernel",
               "KVP", "SliceThickness", "ContrastBolusAgent", "SliceSpacing", "ImageCount",
               "EvenlySpaced")  # fmt: skip
    for case_dir in iter_case_dirs(dicom_sample.cases_root):
        result = scan_case(case_dir, dicom_sample.cases_root, extras=SERIES)
        got = [{k: row[k] for k in checked} for row in result.series]
        want = [{k: row[k] for k in checked} for row in expected[case_dir.name]]
        assert got == want, case_dir.name
        assert [r["Sources"] for r in result.series] == [
            "; ".join(r["Sources"]) for r in expected[case_dir.name]
        ]
        assert sum(r["ImageCount"] for r in result.series) == result.images
        assert all(list(row) == SERIES_COLUMNS for row in result.series)


def test_a_split_series_is_one_row_and_an_extracted_copy_counts_once(
    dicom_sample: DicomSample, truth: dict[str, Any]
) -> None:
    root = dicom_sample.cases_root
    per_series = truth["params"]["images_per_series"]
    split = scan_case(root / "SunLi_split", root, extras=SERIES).series
    assert [r["Sources"] for r in split] == [
        "SunLi_split_part1.zip; SunLi_split_part2.zip",
        "SunLi_split.dir",
    ]
    assert split[0]["ImageCount"] == 2 * per_series
    assert (split[0]["EvenlySpaced"], split[1]["EvenlySpaced"]) == ("yes", "no")
    copy = scan_case(root / "LiNa_007", root, extras=SERIES).series  # a zip + its extracted files
    assert len(copy) == 1 and copy[0]["Sources"] == "LiNa_CT.zip"
    assert copy[0]["ImageCount"] == per_series


def test_series_values_are_the_images_values(
    dicom_sample: DicomSample, truth: dict[str, Any]
) -> None:
    root = dicom_sample.cases_root
    expected = next(c["series"] for c in truth["cases"] if c["name"] == "Smith_John")
    rows = scan_case(root / "Smith_John", root, extras=SERIES).series
    assert len(rows) == len(expected) >= 2
    for row, want in zip(rows, expected, strict=True):
        assert row["ImageType"].count("\\") >= 1
        assert row["NumberOfFrames"] == row["ImageCount"] == row["SliceCount"]
        assert row["SliceSpacing"] == want["SliceSpacing"] > 0  # slices one thickness apart
        assert row["ZExtent"] == want["SliceSpacing"] * (row["SliceCount"] - 1)
        assert row["TransferSyntaxUID"] == "1.2.840.10008.1.2.1"


def test_the_sample_mixes_scanners_and_reconstructions(truth: dict[str, Any]) -> None:
    series = [row for case in truth["cases"] for row in case["series"]]
    assert len({row["Manufacturer"] for row in series}) >= 2
    assert len({row["SliceThickness"] for row in series}) >= 3
    assert {bool(row["ContrastBolusAgent"]) for row in series} == {True, False}


def test_the_series_attributes_are_where_the_fast_reader_walks() -> None:
    assert set(SERIES_TAGS.values()) <= NEEDED
    assert set(SERIES_TAGS) == set(SERIES_KEYWORDS)


def _sample_files(dicom_sample: DicomSample) -> list[Path]:
    files = [p for p in dicom_sample.cases_root.rglob("*") if p.is_file() and p.suffix != ".zip"]
    return files + [Path(get_testdata_file(n)) for n in ("CT_small.dcm", "MR_small.dcm")]


def test_fast_and_full_readers_give_the_same_extra_values(dicom_sample: DicomSample) -> None:
    extras = Extras(True, tuple(parse_columns("KVP,PatientPosition,(0009,04,GEMS_IDEN_01),Rows")))
    compared = 0
    for path in _sample_files(dicom_sample):
        head, size = read_head(path)
        fast, handed_over = inspect_head(head, size, path.read_bytes, extras)
        full = inspect_dicom(path.read_bytes(), extras)
        if isinstance(full, ImageFacts):
            assert isinstance(fast, ImageFacts)
            assert fast.extra == full.extra, path
            compared += handed_over is None
    assert compared >= 10


def _extract(data: Path, out: Path, *extra: str) -> int:
    argv = ["-d", str(data), "-o", str(out), "--log", str(out.parent / "log"), "-q"]
    return main([*argv, *extra])


def test_the_command_line_writes_the_series_table_in_every_format(
    dicom_sample: DicomSample, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = _extract(dicom_sample.cases_root, out, "--series", "--format", "csv,json,parquet")
    assert code == 0
    rows = read_csv(out / "all_series.csv")
    assert list(rows[0]) == SERIES_COLUMNS
    records = json.loads((out / "all_series.json").read_text(encoding="utf-8"))
    table = pq.read_table(out / "all_series.parquet").to_pylist()
    assert len(rows) == len(records) == len(table)
    assert [r["SeriesInstanceUID"] for r in rows] == [r["SeriesInstanceUID"] for r in table]
    assert [int(r["ImageCount"]) for r in rows] == [r["ImageCount"] for r in records]
    order = [(int(r["ProjectID"]), r["StudyInstanceUID"], int(r["SeriesNumber"])) for r in rows]
    assert order == sorted(order)
    assert all(r["PatientID"].startswith("0") for r in rows)  # IDs stay text: 000123, 0042
    assert not (out / "all_cases.csv").exists()  # the series table needs no --merge-all


def test_de_identified_series_tables_hold_no_names_dates_or_free_text(
    dicom_sample: DicomSample, truth: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "shared"
    assert _extract(dicom_sample.cases_root, out, "--series", "--desensitize") == 0
    rows = read_csv(out / "all_series.csv")
    text = (out / "all_series.csv").read_text(encoding="utf-8")
    for case in truth["cases"]:
        assert case["name"] not in text
        assert case["patient"]["patient_id"] not in {r["PatientID"] for r in rows}
    for column in (
        "StudyDate",
        "SeriesDate",
        "SeriesTime",
        "SeriesDescription",
        "StudyDescription",
    ):
        assert {r[column] for r in rows} == {""}, column
    assert all(s.startswith("P0") for r in rows for s in r["Sources"].split("; "))
    assert rows == read_csv(out / "all_series_desensitized.csv")
    kept = tmp_path / "kept"
    code = _extract(dicom_sample.cases_root, kept, "--series", "--desensitize",
                    "--allow-phi-columns", "--keep-dates")  # fmt: skip
    assert code == 0
    allowed = read_csv(kept / "all_series.csv")
    assert "动脉期" in {r["SeriesDescription"] for r in allowed}
    assert {r["StudyDate"] for r in allowed} != {""}


def test_identified_runs_write_a_de_identified_copy(
    dicom_sample: DicomSample, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert _extract(dicom_sample.cases_root, out, "--series") == 0
    rows, shared = read_csv(out / "all_series.csv"), read_csv(out / "all_series_desensitized.csv")
    assert [r["SeriesInstanceUID"] for r in rows] == [r["SeriesInstanceUID"] for r in shared]
    assert "Smith_John.dir" in {r["Sources"] for r in rows}
    assert not any("Smith" in r["Sources"] for r in shared)


@given(
    start=st.floats(-500, 500, allow_nan=False),
    step=st.floats(0.5, 10),
    count=st.integers(4, 60),  # a slice out of four or more leaves an uneven step
    seed=st.integers(0, 1000),
)
def test_even_positions_in_any_order_are_even_and_a_missing_one_is_a_gap(
    start: float, step: float, count: int, seed: int
) -> None:
    positions = [start + step * k for k in range(count)]
    random.Random(seed).shuffle(positions)
    slices, extent, spacing, even = slice_geometry(positions + positions[:2])  # two duplicates
    assert (slices, even) == (count, "yes")
    assert spacing == pytest.approx(step, abs=1e-3)
    assert extent == pytest.approx(step * (count - 1), abs=1e-2)
    missing = sorted(positions)[1 + seed % (count - 2)]  # an inner slice
    assert slice_geometry([p for p in positions if p != missing])[3] == "no"


def test_too_few_positions_say_nothing_about_spacing() -> None:
    assert slice_geometry([]) == (0, None, None, "")
    assert slice_geometry([3.0, 3.0]) == (1, 0.0, None, "")
    assert slice_geometry([0.0, 5.0], mixed=True)[3] == "no"  # orientations differ


ORIENTATIONS = [
    "1\\0\\0\\0\\1\\0",  # axial
    "1\\0\\0\\0\\1.00001\\0",  # the same within the tolerance
    "1\\0\\0\\0\\0\\-1",  # coronal: a second orientation
    "1\\0\\0\\1\\0\\0",  # no normal (both directions the same)
    "1\\0\\0",  # not six numbers
    "",
    "a\\0\\0\\0\\1\\0",
]
POSITIONS = ["0\\0\\0", "0\\0\\2.5", "1\\-3\\5", "0\\0\\7.5", "0\\0", "x\\0\\0", "", "0\\0\\inf"]


def _geometry_image_by_image(images: list[tuple[str, str]]) -> tuple[Any, ...]:
    """The slice geometry rule followed image by image, in reading order: the first
    orientation of six numbers gives the normal; an image whose orientation is not six
    numbers gives no position; an orientation off the first makes the series mixed."""
    first: tuple[float, ...] | None = None
    normal: tuple[float, float, float] | None = None
    mixed, positions = False, []
    for orientation, position in images:
        try:
            numbers = tuple(float(v) for v in orientation.split("\\"))
        except ValueError:
            continue
        if len(numbers) != 6 or not all(map(math.isfinite, numbers)):
            continue
        if first is None:
            first = numbers
            row, column = numbers[:3], numbers[3:]
            cross = (
                row[1] * column[2] - row[2] * column[1],
                row[2] * column[0] - row[0] * column[2],
                row[0] * column[1] - row[1] * column[0],
            )
            length = math.sqrt(sum(v * v for v in cross))
            normal = (
                None if length < 1e-6 else (cross[0] / length, cross[1] / length, cross[2] / length)
            )
        elif max(abs(a - b) for a, b in zip(numbers, first, strict=True)) > 1e-4:
            mixed = True
        if normal is None:
            continue
        try:
            x, y, z = (float(v) for v in position.split("\\"))
        except ValueError:
            continue
        along = x * normal[0] + y * normal[1] + z * normal[2]
        if math.isfinite(along):
            positions.append(along)
    return slice_geometry(positions, mixed)


@given(
    st.lists(
        st.tuples(st.sampled_from(ORIENTATIONS), st.sampled_from(POSITIONS)),
        min_size=1,
        max_size=12,
    )
)
def test_the_tally_takes_the_geometry_as_the_rule_says_image_by_image(
    images: list[tuple[str, str]],
) -> None:
    tally = SeriesTally()
    for number, (orientation, position) in enumerate(images):
        extra = {
            "ImageOrientationPatient": orientation,
            "ImagePositionPatient": position,
            "TransferSyntaxUID": "1.2.840.10008.1.2.1" if number % 3 else "1.2.840.10008.1.2",
        }
        values = {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4"}
        rows = (None, 0, 512)[number % 3] if number < 4 else 256
        tally.add(ImageFacts(values, rows, rows, f"1.2.3.4.{number}", extra=extra), "a.zip")
    (row,) = tally.rows()
    expected = _geometry_image_by_image(images)
    assert (row["SliceCount"], row["ZExtent"], row["SliceSpacing"], row["EvenlySpaced"]) == (
        expected
    )
    assert row["ImageCount"] == row["NumberOfFrames"] == len(images)
    given_rows = [(None, 0, 512)[n % 3] if n < 4 else 256 for n in range(len(images))]
    first_rows = next((r for r in given_rows if r), given_rows[-1])
    assert row["Rows"] == row["Columns"] == first_rows
    syntaxes = dict.fromkeys(
        "1.2.840.10008.1.2.1" if n % 3 else "1.2.840.10008.1.2" for n in range(len(images))
    )
    assert row["TransferSyntaxUID"] == ",".join(syntaxes)


def _series_of_three(folder: Path) -> list[Path]:
    """Three images of one series: the first without ContrastBolusAgent, the next two
    with different ones; SeriesDescription differs from the second image on."""
    source = dcmread(get_testdata_file("CT_small.dcm"))
    paths = []
    for number, (agent, description) in enumerate(
        [(None, "first"), ("Omnipaque", "second"), ("Ultravist", "third")], start=1
    ):
        ds = copy.deepcopy(source)
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.8.498.{number}"
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * number]
        ds.SeriesDescription = description
        if agent is None:
            del ds.ContrastBolusAgent
        else:
            ds.ContrastBolusAgent = agent
        path = folder / f"IM{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def test_a_series_takes_each_attribute_from_the_first_image_that_has_it(tmp_path: Path) -> None:
    case = tmp_path / "root" / "case"
    case.mkdir(parents=True)
    _series_of_three(case)
    (row,) = scan_case(case, case.parent, extras=SERIES).series
    assert row["SeriesDescription"] == "first"  # the first image's, though later ones differ
    assert row["ContrastBolusAgent"] == "Omnipaque"  # the first image lacks it: the next's
    assert (row["ImageCount"], row["SliceCount"], row["SliceSpacing"]) == (3, 3, 2.5)


def test_a_reader_told_what_the_tally_holds_decodes_only_the_rest(tmp_path: Path) -> None:
    paths = _series_of_three(tmp_path)
    tally = SeriesTally()
    extras = []
    for path in paths:
        head, size = read_head(path)
        facts, handed_over = inspect_head(head, size, path.read_bytes, SERIES, tally.settled)
        assert handed_over is None and isinstance(facts, ImageFacts)
        tally.add(facts, "case.dir")
        extras.append(facts.extra)
    assert set(extras[0]) == set(SERIES_KEYWORDS) | {"TransferSyntaxUID"}
    # later images give the geometry and what no earlier image had (the agent among them)
    geometry = {"ImagePositionPatient", "ImageOrientationPatient", "TransferSyntaxUID"}
    lacking = {k for k, v in extras[0].items() if not v}
    assert "ContrastBolusAgent" in lacking and len(lacking) < len(SERIES_KEYWORDS) // 2
    assert set(extras[1]) == geometry | lacking
    assert set(extras[2]) == geometry | (lacking - {"ContrastBolusAgent"})
    full = inspect_dicom(paths[2].read_bytes(), SERIES)
    assert isinstance(full, ImageFacts)
    assert {k: full.extra[k] for k in extras[2]} == extras[2]
    (row,) = tally.rows()
    assert row["ContrastBolusAgent"] == "Omnipaque" and row["SliceCount"] == 3
