"""Privacy: keyed pseudonyms resist the dictionary attack; de-identified runs leak nothing."""

from __future__ import annotations

import csv
import itertools
import json
import os
import re
import stat
import time
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from dcm_extractor.cli import main as cli_main
from dcm_extractor.extractor import main
from dcm_extractor.privacy.pseudonyms import Pseudonymizer, desensitize_name, load_key
from dcm_extractor.sample import generate_dicom_dataset

# Pinyin and Han forms of common Chinese family and given names: an attacker's list.
SURNAMES = [
    *"王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗",
    *("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"),
    *("Xu", "Sun", "Ma", "Zhu", "Hu", "Guo", "He", "Gao", "Lin", "Luo"),
]
GIVEN = [
    *"伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平",
    *("秀英", "小明", "Wei", "Fang", "Na", "Min", "Jing", "Li", "Qiang", "Lei", "Jun"),
    *("Yang", "Yong", "Yan", "Jie", "Juan", "Tao", "Ming", "Chao", "Xiuying", "Xia", "Ping"),
    "Xiaoming",
]


def dictionary() -> dict[str, str]:
    """original-style hash -> name, for every family/given pair in both scripts."""
    table = {}
    for family, given in itertools.product(SURNAMES, GIVEN):
        for name in (f"{family}^{given}", f"{family}{given}", f"{family} {given}"):
            table[desensitize_name(name)] = name
    return table


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def cases(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    sample = generate_dicom_dataset(tmp_path / "sample", bulk_cases=6)
    truth = json.loads(sample.truth_path.read_text(encoding="utf-8"))
    return sample.cases_root, truth


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "pseudonym.key"
    assert cli_main(["keygen", str(path)]) == 0
    return path


def run(cases_root: Path, out: Path, *extra: str) -> int:
    log = str(out.parent / f"{out.name}.log")
    argv = ["-d", str(cases_root), "-o", str(out), "--merge-all", "--move-top-level-zips"]
    return main([*argv, "--log", log, *extra])


def test_dictionary_attack_recovers_compat_pseudonyms_and_not_keyed_ones(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DCM_EXTRACT_KEY", raising=False)
    root, truth = cases
    table = dictionary()
    assert (
        run(
            root,
            tmp_path / "compat",
            "--desensitize",
            "--projectid-map",
            str(tmp_path / "ids1.json"),
        )
        == 0
    )
    assert run(root, tmp_path / "keyed", "--desensitize", "--pseudonym-key-file", str(key_file),
               "--projectid-map", str(tmp_path / "ids2.json")) == 0  # fmt: skip
    recovered = {
        table[r["PatientName"]]
        for r in read_csv(tmp_path / "compat" / "all_cases.csv")
        if r["PatientName"] in table
    }
    patients = {c["patient"]["name"] for c in truth["cases"]}
    in_dictionary = {p for p in patients if desensitize_name(p) in table}
    assert len(in_dictionary) >= 6  # the bulk patients have common names
    assert recovered == in_dictionary  # every one of them is re-identified
    keyed = read_csv(tmp_path / "keyed" / "all_cases.csv")
    assert not {r["PatientName"] for r in keyed} & set(table)  # keyed: nothing recovered
    assert all(re.fullmatch(r"hash:[0-9a-f]{16}", r["PatientName"]) for r in keyed)


def _needles(truth: dict[str, Any]) -> tuple[set[bytes], list[re.Pattern[bytes]]]:
    """Every generated name in every encoding the data uses, and IDs/dates as whole tokens."""
    texts, tokens = set(), []
    for case in truth["cases"]:
        patient = case["patient"]
        family, _, given = patient["name"].partition("^")
        for text in (patient["name"], family + given):
            for encoding in ("utf-8", "gb18030", "gbk", "latin-1"):
                try:
                    texts.add(text.encode(encoding))
                except UnicodeEncodeError:
                    continue
        for value in (patient["patient_id"], patient["birth_date"]):
            if value:
                # whole tokens: not inside a longer number or a hex pseudonym ("hash:3f007a...")
                token = rb"(?<![0-9A-Za-z])" + value.encode() + rb"(?![0-9A-Za-z])"
                tokens.append(re.compile(token))
    return texts, tokens


# The summary's measured speed ("in 0.4 s (1,007 files/s)") may look like a short ID, and
# so may a log line's time stamp ("03:52:10,007": its milliseconds): both are the clock's.
_RUN_SPEED = re.compile(rb"in [0-9.]+ s \([0-9,]+ files/s\)")
_LOG_TIME = re.compile(rb"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _searchable(path: Path) -> bytes:
    """A written file's bytes; Parquet and xlsx decoded (their pages and parts are
    compressed and would hide a name from a byte search, and random compressed bytes can
    look like a short ID)."""
    if path.suffix == ".xlsx":  # a zip of XML parts: every part's bytes, unpacked
        with zipfile.ZipFile(path) as book:
            return b"\n".join(book.read(name) for name in book.namelist())
    if path.suffix != ".parquet":
        return _LOG_TIME.sub(b"", _RUN_SPEED.sub(b"", path.read_bytes()))
    table = pq.read_table(path)
    metadata = repr(table.schema.metadata).encode("utf-8")
    return metadata + "\n".join(map(str, table.to_pylist())).encode("utf-8")


def test_a_desensitized_run_writes_no_name_id_or_birth_date(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, truth = cases
    nameless = root / "王小明_no_dicom"  # a case with no DICOM object: no rows
    nameless.mkdir()
    (nameless / "readme.txt").write_text("no images here", encoding="utf-8")
    out = tmp_path / "shared_outputs"
    argv = ["--desensitize", "--export-json", "--format", "csv,json,parquet,xlsx", "--series"]
    argv += ["--instances"]
    argv += ["--pseudonym-key-file", str(key_file)]
    argv += ["--projectid-map", str(tmp_path / "private" / "ids.json")]  # kept with the key
    assert run(root, out, *argv) == 0
    assert (out / "all_cases.xlsx").is_file() and (out / "all_series.xlsx").is_file()
    instances = pq.read_table(out / "all_instances.parquet").to_pylist()
    assert instances and all(re.fullmatch(r"P\d{6}/file\d{5}", r["FilePath"]) for r in instances)
    assert all(
        r["ZipMember"] == "" or re.fullmatch(r"member\d{5}", r["ZipMember"]) for r in instances
    )
    assert not any(r["AcquisitionDate"] or r["AcquisitionTime"] for r in instances)
    console = capsys.readouterr()
    written = [*sorted(p for p in out.rglob("*") if p.is_file()), tmp_path / "shared_outputs.log"]
    assert len(written) > 10
    for (
        path
    ) in written:  # file names too: each case's files by its ProjectID, even one without rows
        assert re.fullmatch(
            r"P\d{6}(\.desensitized)?\.(csv|json)|all_\w+\.\w+|extraction_report\.csv"
            r"|deidentification\.json|shared_outputs\.log|\.dcm-extract\.lock",
            path.name,
        ), path.name
    texts, tokens = _needles(truth)
    blobs = [(p.name, _searchable(p)) for p in written]
    blobs.append(("console", _RUN_SPEED.sub(b"", (console.out + console.err).encode("utf-8"))))
    for where, data in blobs:
        for text in texts:
            assert text not in data, (where, text)
        for token in tokens:
            assert not token.search(data), (where, token.pattern)
    report = read_csv(out / "extraction_report.csv")
    assert report and all(r["case"].startswith(("P0", "data-root")) for r in report)
    assert all("!" not in r["location"] or "member" in r["location"] for r in report)


def test_keyed_pseudonyms_link_across_runs_and_differ_between_keys(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, _ = cases
    ids = ["--projectid-map", str(tmp_path / "ids.json")]
    assert run(root, tmp_path / "a", "--pseudonym-key-file", str(key_file), *ids) == 0
    monkeypatch.setenv("DCM_EXTRACT_KEY", key_file.read_text(encoding="utf-8").strip())
    assert run(root, tmp_path / "b", *ids) == 0  # the same key from the environment
    monkeypatch.setenv("DCM_EXTRACT_KEY", "another secret key of at least 32 characters")
    assert run(root, tmp_path / "c", *ids) == 0
    a, b, c = (read_csv(tmp_path / x / "all_cases_desensitized.csv") for x in "abc")
    assert [r["PatientName"] for r in a] == [r["PatientName"] for r in b]
    assert [r["PatientID"] for r in a] == [r["PatientID"] for r in b]
    assert not {r["PatientName"] for r in a} & {r["PatientName"] for r in c}
    originals = read_csv(tmp_path / "a" / "all_cases_original.csv")
    for hidden, original in zip(a, originals, strict=True):
        assert hidden["PatientBirthDate"] == "" and hidden["StudyDate"] == ""
        assert hidden["PatientAge"] == original["PatientAge"]  # the age stays
        assert re.fullmatch(r"P\d{6}(_\d+\.zip|\.dir)", hidden["FileName"])
        assert hidden["PatientID"] != original["PatientID"]
    provenance = json.loads((tmp_path / "a" / "deidentification.json").read_text(encoding="utf-8"))
    key = key_file.read_bytes().strip()
    assert provenance["key_fingerprint"] == Pseudonymizer(key).fingerprint
    assert provenance["reversible_by_dictionary"] is False
    for path in (tmp_path / "a").rglob("*"):
        assert path.is_dir() or key not in path.read_bytes()


def test_date_options(cases: tuple[Path, dict[str, Any]], key_file: Path, tmp_path: Path) -> None:
    root, _ = cases
    key = ["--pseudonym-key-file", str(key_file)]
    assert run(root, tmp_path / "keep", "--keep-dates", *key) == 0
    assert run(root, tmp_path / "shift", "--shift-dates", *key) == 0
    original = read_csv(tmp_path / "keep" / "all_cases_original.csv")
    kept = read_csv(tmp_path / "keep" / "all_cases_desensitized.csv")
    shifted = read_csv(tmp_path / "shift" / "all_cases_desensitized.csv")
    assert [r["StudyDate"] for r in kept] == [r["StudyDate"] for r in original]
    offsets: dict[str, set[int]] = {}
    for before, after in zip(original, shifted, strict=True):
        days = (
            time.mktime(time.strptime(after["StudyDate"], "%Y%m%d"))
            - time.mktime(time.strptime(before["StudyDate"], "%Y%m%d"))
        ) / 86400
        offsets.setdefault(after["PatientID"], set()).add(round(days))
    assert all(len(v) == 1 for v in offsets.values())  # one offset per patient
    assert all(0 < abs(d) <= 365 for v in offsets.values() for d in v)


def test_compat_mode_warns(
    cases: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DCM_EXTRACT_KEY", raising=False)
    root, _ = cases
    assert run(root, tmp_path / "o", "--desensitize") == 0
    err = capsys.readouterr().err
    assert "reverses" in err and "dcm-extract keygen" in err
    assert "note: the project ID map" in err  # where the one file naming the cases went
    provenance = json.loads((tmp_path / "o" / "deidentification.json").read_text(encoding="utf-8"))
    assert provenance["reversible_by_dictionary"] is True
    assert provenance["key_fingerprint"] is None


def test_key_handling_errors(
    capsys: pytest.CaptureFixture[str],
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DCM_EXTRACT_KEY", raising=False)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text(encoding="utf-8").strip()) == 64
    assert "fingerprint sha256:" in capsys.readouterr().out
    assert cli_main(["keygen", str(key_file)]) == 1  # never silently replaced
    assert "exists" in capsys.readouterr().err
    short = tmp_path / "short.key"
    short.write_text("too short")
    assert main(["--pseudonym-key-file", str(short)]) == 2
    assert main(["--pseudonym-key-file", str(tmp_path / "missing.key")]) == 2
    assert main(["--shift-dates"]) == 2
    assert main(["--shift-dates", "--keep-dates"]) == 2
    p = Pseudonymizer(b"k" * 32)
    assert p.pseudonym("PatientName", "A") != p.pseudonym("PatientID", "A")  # fields never collide
    assert p.pseudonym("PatientName", "") == ""
    # the key copied into Windows Notepad and saved as UTF-8 (a byte-order mark, CRLF): the
    # same key, so the same pseudonyms (else linkage with every earlier output breaks)
    notepad = tmp_path / "notepad.key"
    notepad.write_bytes(b"\xef\xbb\xbf" + key_file.read_bytes().strip() + b"\r\n")
    assert load_key(notepad) == load_key(key_file)


def test_a_desensitized_run_into_a_used_out_leaves_nothing_that_names_anyone(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's case: an identified run's manifest, tables of several formats, a killed
    run's temporary file and the appended log, then a de-identified run into that --out."""
    root, truth = cases
    out = tmp_path / "shared_outputs"
    log = tmp_path / "shared_outputs.log"
    ids = ["--projectid-map", str(tmp_path / "private" / "ids.json")]
    assert run(root, out, "--export-json", "--format", "csv,json,parquet", *ids) == 0
    assert (out / ".manifest").is_dir() and (out / "all_cases.parquet").exists()
    killed = out / ".all_cases_original.csv.x1y2z3.tmp"  # what a killed run leaves
    killed.write_bytes((out / "all_cases_original.csv").read_bytes())
    (out / "notes.txt").write_text("the user's own file", encoding="utf-8")
    renamed = sorted(p for p in root.iterdir() if p.is_dir())[0]
    old_table = out / f"{renamed.name}.csv"
    assert old_table.exists()
    renamed.rename(renamed.with_name("CASE_RENAMED"))  # its old table would stay behind
    capsys.readouterr()
    argv = ["--desensitize", "--pseudonym-key-file", str(key_file), *ids]
    assert run(root, out, *argv) == 0
    console = capsys.readouterr()
    assert "--desensitize: removed from" in console.err and "tables of earlier" in console.err
    assert not (out / ".manifest").exists() and not killed.exists() and not old_table.exists()
    assert (out / "notes.txt").read_text(encoding="utf-8") == "the user's own file"
    texts, tokens = _needles(truth)
    written = [p for p in out.rglob("*") if p.is_file() and p.name != "notes.txt"]
    for path in [*written, log]:
        data = _searchable(path)
        for text in texts:
            assert text not in data, (path.name, text)
        for token in tokens:
            assert not token.search(data), (path.name, token.pattern)


def test_the_default_id_map_of_a_desensitized_run_lies_beside_out(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, truth = cases
    out = tmp_path / "shared"
    assert run(root, out, "--desensitize", "--pseudonym-key-file", str(key_file)) == 0
    beside = tmp_path / "shared.case_projectid_map.json"
    ids = json.loads(beside.read_text(encoding="utf-8"))
    names = {p.name for p in root.iterdir() if p.is_dir()}
    assert set(ids) == names  # the map names the cases ...
    err = capsys.readouterr().err
    assert (
        f"note: the project ID map (it names the cases; keep it private, outside --out): {beside}"
        in err
    )
    texts, tokens = _needles(truth)
    texts |= {name.encode("utf-8") for name in names}
    for path in (p for p in out.rglob("*") if p.is_file()):  # ... and nothing in --out does
        data = _searchable(path)
        assert not [t for t in texts if t in data], path.name
        assert not [t for t in tokens if t.search(data)], path.name
    # a second run keeps the IDs (the map beside --out is found again)
    assert run(root, out, "--desensitize", "--pseudonym-key-file", str(key_file)) == 0
    assert json.loads(beside.read_text(encoding="utf-8")) == ids


def test_the_id_map_lies_beside_out_when_out_is_given_as_dot_dot(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``-o ..`` from a folder inside the output folder: the map went to the working
    directory as ``...case_projectid_map.json``, inside --out; it lies beside --out."""
    root, _ = cases
    out = tmp_path / "shared"
    (out / "work").mkdir(parents=True)
    monkeypatch.chdir(out / "work")
    argv = ["-d", str(root), "-o", "..", "--desensitize", "--pseudonym-key-file", str(key_file)]
    assert main([*argv, "-q", "--log", str(tmp_path / "run.log")]) == 0
    beside = tmp_path / "shared.case_projectid_map.json"
    assert set(json.loads(beside.read_text(encoding="utf-8"))) == {
        p.name for p in root.iterdir() if p.is_dir()
    }
    assert not [p for p in out.rglob("*") if "projectid" in p.name]


def test_an_id_map_inside_a_desensitized_out_is_refused(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = cases
    out = tmp_path / "shared"
    argv = ["--desensitize", "--pseudonym-key-file", str(key_file)]
    assert run(root, out, *argv, "--projectid-map", str(out / "ids.json")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lies inside --out" in err[0] and "Traceback" not in err[0]
    assert not (out / "ids.json").exists()
    assert run(root, out, "--projectid-map", str(out / "ids.json")) == 0  # identified: allowed


def test_an_earlier_id_map_in_out_is_refused_not_deleted(
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = cases
    out = tmp_path / "out"
    assert run(root, out) == 0  # the default map: out/case_projectid_map.json
    argv = ["--desensitize", "--pseudonym-key-file", str(key_file)]
    assert run(root, out, *argv, "--projectid-map", str(tmp_path / "ids.json")) == 1
    assert (out / "case_projectid_map.json").exists()
    assert run(root, out, *argv) == 1  # nor kept beside --out by default
    assert "out.case_projectid_map.json" in capsys.readouterr().err  # where to move it
    assert (out / "case_projectid_map.json").exists()


def test_two_runs_write_the_same_bytes(
    cases: tuple[Path, dict[str, Any]], key_file: Path, tmp_path: Path
) -> None:
    """No timestamp in the outputs (the run's time is in the log only)."""
    root, _ = cases
    argv = ["--desensitize", "--pseudonym-key-file", str(key_file), "--format", "csv,json,parquet"]
    argv += ["--projectid-map", str(tmp_path / "ids.json")]
    written = []
    for name in ("a", "b"):
        time.sleep(1.1 if name == "b" else 0)  # another second: a timestamp would differ
        assert run(root, tmp_path / name, *argv) == 0
        out = tmp_path / name
        written.append(
            {
                p.name: p.read_bytes()
                for p in out.iterdir()
                if p.is_file() and not p.name.startswith(".")
            }
        )
    assert written[0] == written[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_what_failed_is_said_without_names_in_a_desensitized_report(
    workers: str,
    cases: tuple[Path, dict[str, Any]],
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A zip member failing its CRC (zipfile's message quotes the member's name, here the
    patient's folder in the zip) and a case stopped by an error no file accounts for
    (its message quoting the case's path): the de-identified report says what failed and
    names no one, nor does the log; the identified report keeps the messages. With one
    worker (the cases scanned in this process) the failing case fails alone, as in a pool
    of two (forked: the planted error goes with them), not the run."""
    from dcm_extractor.sources import cases as scanning

    root, _ = cases
    image = next(p for p in sorted(root.rglob("*.dcm")) if p.stat().st_size > 4000)
    zipped = root / "ZhangWei" / "study.zip"
    zipped.parent.mkdir()
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_STORED) as archive:
        for index in range(2):
            archive.writestr(f"ZhangWei/SE1/IM{index}.dcm", image.read_bytes())
    data = bytearray(zipped.read_bytes())
    data[len(data) // 4] ^= 0xFF  # in the first member's pixels: its CRC fails
    zipped.write_bytes(bytes(data))
    failing = root / "LiuFang"
    failing.mkdir()
    (failing / "IM1.dcm").write_bytes(image.read_bytes())
    add_row = scanning._add_row

    def add_row_failing(result: Any, source: str, *args: Any) -> None:
        if result.name == "LiuFang":
            raise RuntimeError(f"no row for '{failing / 'IM1.dcm'}'")
        add_row(result, source, *args)

    monkeypatch.setattr(scanning, "_add_row", add_row_failing)
    argv = ["--pseudonym-key-file", str(key_file), "--workers", workers, "--instances"]
    argv += ["--projectid-map", str(tmp_path / "private" / "ids.json")]
    out = tmp_path / "deidentified"
    assert run(root, out, "--desensitize", *argv) == 1  # (a case failed)
    console = capsys.readouterr()
    report = read_csv(out / "extraction_report.csv")
    details = {r["reason"]: r["detail"] for r in report}
    assert details["corrupt_member"] == "cannot be extracted: bad CRC-32 for file '…'"
    assert details["case_failed"] == "failed: RuntimeError"
    written = [p for p in out.rglob("*") if p.is_file()]
    for where, blob in [
        *((p.name, _searchable(p)) for p in written),
        ("log", (tmp_path / "deidentified.log").read_bytes()),
        ("console", (console.out + console.err).encode("utf-8")),
    ]:
        for name in (b"ZhangWei", b"LiuFang"):
            assert name not in blob, (where, name)
    identified = tmp_path / "identified"
    assert run(root, identified, *argv) == 1
    report = read_csv(identified / "extraction_report.csv")
    failed = next(r for r in report if r["reason"] == "case_failed")
    assert failed["case"] == "LiuFang" and str(failing / "IM1.dcm") in failed["detail"]
    member = next(r for r in report if r["reason"] == "corrupt_member")
    assert member["location"] == "ZhangWei/study.zip!ZhangWei/SE1/IM0.dcm"


def test_a_zip_that_cannot_be_opened_is_unreadable_not_corrupt(tmp_path: Path) -> None:
    """An OSError opening a zip (no permission, an I/O error; here: a folder) is not the
    zip's damage: ``unreadable``, with the system's reason and not the path (which names
    the patient); a file that is no zip stays ``corrupt_zip``."""
    from dcm_extractor.sources.zipread import ZipProblem, iter_zip_members

    folder = tmp_path / "王小明" / "study.zip"
    folder.mkdir(parents=True)
    (problem,) = iter_zip_members(folder)
    assert problem == ZipProblem(
        None, "unreadable", "cannot be read (IsADirectoryError: Is a directory)"
    )
    text = tmp_path / "notes.zip"
    text.write_text("not a zip", encoding="utf-8")
    (problem,) = iter_zip_members(text)
    assert problem == ZipProblem(
        None, "corrupt_zip", "not a readable zip: BadZipFile: File is not a zip file"
    )


def test_what_names_the_patients_of_a_desensitized_run_only_its_owner_reads(
    cases: tuple[Path, dict[str, Any]], key_file: Path, tmp_path: Path
) -> None:
    """The project ID map (case names -> pseudonyms: the tables' re-identification) and
    the resume manifest (rows with names) of a de-identified run are 0o600, like the key,
    whatever the umask - in a group's shared folder the colleagues read the de-identified
    tables, not these; a map an earlier version left readable is made private. An
    identified run's map, beside identified tables, keeps the umask's mode."""
    root, _ = cases
    earlier = os.umask(0o002)  # (a group's shared folder)
    try:
        out, manifests = tmp_path / "shared" / "out", tmp_path / "shared" / "manifests"
        beside = tmp_path / "shared" / "out.case_projectid_map.json"
        beside.parent.mkdir()
        beside.write_text("{}\n", encoding="utf-8")
        beside.chmod(0o664)
        argv = ["--desensitize", "--pseudonym-key-file", str(key_file)]
        assert run(root, out, *argv, "--manifest-dir", str(manifests)) == 0
        private = [beside, *sorted(manifests.rglob("*.json"))]
        assert len(private) > 5
        assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in private} == {
            p.name: 0o600 for p in private
        }
        assert stat.S_IMODE((out / "all_cases.csv").stat().st_mode) == 0o664  # (shared)
        beside.chmod(0o644)  # (as an earlier version left it: same content, no new case)
        assert run(root, out, *argv, "--manifest-dir", str(manifests)) == 0
        assert stat.S_IMODE(beside.stat().st_mode) == 0o600
        identified = tmp_path / "identified"
        assert run(root, identified) == 0
        assert stat.S_IMODE((identified / "case_projectid_map.json").stat().st_mode) == 0o664
    finally:
        os.umask(earlier)
