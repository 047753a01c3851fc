"""A run killed at any moment: its workers end with it, the next run resumes exactly.

2-worker runs into one --out are killed (SIGKILL and SIGTERM) after a seeded number of
finished cases; then no process of the run is left (its pool workers and their children
end with it), the next run says the killed one did not finish, removes its temporary
files and gives tables byte-identical to a run never interrupted. Events are waited for
(records in the manifest, processes gone), never times.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slow_case import make_slow_case

from dcm_extractor.extractor import main
from dcm_extractor.sample import DicomSample

psutil = pytest.importorskip("psutil", reason="psutil comes with the dask extra")

WAIT = 120.0  # bound on waiting for an event on a busy machine


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix in (".csv", ".json")}


def temporary_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"waited {WAIT:g} s for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory, dicom_sample: DicomSample) -> Path:
    root = Path(shutil.copytree(dicom_sample.cases_root, tmp_path_factory.mktemp("k") / "cases"))
    for name in ("王小明", "李四"):  # two slow cases: both workers busy when the kill comes
        if (root / name).is_dir():
            make_slow_case(root / name / "stall", files=30_000)
    return root


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("reference") / "out"
    argv = ["-d", str(data), "-o", str(out), "--merge-all", "--workers", "2", "-q"]
    assert main([*argv, "--log", str(out.parent / "log")]) == 0
    return outputs(out)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "seed"), [(signal.SIGKILL, 1), (signal.SIGKILL, 2), (signal.SIGTERM, 3)]
)
def test_a_killed_run_leaves_no_process_and_resumes_exactly(
    data: Path, reference: dict[str, bytes], tmp_path: Path, sig: int, seed: int
) -> None:
    out = tmp_path / "out"
    cases = len([d for d in data.iterdir() if d.is_dir()])
    finished = random.Random(seed).randrange(0, cases - 2)  # the moment: after this many
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out)]
    argv += ["--merge-all", "--workers", "2", "-q", "--log", str(tmp_path / "log")]
    argv += ["--format", "csv,xlsx"]  # (the workbook's sheets are spooled as the run goes)
    system_temporary = tmp_path / "system_tmp"  # (they were spooled here: left with names)
    system_temporary.mkdir()
    env = {**os.environ, "TMPDIR": str(system_temporary)}
    with subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    ) as run:
        manifest = out / ".manifest"
        main_process = psutil.Process(run.pid)
        wait_for(
            lambda: (
                len(main_process.children()) >= 2 and len(list(manifest.glob("*.json"))) >= finished
            ),
            "the workers and the chosen moment",
        )
        family = main_process.children(recursive=True)
        os.kill(run.pid, sig)
        run.wait()
    assert family, "a 2-worker run has worker processes"
    wait_for(lambda: not any(p.is_running() and p.status() != "zombie" for p in family),
             "the killed run's workers to end")  # fmt: skip
    again = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    assert again.returncode == 0, again.stderr
    if sig == signal.SIGTERM:  # (scancel, docker stop: the run ends as on Ctrl-C, in order)
        assert run.returncode == 143 and "did not finish" not in again.stderr
    else:
        assert "did not finish" in again.stderr
    assert outputs(out) == reference
    assert temporary_files(out) == []
    assert list(system_temporary.iterdir()) == []
