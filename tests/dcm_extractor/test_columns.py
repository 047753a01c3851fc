"""Extra columns: parsing, reading from real files, and the PHI classification."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from dcm_extractor.errors import OptionsError
from dcm_extractor.extractor import main
from dcm_extractor.reading.columns import (
    ColumnsError,
    identifying,
    parse_columns,
    read_columns_file,
    refused,
)


def _read(name: str):  # type: ignore[no-untyped-def]
    return dcmread(get_testdata_file(name))  # type: ignore[arg-type]


def test_keywords_tags_and_multiple_values_read_as_dicom_writes_them() -> None:
    ds = _read("CT_small.dcm")
    kvp, image_type, spacing, modality = parse_columns("KVP, ImageType,(0028,0030),(0008,0060)")
    assert [c.header for c in (kvp, image_type, spacing, modality)] == [
        "KVP", "ImageType", "(0028,0030)", "(0008,0060)",
    ]  # fmt: skip
    assert kvp.value(ds) == str(ds.KVP)
    assert image_type.value(ds) == "\\".join(ds.ImageType)
    assert spacing.value(ds) == "\\".join(str(v) for v in ds.PixelSpacing)
    assert modality.value(ds) == ds.Modality
    [contrast, absent] = parse_columns("ContrastBolusAgent,(0018,0088)")
    assert contrast.value(ds) == ds.ContrastBolusAgent
    assert absent.value(ds) == str(ds.SpacingBetweenSlices)
    del ds.SpacingBetweenSlices
    assert absent.value(ds) == ""


def test_private_tag_by_its_creator_and_as_written() -> None:
    ds = _read("CT_small.dcm")
    by_creator, as_written, other_creator = parse_columns(
        "(0009,04,GEMS_IDEN_01),(0009,1004),(0009,04,NOBODY)"
    )
    expected = ds.private_block(0x0009, "GEMS_IDEN_01")[0x04].value
    assert by_creator.value(ds) == expected
    assert as_written.value(ds) == expected
    assert other_creator.value(ds) == ""


def test_sequence_paths_by_tag_and_by_keyword() -> None:
    ds = _read("rtplan.dcm")
    beam = ds.BeamSequence
    by_tag, by_keyword, second, beyond = parse_columns(
        "(300A,00B0)[0].(300A,00C2),BeamSequence[0].BeamName,BeamSequence[1].BeamName,"
        "BeamSequence[99].BeamName"
    )
    assert by_tag.value(ds) == beam[0].BeamName
    assert by_keyword.value(ds) == beam[0].BeamName
    assert second.value(ds) == (beam[1].BeamName if len(beam) > 1 else "")
    assert beyond.value(ds) == ""


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SeriesDescription,KVPP", "unknown DICOM keyword 'KVPP'"),
        ("(00G8,0060)", "is not a keyword or a tag"),
        ("BeamSequence", "is a sequence"),
        ("Modality.BeamName", "is not a sequence"),
        ("(0008,04,CREATOR)", "is not private"),
        ("BeamSequence[0]..BeamName", "an empty step"),
    ],
)
def test_bad_columns_are_usage_errors_naming_the_entry(text: str, message: str) -> None:
    with pytest.raises(ColumnsError, match=message.replace("(", r"\(")) as caught:
        parse_columns(text)
    assert isinstance(caught.value, OptionsError) and caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("Kvp", "(did you mean 'KVP'?)"),  # another case
        ("SliceThicknes", "did you mean 'SliceThickness'"),  # a letter missing
        ("Zzyzx", None),  # nothing close: no guess
    ],
)
def test_a_misspelt_keyword_gets_the_closest_ones(text: str, hint: str | None) -> None:
    with pytest.raises(ColumnsError) as caught:
        parse_columns(text)
    message = str(caught.value)
    assert f"unknown DICOM keyword {text!r}" in message
    assert (hint in message) if hint else "did you mean" not in message


def test_columns_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "columns.txt"
    path.write_text("# scanner\nKVP\n\n(0009,04,GEMS_IDEN_01)  # product\n", encoding="utf-8")
    assert [c.header for c in read_columns_file(path)] == ["KVP", "(0009,04,GEMS_IDEN_01)"]
    with pytest.raises(ColumnsError, match="cannot be read"):
        read_columns_file(tmp_path / "missing.txt")
    notepad = tmp_path / "notepad.txt"  # Windows Notepad's UTF-8: a byte-order mark, CRLF
    notepad.write_bytes(
        b"\xef\xbb\xbfPatientName\r\nSeriesDescription # \xe5\xba\x8f\xe5\x88\x97\r\n"
    )
    assert [c.header for c in read_columns_file(notepad)] == ["PatientName", "SeriesDescription"]
    ansi = tmp_path / "ansi.txt"  # Notepad's "ANSI" on a Chinese Windows: GBK
    ansi.write_bytes("PatientName\r\nKVP # 管电压\r\n".encode("gbk"))
    with pytest.raises(ColumnsError, match=r"not UTF-8 text \(byte 0xb9 at 19\): save it as UTF-8"):
        read_columns_file(ansi)


def test_identifying_columns_are_named_with_the_reason() -> None:
    safe = parse_columns("KVP,SliceThickness,ImageType,Modality,BeamSequence[0].BeamNumber")
    assert [identifying(c) for c in safe] == [None] * len(safe)
    phi = parse_columns(
        "PatientName,OperatorsName,AcquisitionDate,SeriesTime,InstitutionName,"
        "SeriesDescription,(0009,1004),(0009,04,GEMS_IDEN_01),"
        "RequestAttributesSequence[0].RequestedProcedureCodeSequence[0].CodeValue"
    )
    reasons = refused(phi)
    assert len(reasons) == len(phi)
    assert reasons[0] == "PatientName: PatientName is a person's name"
    assert "date or time" in reasons[2] and "date or time" in reasons[3]
    assert "Table E.1-1" in reasons[4] and "Table E.1-1" in reasons[5]
    assert "private" in reasons[6] and "private" in reasons[7]
    assert "RequestAttributesSequence" in reasons[8]  # a sequence of identifying items


# -- through the command line ------------------------------------------------------------

_COLUMNS = "KVP,ImageType,(0009,04,GEMS_IDEN_01),(0008,1140)[0].(0008,1155),InstitutionName"


def _case_of_ct_files(root: Path, count: int = 3) -> Path:
    """A case of CT_small copies (GE private block kept) with a referenced-image sequence."""
    case = root / "cases" / "Case_A"
    case.mkdir(parents=True)
    for number in range(1, count + 1):
        ds = _read("CT_small.dcm")
        ds.SOPInstanceUID = generate_uid()
        reference = Dataset()
        reference.ReferencedSOPClassUID = ds.SOPClassUID
        reference.ReferencedSOPInstanceUID = f"1.2.3.{number}"
        ds.ReferencedImageSequence = Sequence([reference])
        ds.ImagePositionPatient = [0.0, 0.0, 2.5 * number]
        ds.save_as(case / f"IM{number}.dcm")
    return case.parent


def _run(data: Path, out: Path, *extra: str) -> int:
    argv = ["-d", str(data), "-o", str(out), "--log", str(out.parent / "log"), "-q"]
    return main([*argv, *extra])


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_columns_reach_the_case_and_series_tables_as_pydicom_reads_them(tmp_path: Path) -> None:
    data = _case_of_ct_files(tmp_path)
    out = tmp_path / "out"
    assert _run(data, out, "--merge-all", "--series", "--columns", _COLUMNS) == 0
    first = dcmread(sorted((data / "Case_A").iterdir())[0])
    expected = {
        "KVP": str(first.KVP),
        "ImageType": "\\".join(first.ImageType),
        "(0009,04,GEMS_IDEN_01)": str(first.private_block(0x0009, "GEMS_IDEN_01")[0x04].value),
        "(0008,1140)[0].(0008,1155)": "1.2.3.1",
        "InstitutionName": str(first.get("InstitutionName", "")),
    }
    assert expected["(0009,04,GEMS_IDEN_01)"]  # the private value is really there
    (row,) = _csv(out / "all_cases.csv")
    assert list(row)[16:] == list(expected)  # after the fixed 16, in the order given
    assert {k: row[k] for k in expected} == expected
    (series,) = _csv(out / "all_series.csv")
    assert series["ImageType"] == expected["ImageType"]  # a standard column: not twice
    assert list(series).count("ImageType") == 1
    assert series["(0009,04,GEMS_IDEN_01)"] == expected["(0009,04,GEMS_IDEN_01)"]
    assert series["ImageCount"] == "3" and series["SliceSpacing"] == "2.5"
    shared = _csv(out / "all_cases_desensitized.csv")[0]
    assert shared["(0009,04,GEMS_IDEN_01)"] == "" and shared["InstitutionName"] == ""
    assert shared["KVP"] == expected["KVP"]  # not identifying: kept


def test_de_identified_runs_refuse_identifying_columns_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _case_of_ct_files(tmp_path, count=1)
    for entry in ("InstitutionName", "(0009,04,GEMS_IDEN_01)", "AcquisitionDate",
                  "RequestAttributesSequence[0].RequestedProcedureID"):  # fmt: skip
        code = _run(data, tmp_path / "refused", "--desensitize", "--columns", f"KVP,{entry}")
        err = capsys.readouterr().err
        assert code == 2, entry
        assert entry in err and "--allow-phi-columns" in err and "Traceback" not in err
        assert not (tmp_path / "refused" / "all_cases.csv").exists()
    out = tmp_path / "allowed"
    code = _run(data, out, "--desensitize", "--merge-all", "--allow-phi-columns",
                "--columns", "InstitutionName,(0009,04,GEMS_IDEN_01)")  # fmt: skip
    assert code == 0
    (row,) = _csv(out / "all_cases.csv")
    assert row["(0009,04,GEMS_IDEN_01)"] != ""
    assert row["PatientName"] != str(dcmread(next((data / "Case_A").iterdir())).PatientName)


def test_unknown_keywords_and_unreadable_column_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _case_of_ct_files(tmp_path, count=1)
    assert _run(data, tmp_path / "o", "--columns", "KVP,SliceThicknes") == 2
    assert "SliceThicknes" in capsys.readouterr().err
    assert _run(data, tmp_path / "o", "--columns-file", str(tmp_path / "missing.txt")) == 2
    assert "missing.txt" in capsys.readouterr().err
