"""The fuzzer (scripts/fuzz_extractor.py) on a few hundred damaged headers: no crash, no
file unaccounted for, no name, ID or birth date in anything a de-identified run writes.
The full run (10,000 files and more) is in the closing notes; this keeps it honest."""

from __future__ import annotations

from pathlib import Path

from dcm_extractor.reading.verdict import shown_uid
from fuzz_extractor import fuzz


def test_damaged_headers_never_crash_or_leak(tmp_path: Path) -> None:
    figures = fuzz(files=400, seed=1, workers=2, work=tmp_path)
    assert figures.exit_code == 0
    assert figures.crashes == 0
    assert figures.unaccounted == 0
    assert figures.leaks == 0, figures.leak_where


def test_a_damaged_uid_is_never_quoted() -> None:
    assert shown_uid("1.2.840.10008.5.1.4.1.1.7") == "1.2.840.10008.5.1.4.1.1.7"
    swallowed = "1.2.840.10008.5.1.4.1.1.7\x00\x10\x00\x20\x00LO\x08\x00LEAKID01"
    assert shown_uid(swallowed) == "a damaged SOP Class UID"
    assert shown_uid("") == "no SOP class"
