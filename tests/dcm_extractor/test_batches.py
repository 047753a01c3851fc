"""Batches of cases: no task per file for many small cases; a failing case costs itself only."""

from __future__ import annotations

import gc
import shutil
import signal
import sys
from pathlib import Path

import pytest
from slow_case import make_slow_case

from dcm_extractor.runner import batches
from dcm_extractor.runner.batches import (
    DEFAULT_CASE_LIMIT,
    MAX_BATCH_CASES,
    case_batches,
    scan_batch,
    scan_one,
)
from dcm_extractor.runner.isolation import CaseFailedError
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.cases import CaseResult, scan_case


def test_batches_keep_order_and_bound_their_size() -> None:
    cases = [Path(f"case{i:05d}") for i in range(10_000)]
    batches = case_batches(cases, workers=2)
    assert [c for batch in batches for c in batch] == cases  # every case once, in order
    assert max(len(b) for b in batches) == MAX_BATCH_CASES  # many one-file cases: not 10,000 tasks
    assert len(case_batches(cases[:6], workers=2)) == 6  # few cases: one each, to spread them
    assert case_batches([], workers=2) == []


def test_a_case_past_its_time_limit_costs_only_itself(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    root = tmp_path / "cases"
    shutil.copytree(dicom_sample.cases_root, root)
    first, stalled, last = sorted(p for p in root.iterdir() if p.is_dir())[:3]
    make_slow_case(stalled / "many")  # takes seconds to scan
    results = scan_batch([first, stalled, last], root, timeout=0.8)
    assert isinstance(results[1], CaseFailedError)
    assert results[1].case == stalled.name
    assert "time limit" in results[1].reason
    for case, result in ((first, results[0]), (last, results[2])):
        assert isinstance(result, CaseResult)
        assert result == scan_case(case, root)


def test_without_a_case_timeout_a_case_still_has_a_default_limit(
    tmp_path: Path, dicom_sample: DicomSample
) -> None:
    """In this process (no child per case): a timer stops a case past the limit."""
    root = tmp_path / "cases"
    shutil.copytree(dicom_sample.cases_root, root)
    first = sorted(p for p in root.iterdir() if p.is_dir())[0]
    assert scan_one(first, root, None, default_limit=5) == scan_case(first, root)
    stalled = make_slow_case(root / "stalled" / "many")
    with pytest.raises(CaseFailedError, match="default time limit"):
        scan_one(stalled.parent, root, None, default_limit=0.3)
    assert DEFAULT_CASE_LIMIT >= 600  # generous: a large case must never be cut
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # no timer left running


class _LimitInGc:
    """A garbage-collector callback that, at its first call during a case's scan, says
    the default limit is past (SIGALRM) - as the timer does when it expires while a gc
    callback runs (hypothesis installs one; a user's program may)."""

    def __init__(self) -> None:
        self.sent = False

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        handler = signal.getsignal(signal.SIGALRM)
        if not self.sent and getattr(handler, "__self__", None) is not None:
            self.sent = True
            signal.raise_signal(signal.SIGALRM)  # (its handler runs here, in the callback)


@pytest.mark.parametrize("how", ["function", "callable object"])
def test_a_limit_reached_in_a_gc_callback_still_stops_the_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Python drops an exception raised in a gc callback (it prints it as unraisable): the
    default limit's interrupt must not be lost there. A callback function is recognised
    (the interrupt comes again 1/100 of ALARM_RETRY later, outside it); any other one
    (a callable object, a __del__) drops the first interrupt, and the timer fires again."""
    monkeypatch.setattr(batches, "ALARM_RETRY", 0.05)
    dropped: list[BaseException | None] = []
    monkeypatch.setattr(
        sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_value)
    )
    stalled = make_slow_case(tmp_path / "cases" / "stalled" / "many")
    sender = _LimitInGc()

    def as_function(phase: str, info: dict[str, int]) -> None:
        sender(phase, info)

    callback = sender if how == "callable object" else as_function
    gc.callbacks.append(callback)
    try:
        with pytest.raises(CaseFailedError, match="default time limit"):
            scan_one(stalled.parent, tmp_path / "cases", None, default_limit=3600)
    finally:
        gc.callbacks.remove(callback)
    assert sender.sent
    if how == "function":
        assert dropped == []  # recognised: nothing raised in the callback
    else:
        # dropped at least once: the first, sent in the callback; the timer's next may also
        # fire while a gc callback runs (how often depends on the machine's load)
        assert dropped and {type(e).__name__ for e in dropped} == {"_PastLimitError"}
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
