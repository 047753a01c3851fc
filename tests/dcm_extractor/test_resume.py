"""Resumable runs: unchanged cases are reused, changed ones redone, a killed run resumes."""

from __future__ import annotations

import json
import os
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


def outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}


@pytest.fixture
def data(tmp_path: Path, dicom_sample: DicomSample) -> Path:
    return Path(shutil.copytree(dicom_sample.cases_root, tmp_path / "cases"))


def extract(data: Path, out: Path, *extra: str) -> int:
    argv = ["-d", str(data), "-o", str(out), "--merge-all", "--log", str(out.parent / "log"), "-q"]
    return main([*argv, *extra])


def test_unchanged_cases_are_reused_and_changed_ones_redone(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert extract(data, out) == 0
    first = outputs(out)
    capsys.readouterr()
    cases = len([d for d in data.iterdir() if d.is_dir()])
    assert extract(data, out) == 0
    assert f"0 failed, {cases} unchanged" in capsys.readouterr().out
    assert outputs(out) == first
    # a new copy of a file in one case: that case is scanned again, the others reused
    source = next((data / "Smith_John").rglob("IM0001.dcm"))
    shutil.copy(source, data / "Smith_John" / "copy_of_IM0001.dcm")
    assert extract(data, out) == 0
    assert f"0 failed, {cases - 1} unchanged" in capsys.readouterr().out
    report = (out / "extraction_report.csv").read_text(encoding="utf-8")
    duplicates = [
        line
        for line in report.splitlines()
        if line.startswith("Smith_John,") and ",duplicate," in line
    ]
    assert (
        len(duplicates) == 1 and "IM0001.dcm" in duplicates[0]
    )  # the copy is seen, not counted twice
    assert extract(data, tmp_path / "fresh", "--no-resume") == 0
    assert "0 unchanged" in capsys.readouterr().out
    assert outputs(tmp_path / "fresh")["all_cases.csv"] == outputs(out)["all_cases.csv"]


def test_a_rerun_leaves_unchanged_case_files_as_they_are(data: Path, tmp_path: Path) -> None:
    """A rerun makes every case's own files again; those that come out the same are not
    written (same inode, same modification time: no temporary file, no fsync, which were
    most of a rerun's time), a changed case's are, and so is a file someone edited."""
    out = tmp_path / "out"
    assert extract(data, out) == 0

    def stamps() -> dict[str, tuple[int, int]]:
        return {
            p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in out.iterdir()
            if p.suffix == ".csv" and not p.name.startswith(("all_", "extraction_report"))
        }

    before, first = stamps(), outputs(out)
    assert len(before) >= 4
    edited = next(name for name in before if name.endswith(".desensitized.csv"))
    (out / edited).write_text("edited by hand\n", encoding="utf-8")
    shutil.copy(next((data / "Smith_John").rglob("IM0001.dcm")), data / "Smith_John" / "copy.dcm")
    assert extract(data, out) == 0
    after = stamps()
    again = outputs(out)
    assert b"copy.dcm,duplicate" in again.pop("extraction_report.csv")
    assert again == {k: v for k, v in first.items() if k != "extraction_report.csv"}
    assert after[edited][0] != before[edited][0]
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {edited}, changed


def test_reading_other_columns_scans_again_and_series_resume_unchanged(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    cases = len([d for d in data.iterdir() if d.is_dir()])
    assert extract(data, out, "--series", "--columns", "KVP") == 0
    first = outputs(out)
    capsys.readouterr()
    assert extract(data, out, "--series", "--columns", "KVP") == 0
    assert f"{cases} unchanged" in capsys.readouterr().out
    assert outputs(out) == first  # the series rows come back from the manifest
    assert extract(data, out, "--series", "--columns", "KVP,ImageType") == 0
    assert "0 unchanged" in capsys.readouterr().out  # other columns: every case again
    assert b"ImageType" in outputs(out)["all_series.csv"].splitlines()[0]


def test_de_identified_runs_keep_no_manifest_in_their_outputs(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "shared"
    assert extract(data, out, "--desensitize") == 0
    assert not (out / ".manifest").exists()
    assert extract(data, out, "--desensitize", "--manifest-dir", str(tmp_path / "private")) == 0
    cases = [d for d in data.iterdir() if d.is_dir()]
    assert len(list((tmp_path / "private").iterdir())) == len(cases)


def test_a_killed_run_resumes_without_losing_or_duplicating_rows(
    data: Path, tmp_path: Path
) -> None:
    stall = make_slow_case(tmp_path / "stall", files=60_000)  # the slow part of the last case
    reference = tmp_path / "reference"
    with_stall = data / "王小明" / "stall"  # the last case in order: the others finish first
    shutil.copytree(stall, with_stall, copy_function=os.link)
    assert extract(data, reference, "--no-resume") == 0
    others = len([d for d in data.iterdir() if d.is_dir()]) - 1  # every case before 王小明
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out), "--merge-all"]
    argv += ["--workers", "1", "-q", "--log", str(tmp_path / "log")]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as process:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline and len(list((out / ".manifest").glob("*.json"))) < others
        ):
            time.sleep(0.1)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert len(list((out / ".manifest").glob("*.json"))) == others
    assert not (out / "all_cases.csv").exists()
    assert extract(data, out) == 0
    assert outputs(out)["all_cases.csv"] == outputs(reference)["all_cases.csv"]
    assert outputs(out) == outputs(reference)


def test_a_same_size_file_with_its_mtime_kept_is_scanned_again(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``cp -p`` of a corrected export: same size, same mtime, other bytes."""
    out = tmp_path / "out"
    assert extract(data, out) == 0
    for target in sorted((data / "Smith_John").rglob("*.dcm")):
        before = target.stat()
        raw = target.read_bytes()
        fixed = raw.replace(b"Smith^John", b"Smyth^John")  # same length
        assert len(fixed) == len(raw)
        replacement = tmp_path / "replacement.dcm"
        replacement.write_bytes(fixed)
        os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
        shutil.copy2(replacement, target)  # keeps the mtime, as cp -p and rsync -a do
        assert target.stat().st_mtime_ns == before.st_mtime_ns
        assert target.stat().st_size == before.st_size
    capsys.readouterr()
    assert extract(data, out) == 0
    cases = len([d for d in data.iterdir() if d.is_dir()])
    assert f"0 failed, {cases - 1} unchanged" in capsys.readouterr().out
    assert b"Smyth" in outputs(out)["all_cases.csv"]


def test_a_renamed_case_with_a_fresh_id_map_is_not_matched_to_its_old_name(
    data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert extract(data, out) == 0
    (data / "Smith_John").rename(data / "CASE_0001")
    (out / "case_projectid_map.json").unlink()  # a fresh map: IDs handed out again
    assert extract(data, out) == 0
    assert (out / "CASE_0001.csv").exists()
    names = {
        row.split(",")[1]
        for row in (out / "all_cases.csv").read_text(encoding="utf-8").splitlines()[1:]
    }
    assert "CASE_0001.dir" in names and "Smith_John.dir" not in names


def test_a_second_run_into_the_same_out_is_refused_naming_the_first(
    data: Path, tmp_path: Path
) -> None:
    make_slow_case(data / "王小明" / "stall", files=60_000)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out), "--merge-all"]
    argv += ["-q", "--log", str(tmp_path / "log1")]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
        deadline = time.monotonic() + 60
        lock = out / ".dcm-extract.lock"
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.05)
        second = subprocess.run(
            [*argv[:-1], str(tmp_path / "log2")], capture_output=True, text=True, check=False
        )
        assert first.wait(120) == 0
    assert second.returncode == 1
    assert f"process {first.pid} on" in second.stderr and "another run is writing" in second.stderr
    assert second.stderr.count("\n") == 1  # one line, no traceback
    ids = json.loads((out / "case_projectid_map.json").read_text(encoding="utf-8"))
    assert sorted(ids.values()) == list(range(1, len(ids) + 1))  # one run's numbering
    assert extract(data, out) == 0  # the lock went with the first run


def test_a_refused_run_leaves_the_running_runs_log_alone(data: Path, tmp_path: Path) -> None:
    make_slow_case(data / "王小明" / "stall", files=60_000)
    out, log = tmp_path / "out", tmp_path / "shared.log"
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out), "--merge-all"]
    argv += ["-q", "--log", str(log)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as first:
        deadline = time.monotonic() + 60
        lock = out / ".dcm-extract.lock"
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
            time.sleep(0.05)
        before = log.read_bytes() if log.exists() else b""
        second = subprocess.run(
            [*argv, "--desensitize"], capture_output=True, text=True, check=False
        )
        after = log.read_bytes() if log.exists() else b""
        assert first.wait(120) == 0
    assert second.returncode == 1 and "another run is writing" in second.stderr
    assert after.startswith(before)  # not truncated by the refused --desensitize run
    assert b"another run is writing" not in log.read_bytes()  # nor written to


@pytest.mark.parametrize("where", ["out", "王小明"])
def test_an_out_inside_the_data_root_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    code = main(["-d", str(data), "-o", str(data / where), "-q", "--log", str(tmp_path / "l")])
    err = capsys.readouterr().err
    assert code == 2
    assert "inside the data root" in err and err.count("\n") == 1
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before  # nothing written
    assert main(["-d", str(data), "-o", str(data), "-q", "--log", str(tmp_path / "l")]) == 2


def test_an_out_on_a_file_system_without_locks(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS without its lock service answers a lock with ENOLCK: the run died with a
    traceback. It runs unlocked, with a warning; a lock file naming a holder (a running
    run, or a killed one: nothing tells them apart there) is refused, nothing removed."""
    import errno

    from dcm_extractor.runner import runlock

    assert extract(data, tmp_path / "locked") == 0

    def no_locks(descriptor: int, operation: int) -> None:  # (the file system's answer)
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(runlock.fcntl, "lockf", no_locks)
    out = tmp_path / "nfs"
    capsys.readouterr()
    assert extract(data, out) == 0
    err = capsys.readouterr().err
    assert "does not lock files" in err and "Traceback" not in err
    assert outputs(out) == outputs(tmp_path / "locked")
    assert (out / ".dcm-extract.lock").read_text() == ""  # the run ended: no holder named
    (out / ".dcm-extract.lock").write_text("process 4242 on node7, started 2026-12-07\n")
    kept = out / ".all_cases.csv.a1b2c3d4.tmp"  # (a running run's temporary file)
    kept.write_text("x")
    assert extract(data, out) == 1
    err = capsys.readouterr().err
    assert "names a run into" in err and "process 4242 on node7" in err
    assert "delete" in err and err.count("\n") == 1
    assert kept.exists()


# ``python -m MODULE ...`` with SIGINT as a terminal's command gets it: a test run started
# in the background by a shell (``make test &``, some CI runners) ignores SIGINT, and its
# children inherit that (Python then installs no KeyboardInterrupt): they would not stop.
SIGINT_AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


@pytest.mark.parametrize(
    ("stop", "said", "code"),
    [(signal.SIGINT, "interrupted", 130), (signal.SIGTERM, "terminated (SIGTERM)", 143)],
)
def test_ctrl_c_is_one_line_and_the_run_goes_on_when_started_again(
    data: Path, tmp_path: Path, stop: int, said: str, code: int
) -> None:
    """Ctrl-C printed Python's traceback (40 lines), and one more from each worker
    process waiting for work. One line now, exit 130 (128 + SIGINT), the lock let go; the
    same command again finishes the run. SIGTERM (SLURM's scancel, docker stop) the same
    way, exit 143 (it killed the run at once, leaving its temporary files)."""
    make_slow_case(data / "王小明" / "stall", files=60_000)
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "dcm_extractor", "-d", str(data), "-o", str(out), "--merge-all"]
    argv += ["-q", "--log", str(tmp_path / "log"), "--workers", "2"]
    others = [p.name for p in data.iterdir() if p.is_dir() and p.name != "王小明"]
    argv = [sys.executable, "-c", SIGINT_AS_IN_A_TERMINAL, *argv[2:]]  # (-m dcm_extractor)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as first:
        deadline = time.monotonic() + 120
        lock = out / ".dcm-extract.lock"
        while time.monotonic() < deadline and not all((out / f"{c}.csv").exists() for c in others):
            time.sleep(0.01)  # (the other cases done: one worker scans 王小明, one waits)
        os.killpg(first.pid, stop)  # (as a terminal's Ctrl-C, or scancel: the workers too)
        _, err = first.communicate(timeout=120)
    assert first.returncode == code, err
    assert err.splitlines() == [
        f"dcm-extract: {said}; the merged tables were not written: the cases finished "
        "are recorded, so the same command goes on from there"
    ]
    assert not list(out.glob(".*.tmp"))
    assert lock.read_text() == ""  # (the run ended: the next one is not told of a killed run)
    assert extract(data, out) == 0
    assert (out / "all_cases.csv").is_file()
