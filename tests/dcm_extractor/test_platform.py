"""Where POSIX is missing (Windows, simulated: ``fcntl`` made unimportable), the
extraction refuses with one line saying where it runs; ``query`` and ``sample`` run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_WITHOUT_FCNTL = """\
import sys
sys.modules["fcntl"] = None  # (import fcntl now raises ImportError, as on Windows)
from dcm_extractor.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _dcm_extract(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    return subprocess.run(
        [sys.executable, "-c", _WITHOUT_FCNTL, *map(str, args)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def test_without_posix_the_extraction_says_where_it_runs(tmp_path: Path) -> None:
    sample = _dcm_extract("sample", tmp_path / "data")
    assert sample.returncode == 0, sample.stderr
    cases = tmp_path / "data" / "dicom_cases"
    assert cases.is_dir()
    done = _dcm_extract("-d", cases, "-o", tmp_path / "out", "-q")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "dcm-extract: error: dcm-extract's extraction runs on Linux and macOS (its output "
        "lock, case time limits and worker clean-up are POSIX's); on Windows run it in WSL "
        "(dcm-extract query and sample run here)"
    ]
    assert not list((tmp_path / "out").glob("*.csv"))


def test_without_posix_query_runs(tmp_path: Path) -> None:
    from dcm_extractor import RunOptions, run
    from dcm_extractor.sample import generate_dicom_dataset

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=2, showcase=False).cases_root
    run(RunOptions(root, tmp_path / "out", series=True, projectid_map=tmp_path / "i.json"))
    done = _dcm_extract("query", tmp_path / "out", "SELECT count(*) AS n FROM series")
    assert done.returncode == 0, done.stderr
    with (tmp_path / "out" / "all_series.csv").open(encoding="utf-8") as table:
        series = sum(1 for _ in table) - 1
    assert series > 0
    assert done.stdout.split()[:2] == ["n", str(series)]
