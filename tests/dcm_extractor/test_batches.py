"""Batches of cases: no task per file for many small cases; a failing case costs itself only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from dcm_extractor.batches import MAX_BATCH_CASES, case_batches, scan_batch
from dcm_extractor.cases import CaseResult, scan_case
from dcm_extractor.isolation import CaseFailedError
from dcm_extractor.sample import DicomSample


def test_batches_keep_order_and_bound_their_size() -> None:
    cases = [Path(f"case{i:05d}") for i in range(10_000)]
    batches = case_batches(cases, workers=2)
    assert [c for batch in batches for c in batch] == cases  # every case once, in order
    assert max(len(b) for b in batches) == MAX_BATCH_CASES  # many one-file cases: not 10,000 tasks
    assert len(case_batches(cases[:6], workers=2)) == 6  # few cases: one each, to spread them
    assert case_batches([], workers=2) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe to hang a case")
def test_a_hanging_case_costs_only_itself(tmp_path: Path, dicom_sample: DicomSample) -> None:
    root = tmp_path / "cases"
    shutil.copytree(dicom_sample.cases_root, root)
    first, stalled, last = sorted(p for p in root.iterdir() if p.is_dir())[:3]
    os.mkfifo(stalled / "stalled_network_file")  # reading it blocks forever
    results = scan_batch([first, stalled, last], root, timeout=3)
    assert isinstance(results[1], CaseFailedError)
    assert results[1].case == stalled.name
    assert "time limit" in results[1].reason
    for case, result in ((first, results[0]), (last, results[2])):
        assert isinstance(result, CaseResult)
        assert result == scan_case(case, root)
