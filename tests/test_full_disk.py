"""Both tools' ``sample`` on a disk that fills up: one error line naming the folder, as every
other command's (the tables', the archives', the queries' own tests cover theirs).

A full disk is made real with a file-size limit (RLIMIT_FSIZE) in a child process: the
kernel refuses the write past it (EFBIG, where a full disk gives ENOSPC) - the same
refusal, raised where a write passes on the system's error naming no file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")

UNDER_A_LIMIT = """
import importlib, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
sys.exit(importlib.import_module(sys.argv[1] + ".cli").main(sys.argv[2:]))
"""


@pytest.mark.parametrize(
    ("package", "prog"), [("medmask", "medmask"), ("dcm_extractor", "dcm-extract")]
)
def test_sample_on_a_full_disk_names_its_folder(package: str, prog: str, tmp_path: Path) -> None:
    """Said "[Errno 27] File too large" (on a full disk "[Errno 28] No space left on
    device"), naming nothing; then a second try said to "pass overwrite=True", the Python
    argument, on the command line."""
    out = tmp_path / "sample"
    command = [sys.executable, "-c", UNDER_A_LIMIT, package, "sample", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 1
    assert done.stderr == (
        f"{prog}: error: {out}: File too large (the sample is incomplete: --overwrite "
        "replaces it)\n"
    )
    again = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert again.returncode == 1 and "--overwrite (overwrite=True) replaces it" in again.stderr
