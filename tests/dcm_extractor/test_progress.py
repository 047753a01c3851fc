"""The progress bar (cases, files/s, ETA) shows on a terminal only; project IDs in one save."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dcm_extractor.runner.projectids import ProjectIdMap
from dcm_extractor.sample import DicomSample


def test_progress_bar_on_a_terminal_only(
    tmp_path: Path,
    dicom_sample: DicomSample,
    run_in_terminal: Callable[[list[str]], tuple[int, str]],
) -> None:
    base = [sys.executable, "-m", "dcm_extractor", "-d", str(dicom_sample.cases_root)]
    code, shown = run_in_terminal([*base, "-o", str(tmp_path / "a"), "--log", str(tmp_path / "l")])
    assert code == 0
    assert "files/s" in shown.split("cases (")[0]  # the bar, before the summary line
    assert "ETA" in shown
    code, quiet = run_in_terminal(
        [*base, "-o", str(tmp_path / "b"), "--log", str(tmp_path / "l"), "--quiet"]
    )
    assert code == 0
    assert "ETA" not in quiet
    piped = subprocess.run(
        [*base, "-o", str(tmp_path / "c"), "--log", str(tmp_path / "l")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "ETA" not in piped.stdout + piped.stderr
    assert "files/s)" in piped.stdout  # the summary line still gives the rate


def test_new_ids_are_assigned_in_order_and_saved_once(tmp_path: Path) -> None:
    path = tmp_path / "map.json"
    path.write_text(json.dumps({"old_case": 7}), encoding="utf-8")
    ids = ProjectIdMap(path)
    assert ids.assign(["b", "old_case", "a", "b"]) == {"b": 8, "old_case": 7, "a": 9}
    assert json.loads(path.read_text(encoding="utf-8")) == {"old_case": 7, "b": 8, "a": 9}
    before = path.stat().st_mtime_ns
    assert ids.assign(["a"]) == {"a": 9}
    assert path.stat().st_mtime_ns == before  # nothing new, nothing written


def test_merged_rows_follow_project_ids_not_folder_order(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    from dcm_extractor.extractor import main

    cases = sorted(p.name for p in dicom_sample.cases_root.iterdir() if p.is_dir())
    mapping = {name: len(cases) - i for i, name in enumerate(cases)}  # reversed
    map_path = tmp_path / "map.json"
    map_path.write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "out"
    argv = ["-d", str(dicom_sample.cases_root), "-o", str(out), "--merge-all"]
    assert main([*argv, "--projectid-map", str(map_path), "--log", str(tmp_path / "l")]) == 0
    with (out / "all_cases.csv").open(encoding="utf-8") as handle:
        ids = [int(row["ProjectID"]) for row in csv.DictReader(handle)]
    assert ids == sorted(ids)
    assert set(ids) <= set(mapping.values())


def test_a_case_that_takes_long_is_named_in_the_progress_line(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    from dcm_extractor import RunOptions, run
    from dcm_extractor.cli.extract import CurrentCase

    waited: list[str] = []
    options = RunOptions(dicom_sample.cases_root, tmp_path / "out", desensitize=True)
    run(options, on_case=waited.append)
    assert waited and all(label.startswith("P0") for label in waited)  # no names shown
    assert waited == sorted(waited)  # in project-ID order, as the run waits for them
    current = CurrentCase()
    current.start("P000007")
    assert current.line(now=current.since + 5) == ""  # not yet: cases take seconds
    assert current.line(now=current.since + 95) == "still on P000007 after 95 s"
    column = current.column()
    assert column.render(None).plain == ""  # the live column, as rich renders it
