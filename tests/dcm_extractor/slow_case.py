"""A case folder that takes seconds to scan: the stall the time-limit and kill tests need."""

from __future__ import annotations

import os
from pathlib import Path


def make_slow_case(folder: Path, files: int = 40_000) -> Path:
    """Fill ``folder`` with ``files`` one-byte non-DICOM files: a case that takes a second
    or more to scan (each file is opened and read), for tests of time limits and kills.
    Named pipes no longer stall a case (they are reported, not opened)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        descriptor = os.open(folder / f"junk{i:06d}.bin", os.O_WRONLY | os.O_CREAT, 0o644)
        os.write(descriptor, b"x")
        os.close(descriptor)
    return folder
