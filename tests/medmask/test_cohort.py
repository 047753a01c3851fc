"""Cohort packing: the same bytes as packing case by case, here, in a process pool and on
a real Dask LocalCluster; a killed run resumed; failures listed, changes repacked."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pyarrow.parquet as pq
import pytest

from medmask import MaskArchive
from medmask.cli import main
from medmask.errors import MedmaskError, MedmaskWarning
from medmask.ops.cohort import FAILURES, MANIFEST, detect_cohort, pack_cohort, read_series_map
from medmask.ops.pack import pack
from medmask.ops.query import query, query_to_file
from medmask.ops.report import cohort_report
from medmask.sample import generate_masks

CASES = 5


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five cases: four TotalSegmentator folders (<case>/segmentations), one folder of masks."""
    root = tmp_path_factory.mktemp("cohort")
    for seed in range(CASES):
        sample = generate_masks(root / "gen" / f"{seed}", seed=seed, shape=(36, 32, 24))
        case = root / "cohort" / f"case{seed}"
        case.mkdir(parents=True)
        shutil.move(str(sample.masks_dir), case if seed == 4 else case / "segmentations")
        if seed == 4:  # its masks right in the case folder
            for path in (case / "segmentations").iterdir():
                path.rename(case / path.name)
            (case / "segmentations").rmdir()
    return root / "cohort"


@pytest.fixture(scope="module")
def one_by_one(cohort: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("single")
    found = {}
    for case in sorted(cohort.iterdir()):
        source = case / "segmentations" if (case / "segmentations").is_dir() else case
        pack(source, out / f"{case.name}.mska", groups={"ribs": "rib_*"})
        found[case.name] = (out / f"{case.name}.mska").read_bytes()
    return found


def archives(folder: Path) -> dict[str, bytes]:
    return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.mska"))}


def test_the_layout_is_recognised_and_said(cohort: Path, tmp_path: Path) -> None:
    layout = detect_cohort(cohort)
    assert layout is not None
    assert [case for case, _ in layout.cases] == [f"case{i}" for i in range(CASES)]
    assert "4 TotalSegmentator case folders" in layout.describe()
    assert detect_cohort(cohort / "case4") is None  # masks right there: one case
    assert detect_cohort(cohort / "case0" / "segmentations") is None
    with pytest.raises(MedmaskError, match="not a cohort folder"):
        pack_cohort(cohort / "case4", tmp_path / "out")


@pytest.mark.parametrize("workers", [1, 2])
def test_cohort_packing_writes_the_bytes_of_packing_each_case(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path, workers: int
) -> None:
    result = pack_cohort(cohort, tmp_path / "out", groups={"ribs": "rib_*"}, workers=workers)
    assert (len(result.packed), result.unchanged, result.failures) == (CASES, [], [])
    assert archives(tmp_path / "out") == one_by_one
    assert not (tmp_path / "out" / FAILURES).exists()


def test_on_a_dask_local_cluster(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed", reason="Dask is in the dask extra")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=2,  # (as `dask worker` runs by default: packs in threads)
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,  # fmt: skip
    ):
        result = pack_cohort(
            cohort, tmp_path / "out", groups={"ribs": "rib_*"}, scheduler=cluster.scheduler_address
        )
        assert len(result.packed) == CASES and not result.failures
        assert archives(tmp_path / "out") == one_by_one
        # resumed on the cluster: nothing to do
        again = pack_cohort(
            cohort, tmp_path / "out", groups={"ribs": "rib_*"}, scheduler=cluster.scheduler_address
        )
        assert (again.packed, len(again.unchanged)) == ([], CASES)
        # a cluster from another environment (medkit older, or none): one clear error
        # before any case is sent (each case failed alone, "its Dask task failed")
        with distributed.Client(cluster) as client:
            older = (
                "import importlib.metadata as m; m.kept = m.version; m.version = lambda n: '0.0.9'"
            )
            client.run(exec, older, {})
            with pytest.raises(MedmaskError, match=r"2 of its 2 workers run medkit 0\.0\.9"):
                pack_cohort(cohort, tmp_path / "o2", scheduler=cluster.scheduler_address)
            client.run(exec, "import importlib.metadata as m; m.version = m.kept", {})
            one = sorted(client.scheduler_info()["workers"])[0]
            blind = (  # (a worker whose file system lacks the cohort: another machine's)
                "import genericpath, os.path; genericpath.seen = genericpath.isdir; "
                f"genericpath.isdir = os.path.isdir = lambda p: p != {str(cohort)!r} "
                "and genericpath.seen(p)"
            )
            client.run(exec, blind, {}, workers=[one])
            with pytest.raises(
                MedmaskError, match=rf"1 of its 2 workers do not see the folder .*{cohort.name} "
            ):
                pack_cohort(cohort, tmp_path / "o4", scheduler=cluster.scheduler_address)
            restore = "import genericpath as g, os.path; g.isdir = os.path.isdir = g.seen"
            client.run(exec, restore, {}, workers=[one])
            client.run(exec, "import sys; sys.modules['medmask'] = None", {}, workers=[one])
            with pytest.raises(
                MedmaskError,
                match=rf"1 of its 2 workers cannot import medmask \({one}: ModuleNotFoundError",
            ):
                pack_cohort(cohort, tmp_path / "o3", scheduler=cluster.scheduler_address)
        assert not list(tmp_path.glob("o[234]/*.mska"))
    # (an unreachable address is retried for the client's 30 s: the file case is immediate)
    with pytest.raises(MedmaskError, match=r"no Dask scheduler file at .*is a scheduler running"):
        pack_cohort(cohort, tmp_path / "x", scheduler_file=str(tmp_path / "none.json"))
    with pytest.raises(MedmaskError, match=r"the address of the scheduler's dashboard .*tcp://"):
        pack_cohort(cohort, tmp_path / "x", scheduler="http://127.0.0.1:8787/status")


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from medmask.ops.cohort import pack_cohort
    done = []
    def after(outcome):
        done.append(outcome)
        if len(done) == 2:  # two cases finished and recorded: the process dies here
            os.kill(os.getpid(), signal.SIGKILL)
    pack_cohort(sys.argv[1], sys.argv[2], groups={"ribs": "rib_*"}, on_done=after)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("workers", [0, -1, 4 * (os.cpu_count() or 1) + 1, 2.5])
def test_a_number_of_workers_the_machine_cannot_take_is_refused(
    cohort: Path, tmp_path: Path, workers: float
) -> None:
    """From Python, workers=0 or -1 packed in this process without a word and 500 started
    500 processes (the command line refuses them); now a ValueError naming the range, as
    dcm-extract's RunOptions, before anything is written."""
    from medmask.ops.pack import pack_many

    most = 4 * (os.cpu_count() or 1)
    with pytest.raises(ValueError, match=rf"workers {workers}: .* use 1 to {most}"):
        pack_cohort(cohort, tmp_path / "out", workers=workers)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"use 1 to {most}"):
        pack_many([cohort / "case0"], tmp_path / "out", workers=workers)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_a_killed_run_resumes_without_redoing_finished_cases(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(cohort), str(out)], capture_output=True, check=False
    )
    assert killed.returncode == -9
    finished = archives(out)
    assert len(finished) == 2 and all(finished[c] == one_by_one[c] for c in finished)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.mska")}
    result = pack_cohort(cohort, out, groups={"ribs": "rib_*"})
    assert sorted(result.unchanged) == sorted(finished)
    assert len(result.packed) == CASES - 2
    assert archives(out) == one_by_one
    for name, stamp in stamps.items():  # the finished ones were not written again
        assert (out / name).stat().st_mtime_ns == stamp


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from medmask.ops.cohort import pack_cohort
    ready, go = Path(sys.argv[3]), Path(sys.argv[4])
    def started(count):  # the run holds its folder: say so, wait to be let go
        ready.write_text(str(count))
        while not go.exists():
            time.sleep(0.05)
    pack_cohort(sys.argv[1], sys.argv[2], on_start=started)
    """
)


def wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    """Until ``path`` exists (the process says so), or the process ended without it."""
    import time

    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(process.communicate())
        time.sleep(0.05)


def test_a_second_run_into_one_folder_is_refused_naming_the_first(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs packing into one folder at once (a job started twice, an array job's tasks
    given one command) both packed every case and replaced each other's failure list."""
    import socket

    from medmask.errors import CohortBusyError

    out, ready, go = tmp_path / "out", tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cohort), str(out), str(ready), str(go)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(ready, first)
        assert ready.read_text() == str(CASES)
        holder = rf"process {first.pid} on {socket.gethostname()}, started \d{{4}}-"
        with pytest.raises(
            CohortBusyError, match=rf"{out}: another run is packing into it \({holder}"
        ):
            pack_cohort(cohort, out)
        capsys.readouterr()
        assert main(["pack", str(cohort), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"process {first.pid}" in err, err
        assert list(out.glob("*.mska")) == []  # the refused runs packed nothing
    finally:
        go.touch()
        first.communicate()
    assert first.returncode == 0
    assert len(archives(out)) == CASES
    # the first run ended: the folder is free again, and nothing is left to pack
    assert sorted(pack_cohort(cohort, out).unchanged) == sorted(archives(out))


def test_on_a_file_system_without_locks_a_run_goes_on(
    cohort: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NFS without its lock service answers a lock with ENOLCK: the run packs, unlocked,
    and the archives' writes say that their folder is not locked."""
    import errno
    import fcntl

    def no_locks(descriptor: int, operation: int) -> None:  # (the file system's answer)
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(MedmaskWarning, match="its file system does not lock files"):
        result = pack_cohort(cohort, tmp_path / "out")
    assert len(result.packed) == CASES and not result.failures


# Loaded by every Python process started with its folder on PYTHONPATH (the run's worker
# processes, not the test's own): opening a file named in DIES_AT kills the process, as
# the kernel's out-of-memory killer ends a worker packing a case too large for the
# machine - each time, or (with ONCE set) only the first time, as a kill from outside.
DYING = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    DIES_AT, ONCE = os.environ["DIES_AT"], os.environ.get("ONCE")
    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            if os.fsdecode(args[0]).endswith(DIES_AT):
                if ONCE:
                    if Path(ONCE).exists():
                        return
                    Path(ONCE).touch()
                os.kill(os.getpid(), signal.SIGKILL)
    sys.addaudithook(hook)
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("once", [False, True])
def test_a_worker_that_dies_costs_only_its_own_case(
    cohort: Path,
    one_by_one: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    once: bool,
) -> None:
    """A worker process killed (out of memory) failed every case not finished yet, "worker
    failed: BrokenProcessPool" - 34 of 40 in a run where the killer struck early. The
    cases the workers held are packed again alone; a case that kills its process each
    time fails alone, saying how its process died."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(DYING)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), *sys.path]))
    monkeypatch.setenv("DIES_AT", "case2/segmentations/liver.nii.gz")
    if once:
        monkeypatch.setenv("ONCE", str(tmp_path / "killed"))
    out = tmp_path / "out"
    with pytest.warns(MedmaskWarning, match=r"a worker process died .* packed again, each"):
        result = pack_cohort(cohort, out, groups={"ribs": "rib_*"}, workers=2)
    finished = archives(out)
    if once:
        assert (tmp_path / "killed").exists()  # (the kill came)
        assert not result.failures and finished == one_by_one
    else:
        [failure] = result.failures
        assert failure.source == cohort / "case2" / "segmentations"
        assert failure.reason == (
            f"{cohort / 'case2' / 'segmentations'}: its worker process died (killed by "
            "SIGKILL: out of memory?) while packing it, also when packed alone"
        )
        assert sorted(result.packed) == sorted(set(one_by_one) - {"case2"})
        assert finished == {c: b for c, b in one_by_one.items() if c != "case2"}
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_on_dask_a_worker_that_dies_costs_only_its_own_case(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Dask a task whose workers died (KilledWorker) failed every case of its batch:
    its cases go again one a task, and only the case that kills its worker fails."""
    distributed = pytest.importorskip("distributed", reason="Dask is in the dask extra")
    import dask

    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(DYING)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), *sys.path]))
    monkeypatch.setenv("DIES_AT", "case2/segmentations/liver.nii.gz")
    with (
        # (a task whose worker died is not given to another: KilledWorker at once)
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,  # fmt: skip
    ):
        result = pack_cohort(
            cohort, tmp_path / "out", groups={"ribs": "rib_*"}, scheduler=cluster.scheduler_address
        )
    assert len(result.failures) == 1, result.failures
    [failure] = result.failures
    assert failure.source == cohort / "case2" / "segmentations"
    assert failure.reason.startswith(
        f"{failure.source}: its Dask worker died packing it (out of memory?), each time"
    )
    assert sorted(result.packed) == sorted(set(one_by_one) - {"case2"})
    assert archives(tmp_path / "out") == {c: b for c, b in one_by_one.items() if c != "case2"}


def test_failures_are_listed_and_changes_repacked(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "cohort"
    shutil.copytree(cohort, mine)
    broken = mine / "case2" / "segmentations" / "liver.nii.gz"
    good = broken.read_bytes()
    broken.write_bytes(b"not a NIfTI file")
    out = tmp_path / "out"
    assert main(["pack", str(mine), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert "5 cases" in captured.out and "4 packed, 0 unchanged, 1 failed" in captured.out
    assert "liver.nii.gz: not a readable NIfTI file" in captured.err
    with (out / FAILURES).open(encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["case"] for r in rows] == ["case2"] and "liver.nii.gz" in rows[0]["reason"]
    assert not (out / "case2.mska").exists()
    # the case mended, another one changed: only those two are packed
    broken.write_bytes(good)
    changed = mine / "case4" / "spleen.nii.gz"
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    assert main(["pack", str(mine), "-o", str(out)]) == 0
    assert "2 packed, 3 unchanged" in capsys.readouterr().out
    assert not (out / FAILURES).exists()
    lines = (out / MANIFEST).read_text(encoding="utf-8").splitlines()
    # (besides what each run set out to do, and which run it was)
    finished = [line for line in lines if '"claimed"' not in line and '"run"' not in line]
    assert len(finished) == CASES + 1  # case4 twice: the last line counts
    # the list of failures cannot be written (a full disk; here a folder in its place):
    # the error still says which case failed and why
    broken.write_bytes(b"not a NIfTI file")
    (tmp_path / "out2" / FAILURES).mkdir(parents=True)
    assert main(["pack", str(mine), "-o", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'out2' / FAILURES}: Is a directory; 4 case(s) packed, 1 failed:" in err
    assert "case2/segmentations: " in err and "liver.nii.gz: not a readable NIfTI file" in err


def test_names_a_windows_copy_keeps_in_gbk(tmp_path: Path) -> None:
    """Case folders and mask files named in GBK bytes (a Chinese Windows copy): packed,
    catalogued and listed as failures with their names as text, resumed by their bytes."""
    from medmask.ops.catalog import build_catalog

    def gbk(text: str) -> str:  # the name as Python gives it (PEP 383)
        return os.fsdecode(text.encode("gbk"))

    root = tmp_path / "cohort"
    data = np.zeros((6, 5, 4), np.uint8)
    data[1:3, 1:3, 1:3] = 1
    for case, masks in ((gbk("病人一"), [gbk("胆囊"), "liver"]), ("p2", [gbk("脾脏")])):
        (root / case).mkdir(parents=True)
        for mask in masks:
            nib.save(nib.Nifti1Image(data, np.eye(4)), root / case / f"{mask}.nii.gz")
    (root / gbk("病人三")).mkdir()
    (root / gbk("病人三") / "broken.nii.gz").write_bytes(b"not a NIfTI")
    out = tmp_path / "archives"
    result = pack_cohort(root, out)
    assert sorted(result.packed) == sorted([gbk("病人一"), "p2"])
    with MaskArchive(out / f"{gbk('病人一')}.mska") as archive:  # the case's own bytes
        assert sorted(archive) == ["liver", "胆囊"]  # the mask names: text
    with (out / FAILURES).open(encoding="utf-8", newline="") as stream:  # (strict UTF-8)
        [failure] = list(csv.DictReader(stream))
    assert failure["case"] == "病人三" and failure["source"].endswith("cohort/病人三")
    again = pack_cohort(root, out)  # the resume log finds the cases by their bytes
    assert sorted(again.unchanged) == sorted([gbk("病人一"), "p2"]) and not again.packed
    catalog = tmp_path / f"{gbk('目录')}.parquet"  # the catalog itself in a GBK name
    build_catalog(out, catalog)
    with catalog.open("rb") as stream:
        rows = pq.read_table(stream).to_pylist()  # pyarrow's reading
    expected = [
        ("p2", "p2.mska", "脾脏"), ("病人一", "病人一.mska", "liver"),
        ("病人一", "病人一.mska", "胆囊"),
    ]  # fmt: skip
    assert sorted((r["case_id"], r["archive"], r["mask"]) for r in rows) == expected
    assert build_catalog(out, catalog).kept == 2  # read again: nothing changed
    sql = "SELECT case_id, archive, mask FROM masks ORDER BY ALL"
    assert sorted(tuple(r.values()) for r in query(catalog, sql).to_pylist()) == expected
    answer = tmp_path / f"{gbk('答案')}.csv"  # DuckDB opens no such path: staged, copied
    assert query_to_file(catalog, sql, answer) == 3
    with answer.open(encoding="utf-8", newline="") as stream:
        assert sorted(tuple(r.values()) for r in csv.DictReader(stream)) == expected
    folder = out.rename(tmp_path / gbk("档案"))  # a report of a GBK-named folder: its title
    cohort_report(folder, tmp_path / "report.html")
    assert "report: 档案</title>" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_files_of_a_case_that_are_not_masks_are_said(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A case's file that is not read - a link to nothing, TotalSegmentator's
    statistics.json - was dropped without a word by a cohort run (packing the case alone
    said it): it is listed in the result and said, one line for a file every case has."""
    mine = tmp_path / "cohort"
    shutil.copytree(cohort, mine)
    masks = {case.name: case / "segmentations" for case in mine.iterdir()}
    masks["case4"] = mine / "case4"
    (masks["case1"] / "kidney_cyst.nii.gz").symlink_to(tmp_path / "nowhere.nii.gz")
    for case in ("case0", "case1", "case2", "case3"):
        (masks[case] / "statistics.json").write_text("{}")
    gbk = os.fsdecode("病人".encode("gbk"))  # (a case named in GBK bytes: said as text)
    masks["case4"].rename(mine / gbk)
    (mine / gbk / "notes.txt").write_text("x")
    (mine / os.fsdecode("说明.txt".encode("gbk"))).write_text("x")  # (not a case)
    result = pack_cohort(mine, tmp_path / "out")
    assert len(result.packed) == CASES
    nowhere, not_a_mask = (
        f"a link to nothing ({tmp_path / 'nowhere.nii.gz'}): not read",
        ("not a NIfTI mask (file)"),
    )
    assert sorted(result.skipped) == sorted([
        ("case1", "kidney_cyst.nii.gz", nowhere), (gbk, "notes.txt", not_a_mask),
        *[(c, "statistics.json", not_a_mask) for c in ("case0", "case1", "case2", "case3")],
    ])  # fmt: skip
    capsys.readouterr()
    assert main(["pack", str(mine), "-o", str(tmp_path / "out2")]) == 0, capsys.readouterr()
    err = capsys.readouterr().err.splitlines()
    assert sorted(err) == sorted([
        f"medmask: warning: {masks['case1']}: skipped kidney_cyst.nii.gz: a link to nothing "
        f"({tmp_path / 'nowhere.nii.gz'}): not read",
        f"medmask: warning: {mine}: skipped statistics.json in 4 cases (case0, case1, case2, "
        "...): not a NIfTI mask (file)",
        f"medmask: warning: {mine / '病人'}: skipped notes.txt: not a NIfTI mask (file)",
        f"medmask: warning: {mine / '说明.txt'}: not a case: not a case folder",
    ])  # fmt: skip
    # the archives in the cohort folder: each later run said "archives: not a case"
    for _ in range(2):
        assert main(["pack", str(mine), "-o", str(mine / "archives"), "-q"]) == 0
        err = capsys.readouterr().err
        assert "说明.txt: not a case" in err and "archives: not a case" not in err


def test_archives_no_run_wrote_are_not_replaced(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "case1.mska").write_bytes(b"someone else's")
    result = pack_cohort(cohort, out)
    assert [f.source.parent.name for f in result.failures] == ["case1"]
    assert "--overwrite" in result.failures[0].reason
    assert (out / "case1.mska").read_bytes() == b"someone else's"
    assert len(pack_cohort(cohort, out, overwrite=True).packed) == 1


@pytest.fixture(scope="module")
def label_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cohort of multi-label files: two named as TotalSegmentator --ml writes them (a
    label table in the header; one also with a JSON sidecar), one unnamed as nnU-Net
    writes its predictions (labels 1..n, no names), and a stray text file."""
    root = tmp_path_factory.mktemp("labels")
    cohort = root / "cohort"
    cohort.mkdir()
    for seed, name in enumerate(["p10", "p2", "p1"]):
        sample = generate_masks(root / "gen" / name, seed=seed, shape=(30, 28, 20))
        shutil.copy(sample.multilabel_path, cohort / f"{name}.nii.gz")
        if seed == 0:
            sidecar = sample.multilabel_path.with_name("multilabel.json")
            shutil.copy(sidecar, cohort / f"{name}.json")
        if seed == 2:  # unnamed: the voxels only
            image = nib.load(sample.multilabel_path)
            plain = nib.Nifti1Image(np.asarray(image.dataobj), image.affine)
            nib.save(plain, cohort / f"{name}.nii.gz")
    (cohort / "notes.txt").write_text("not a case", encoding="utf-8")
    return cohort


def test_a_cohort_of_multi_label_files(label_files: Path, tmp_path: Path) -> None:
    layout = detect_cohort(label_files)
    assert layout is not None
    assert [case for case, _ in layout.cases] == ["p1", "p2", "p10"]  # natural order
    assert "3 multi-label files" in layout.describe()
    assert layout.skipped == [("notes.txt", "not a .nii/.nii.gz file among multi-label files")]
    assert detect_cohort(label_files, "folders") is None
    with pytest.warns(UserWarning):  # p1's labels have no names: idx_<label>, said
        result = pack_cohort(label_files, tmp_path / "out")
    assert len(result.packed) == 3 and not result.failures
    for case, source in layout.cases:  # the bytes of packing each file alone
        with pytest.warns(UserWarning) if case == "p1" else contextlib.nullcontext():
            pack(source, tmp_path / "single" / f"{case}.mska")
        packed = (tmp_path / "out" / f"{case}.mska").read_bytes()
        assert packed == (tmp_path / "single" / f"{case}.mska").read_bytes()
        voxels = np.asarray(nib.load(source).dataobj)  # nibabel's reading of the file
        with MaskArchive(tmp_path / "out" / f"{case}.mska") as archive:
            labels = {name: stored.file_label for name, stored in archive.storage().items()}
            present = {int(v) for v in np.unique(voxels) if v}
            assert present <= set(labels.values())  # every voxel's label is a mask (named
            # labels without voxels are empty masks)
            for name, label in labels.items():
                assert np.array_equal(archive.load_mask(name).data != 0, voxels == label), name
    names = MaskArchive(tmp_path / "out" / "p10.mska").all_names()
    assert "liver" in names  # the label table's names
    assert all(n.startswith("idx_") for n in MaskArchive(tmp_path / "out" / "p1.mska").all_names())


def test_label_files_detected_only_when_they_are_label_maps(
    cohort: Path, label_files: Path, tmp_path: Path
) -> None:
    # a folder of 0/255 masks is still one case; --layout label-files says otherwise
    masks = tmp_path / "masks"
    masks.mkdir()
    for path in sorted((cohort / "case4").glob("*.nii.gz"))[:3]:
        image = nib.load(path)
        data = np.asarray(image.dataobj).astype(np.uint8) * 255
        nib.save(nib.Nifti1Image(data, image.affine), masks / path.name)
    assert detect_cohort(masks) is None
    forced = detect_cohort(masks, "label-files")
    assert forced is not None and len(forced.cases) == 3
    # <case>/segmentations.nii.gz: TotalSegmentator --ml written into case folders
    folders = tmp_path / "ml"
    for path in sorted(label_files.glob("*.nii.gz")):
        (folders / path.name[:-7]).mkdir(parents=True)
        shutil.copy(path, folders / path.name[:-7] / "segmentations.nii.gz")
        (folders / path.name[:-7] / "ct.nii.gz").write_bytes(b"the image: not a mask")
    layout = detect_cohort(folders)
    assert layout is not None and "3 TotalSegmentator multi-label files" in layout.describe()
    assert {source.name for _, source in layout.cases} == {"segmentations.nii.gz"}
    with pytest.raises(MedmaskError, match="layout must be one of"):
        detect_cohort(folders, "flat")


def test_nnunet_predictions_are_named_by_their_dataset_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder as nnUNetv2_predict leaves it: label maps, its dataset.json (labels by
    name, v2), plans.json and predict_from_raw_data_args.json; and a raw data set's
    labelsTr/, its dataset.json in the folder above. Each prediction is a case
    whose masks carry dataset.json's names - a case where only one organ was found too
    (it was named after the file) - and an organ not found is an empty mask; editing
    dataset.json repacks. The MSD / nnU-Net v1 form ({"1": "liver"}) names a single file."""
    preds = tmp_path / "preds"
    preds.mkdir()
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    both = np.zeros((12, 10, 8), np.uint8)
    both[2:6, 2:6, 1:4], both[7:9, 6:8, 5:7] = 1, 2
    nib.save(nib.Nifti1Image(both, affine), preds / "case_001.nii.gz")
    nib.save(nib.Nifti1Image((both == 1).astype(np.uint8), affine), preds / "case_002.nii.gz")
    dataset = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "liver": 1, "tumor": 2},
               "numTraining": 131, "file_ending": ".nii.gz"}  # fmt: skip
    (preds / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    (preds / "plans.json").write_text("{}", encoding="utf-8")
    (preds / "predict_from_raw_data_args.json").write_text("{}", encoding="utf-8")
    layout = detect_cohort(preds)
    assert layout is not None and [case for case, _ in layout.cases] == ["case_001", "case_002"]
    assert sorted(name for name, _ in layout.skipped) == [
        "plans.json",
        "predict_from_raw_data_args.json",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every label named: no idx_<label> warning
        result = pack_cohort(preds, tmp_path / "out")
    assert len(result.packed) == 2 and not result.failures
    for case in ("case_001", "case_002"):
        voxels = np.asarray(nib.load(preds / f"{case}.nii.gz").dataobj)
        with MaskArchive(tmp_path / "out" / f"{case}.mska") as archive:
            assert sorted(archive.all_names()) == ["liver", "tumor"]
            for name, label in (("liver", 1), ("tumor", 2)):
                assert np.array_equal(archive.load_mask(name).data != 0, voxels == label)
    for number in range(1, 7):  # --save_probabilities: a .npz and a .pkl per prediction
        for suffix in (".npz", ".pkl"):
            (preds / f"case_{number:03d}{suffix}").write_bytes(b"probabilities")
    capsys.readouterr()
    assert main(["pack", str(preds), "-o", str(tmp_path / "out_cli")]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "not a" in line]
    assert warned == [
        f"medmask: warning: {preds}: 14 entries are not cases: not a .nii/.nii.gz file among "
        "multi-label files (6 .npz, 6 .pkl, 2 .json; case_001.npz, ...)"
    ]
    dataset["labels"] = {"background": 0, "hepar": 1, "tumor": 2}
    (preds / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    assert len(pack_cohort(preds, tmp_path / "out").packed) == 2  # (the names changed)
    assert "hepar" in MaskArchive(tmp_path / "out" / "case_002.mska").all_names()
    single = tmp_path / "msd"
    single.mkdir()
    shutil.copy(preds / "case_001.nii.gz", single / "liver_7.nii.gz")
    msd = {"labels": {"0": "background", "1": "liver", "2": "cancer"}}
    (single / "dataset.json").write_text(json.dumps(msd), encoding="utf-8")
    assert pack(single / "liver_7.nii.gz", tmp_path / "msd.mska").masks == ["liver", "cancer"]
    raw = tmp_path / "Dataset003_Liver"  # nnU-Net's raw data set: dataset.json above labelsTr/
    (raw / "labelsTr").mkdir(parents=True)
    shutil.copy(preds / "case_002.nii.gz", raw / "labelsTr" / "liver_001.nii.gz")
    (raw / "dataset.json").write_text(json.dumps(dataset), encoding="utf-8")
    assert pack(raw / "labelsTr" / "liver_001.nii.gz", tmp_path / "raw.mska").masks == [
        "hepar",
        "tumor",
    ]
    regions = {"labels": {"background": 0, "whole_tumor": [1, 2], "core": [2]}}
    (single / "dataset.json").write_text(json.dumps(regions), encoding="utf-8")
    with pytest.warns(UserWarning, match=r"labels \[1, 2\] have no name"):
        pack(single / "liver_7.nii.gz", tmp_path / "regions.mska")


def test_the_series_map_is_recorded_and_a_change_repacks(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uids = {f"case{i}": (f"1.2.826.0.1.3680043.10.{i}", f"1.2.3.{i}", None) for i in range(3)}
    table = tmp_path / "series.csv"
    with table.open("w", encoding="utf-8-sig", newline="") as stream:  # as Excel saves
        writer = csv.writer(stream)
        writer.writerow(["case", "SeriesInstanceUID", "FrameOfReferenceUID", "StudyInstanceUID"])
        for case, (series, frame, _) in uids.items():
            writer.writerow([case, series, frame, ""])
        writer.writerow(["case9", "1.2.9", "", ""])
    out = tmp_path / "out"
    assert main(["pack", str(cohort), "-o", str(out), "--series-map", str(table)]) == 0
    err = capsys.readouterr().err
    assert "no series for 2 case(s), e.g. case3, case4" in err
    assert "1 case(s) not in the cohort, e.g. case9" in err
    for case in (f"case{i}" for i in range(CASES)):
        with MaskArchive(out / f"{case}.mska") as archive:
            recorded = archive.image_series
        expected = uids.get(case)
        if expected is None:
            assert recorded is None
        else:
            assert recorded == {
                "SeriesInstanceUID": expected[0],
                "FrameOfReferenceUID": expected[1],
            }
    # the same map again: nothing to do; case1's series changed: case1 packed again
    assert main(["pack", str(cohort), "-o", str(out), "--series-map", str(table)]) == 0
    assert "0 packed, 5 unchanged" in capsys.readouterr().out
    text = table.read_text(encoding="utf-8-sig").replace("1.2.826.0.1.3680043.10.1", "1.2.7")
    table.write_text(text, encoding="utf-8-sig")
    assert main(["pack", str(cohort), "-o", str(out), "--series-map", str(table)]) == 0
    assert "1 packed, 4 unchanged" in capsys.readouterr().out
    with MaskArchive(out / "case1.mska") as archive:
        assert archive.image_series == {
            "SeriesInstanceUID": "1.2.7",
            "FrameOfReferenceUID": "1.2.3.1",
        }
    # other options are part of what a case is: another level packs every case again
    assert main(["pack", str(cohort), "-o", str(out), "--series-map", str(table),
                 "--level", "3"]) == 0  # fmt: skip
    assert "5 packed, 0 unchanged" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("case,Series\ncase0,1.2.3\n", "needs the columns case and SeriesInstanceUID"),
        ("case,SeriesInstanceUID\ncase0,1.2.abc\n", r"line 2: SeriesInstanceUID '1.2.abc' is not"),
        ("case,SeriesInstanceUID\ncase0,1.2.3\ncase0,1.2.4\n", "line 3: case 'case0' is given"),
        ("case,SeriesInstanceUID\ncase0,\n", "line 2: no case or no SeriesInstanceUID"),
        ("", "the series map is empty"),
        (  # Excel's "CSV" on a Chinese Windows: GBK (the error gave the codec's words)
            "case,SeriesInstanceUID\n病人甲,1.2.3\n".encode("gbk"),
            r"not UTF-8 text \(byte 0xb2 at 23\): save it as UTF-8 \(Excel: Save As, CSV UTF-8",
        ),
    ],
)
def test_a_bad_series_map_is_one_error_naming_the_line(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | bytes,
    message: str,
) -> None:  # fmt: skip
    table = tmp_path / "series.csv"
    table.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(MedmaskError, match=message):
        read_series_map(table)
    assert main(["pack", str(cohort), "-o", str(tmp_path / "out"), "--series-map", str(table)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # refused before anything is done
    assert captured.err.count("\n") == 1 and "series.csv" in captured.err
    assert not (tmp_path / "out").exists()


ITKSNAP = """################################################
# ITK-SnAP Label Description File
# File format:
# IDX   -R-  -G-  -B-  -A--  VIS MSH  LABEL
# Fields:
#    IDX:   Zero-based index
#    -R-:   Red color component (0..255)
#    -G-:   Green color component (0..255)
#    -B-:   Blue color component (0..255)
#    -A-:   Label transparency (0.00 .. 1.00)
#    VIS:   Label visibility (0 or 1)
#    IDX:   Label mesh visibility (0 or 1)
#  LABEL:   Label description
################################################
    0     0    0    0        0  0  0    "Clear Label"
    1   255    0    0        1  1  1    "{one}"
    2     0  255    0        1  1  1    "left kidney"
    3     0    0  255        1  1  1    "Label 3"
    5   255  255    0        1  1  1    "tumour core"
"""


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_itksnap_label_descriptions_name_the_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], encoding: str
) -> None:
    """ITK-SNAP (what annotators use) saves a label map and, exported beside it, its
    label description file: the labels were idx_1, idx_2 ... Now each label the map holds
    takes the name the file gives it (label 3, described but not drawn, is no mask; 7,
    drawn but not described, is idx_7 with the usual warning), a Chinese Windows' GBK
    file read as GB18030 with a warning, in a cohort of label maps too; editing the file
    repacks."""
    sitk = pytest.importorskip("SimpleITK")  # ITK's NIfTI writer, as ITK-SNAP saves
    cases = tmp_path / "annotated"
    cases.mkdir()
    labels = np.zeros((8, 10, 12), np.uint8)  # SimpleITK's (z, y, x)
    labels[1:3, 2:5, 2:6], labels[4:6, 6:9, 1:3], labels[6, 1, 1], labels[7, 8, 10] = 1, 2, 5, 7
    for case in ("case1", "case2"):
        image = sitk.GetImageFromArray(labels)
        image.SetSpacing((0.8, 0.8, 2.0))
        sitk.WriteImage(image, str(cases / f"{case}.nii.gz"))
    description = ITKSNAP.format(one="肝脏")
    (cases / "labels.txt").write_bytes(description.encode(encoding))
    layout = detect_cohort(cases)
    assert layout is not None and [case for case, _ in layout.cases] == ["case1", "case2"]
    assert layout.skipped == []  # (the description file is the cases' own)
    capsys.readouterr()
    assert main(["pack", str(cases), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "labels [7] have no name; named them idx_<label>" in err
    assert ("not UTF-8: its label names read as GB18030" in err) == (encoding == "gbk")
    for case in ("case1", "case2"):
        with MaskArchive(tmp_path / "out" / f"{case}.mska") as archive:
            assert sorted(archive.all_names()) == ["idx_7", "left kidney", "tumour core", "肝脏"]
            for name, label in (("肝脏", 1), ("left kidney", 2), ("tumour core", 5)):
                found = np.asarray(archive.load_mask(name).data) != 0
                assert np.array_equal(found, (labels == label).transpose(2, 1, 0))
            assert archive.meaning("肝脏").colour == (255, 0, 0)  # (the annotator's colours)
            assert archive.meaning("tumour core").colour == (255, 255, 0)
    (cases / "labels.txt").write_bytes(ITKSNAP.format(one="liver").encode(encoding))
    with pytest.warns(MedmaskWarning, match=r"labels \[7\] have no name"):
        assert len(pack_cohort(cases, tmp_path / "out").packed) == 2  # (the names changed)
    assert "liver" in MaskArchive(tmp_path / "out" / "case1.mska").all_names()
    (cases / "labels.txt").write_text(description + "    9  oops\n", encoding="utf-8")
    with pytest.raises(MedmaskError, match=r"labels.txt: line 20 is not a label entry"):
        pack(cases / "case1.nii.gz", tmp_path / "bad.mska")


def test_a_freesurfer_lookup_table_names_synthseg_label_maps(tmp_path: Path) -> None:
    """SynthSeg and FastSurfer number their brain label maps by FreeSurfer's colour lookup
    table: with ``FreeSurferColorLUT.txt`` beside them (``index name R G B A`` a line), the
    labels they hold take its names (they were idx_2, idx_17 ...)."""
    maps = tmp_path / "synthseg"
    maps.mkdir()
    labels = np.zeros((12, 10, 8), np.uint8)
    labels[1:5, 1:4, 1:3], labels[6:9, 5:8, 4:6], labels[10, 1, 1], labels[2, 8, 6] = 2, 41, 17, 53
    for case in ("sub-01", "sub-02"):
        nib.save(nib.Nifti1Image(labels, np.diag([1.0, 1.0, 1.0, 1.0])), maps / f"{case}.nii.gz")
    (maps / "FreeSurferColorLUT.txt").write_text(
        "#$Id: FreeSurferColorLUT.txt (an excerpt)\n"
        "\n"
        "#No. Label Name:                            R   G   B   A\n"
        "\n"
        "0   Unknown                                 0   0   0   0\n"
        "2   Left-Cerebral-White-Matter              245 245 245 0\n"
        "3   Left-Cerebral-Cortex                    205 62  78  0\n"
        "17  Left-Hippocampus                        220 216 20  0\n"
        "41  Right-Cerebral-White-Matter             245 245 245 0\n"
        "53  Right-Hippocampus                       220 216 20  0\n",
        encoding="utf-8",
    )
    layout = detect_cohort(maps)
    assert layout is not None and len(layout.cases) == 2 and layout.skipped == []
    result = pack_cohort(maps, tmp_path / "out")
    assert len(result.packed) == 2 and not result.failures
    with MaskArchive(tmp_path / "out" / "sub-01.mska") as archive:
        assert sorted(archive.all_names()) == [
            "Left-Cerebral-White-Matter", "Left-Hippocampus",
            "Right-Cerebral-White-Matter", "Right-Hippocampus",
        ]  # fmt: skip
        found = np.asarray(archive.load_mask("Left-Hippocampus").data) != 0
        assert np.array_equal(found, labels == 17)
        assert archive.meaning("Left-Hippocampus").colour == (220, 216, 20)


def test_what_workers_warn_of_is_said_as_in_one_process(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --workers 2 a worker's warnings were printed raw to its stderr (medmask's file,
    line and source line), repeats of one line dropped (4 files, 2 warnings), and on
    Dask they were lost; nor did "labels [1, 2] have no name" say which file. Every mode
    now says the same lines, each naming its file."""
    distributed = pytest.importorskip("distributed", reason="Dask is in the dask extra")
    labels = tmp_path / "labels"
    labels.mkdir()
    for index in range(4):
        array = np.zeros((12, 10, 6), np.uint8)
        array[2:5, 2:5, 1:3], array[7:9, 6:8, 3:5] = 1, 2
        image = nib.Nifti1Image(array, np.diag([1.0, 1.0, 2.0, 1.0]))
        qform = np.diag([1.0, 1.0, 2.0, 1.0])
        qform[0, 3] = 30.0 if index == 2 else 0.0  # case2's qform lies apart from its sform
        image.set_qform(qform, code=1)
        image.set_sform(np.diag([1.0, 1.0, 2.0, 1.0]), code=2)
        nib.save(image, labels / f"case{index}.nii.gz")

    def said(*how: str) -> list[str]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        capsys.readouterr()
        assert main(["pack", str(labels), "-o", str(out), *how]) == 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and "MedmaskWarning" not in err  # (the raw format)
        return sorted(line for line in err.splitlines() if line.startswith("medmask: warning"))

    here = said("--workers", "1")
    assert len(here) == 5
    for index in range(4):
        assert (
            f"medmask: warning: {labels / f'case{index}.nii.gz'}: labels [1, 2] have no name"
            in ("\n".join(here))
        )
    assert sum("case2.nii.gz: the qform and the sform" in line for line in here) == 1
    assert said("--workers", "2") == here
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    ) as cluster:  # (two packs at once in one worker: each thread hears its own)
        assert said("--scheduler", cluster.scheduler_address) == here


def _pack_in_a_daemon(cohort: Path, out: Path, said: Any) -> None:
    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("always")
        try:
            result = pack_cohort(cohort, out, groups={"ribs": "rib_*"}, workers=2)
            lines = " | ".join(str(w.message) for w in heard)
            said.put(f"ok {len(result.packed)} {len(result.failures)} {lines}")
        except BaseException as err:
            said.put(f"error {type(err).__name__}: {err}")


def test_a_cohort_packed_in_a_daemonic_process(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path
) -> None:
    """A Celery or Airflow task, a Dask worker: a daemonic process may not start
    processes, and pack_cohort(workers=2) there died, "daemonic processes are not allowed
    to have children". It packs the cases itself, saying so, to the same archives."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    said = context.Queue()
    daemon = context.Process(
        target=_pack_in_a_daemon, args=(cohort, tmp_path / "out", said), daemon=True
    )
    daemon.start()
    outcome = said.get(timeout=300)
    daemon.join(60)
    assert outcome.startswith(f"ok {CASES} 0 "), outcome
    assert "daemonic one" in outcome and "one at a time, not by 2 workers" in outcome
    assert archives(tmp_path / "out") == one_by_one


def test_a_script_without_a_main_guard_packs_in_worker_processes(
    cohort: Path, one_by_one: dict[str, bytes], tmp_path: Path
) -> None:
    """Spawned workers ran the calling script again: one that calls pack_cohort(...,
    workers=2) without ``if __name__ == "__main__":`` packed nothing ("worker failed:
    BrokenProcessPool" for every case, multiprocessing's bootstrapping error printed by
    each child). The workers run medmask's functions only: they skip the script."""
    script = tmp_path / "pack_them.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from medmask.ops.cohort import pack_cohort
            result = pack_cohort({str(cohort)!r}, {str(tmp_path / "out")!r},
                                 groups={{"ribs": "rib_*"}}, workers=2)
            print(len(result.packed), len(result.failures))
            """
        ),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=False, timeout=600
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(CASES), "0"]
    assert "bootstrapping phase" not in done.stderr
    assert archives(tmp_path / "out") == one_by_one


@pytest.mark.parametrize(
    ("stop", "said", "code"),
    [("SIGINT", "interrupted", 130), ("SIGTERM", "terminated (SIGTERM)", 143)],
)
def test_ctrl_c_is_one_line_and_the_next_run_takes_over_what_workers_wrote(
    cohort: Path, tmp_path: Path, stop: str, said: str, code: int
) -> None:
    """Ctrl-C printed Python's traceback. And the workers finish the case they hold after
    the run stops: the next run refused those archives ("exists and no earlier run of
    this cohort wrote it"). Now one line, exit 130, and the next run has no failure.
    SIGTERM (SLURM's scancel) likewise, exit 143: it killed the run, files half-written."""
    import signal
    import time

    many = tmp_path / "cohort"
    for copy in range(4):
        for case in sorted(p for p in cohort.iterdir() if p.is_dir()):
            shutil.copytree(case, many / f"{case.name}_{copy}")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "medmask", "pack", str(many), "-o", str(out), "--workers", "2"]

    # (SIGINT as a terminal's command gets it: a test run started in the background by a
    # shell ignores SIGINT, and its children inherit that - they would not stop)
    terminal = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
        " sys.argv = sys.argv[1:]; runpy.run_module('medmask', run_name='__main__', alter_sys=True)"
    )
    argv = [sys.executable, "-c", terminal, *argv[2:]]  # (-m medmask)
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    ) as run:
        deadline = time.monotonic() + 120
        manifest = out / MANIFEST
        while time.monotonic() < deadline and not (
            manifest.exists() and "claimed" in manifest.read_text(encoding="utf-8")
        ):
            time.sleep(0.01)
        os.killpg(run.pid, getattr(signal, stop))  # (a terminal's Ctrl-C, scancel: all)
        _, err = run.communicate(timeout=300)
    assert run.returncode == code, err
    assert err.splitlines() == [
        f"medmask: {said}; what was finished is kept and nothing half-written is left "
        "(a cohort pack goes on from there when run again)"
    ]
    assert not list(out.glob(".*.tmp"))
    again = pack_cohort(many, out)
    assert again.failures == [] and len(again.packed) + len(again.unchanged) == 4 * CASES
    # what a stopped run leaves when a worker wrote an archive it did not record: claimed
    # by the run, so packed again; an archive no run claimed stays refused
    for claimed, failures in ((True, 0), (False, 1)):
        mine = tmp_path / f"claimed_{claimed}"
        mine.mkdir()
        first = sorted(p.name for p in cohort.iterdir() if p.is_dir())[0]
        shutil.copy(out / f"{first}_0.mska", mine / f"{first}.mska")
        line = json.dumps({"case": first, "claimed": True}) + "\n"
        (mine / MANIFEST).write_text(line if claimed else "", encoding="utf-8")
        result = pack_cohort(cohort, mine)
        assert len(result.failures) == failures
        assert (first in result.packed) is claimed


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder: none to hide here")
def test_a_case_folder_that_cannot_be_read_is_a_failure_not_the_runs(
    cohort: Path, tmp_path: Path
) -> None:
    """A case folder of another account's (no permission): the other cases are packed,
    that one is in pack_failures.csv with the system's reason, and the run exits 1."""
    root = tmp_path / "cohort"
    shutil.copytree(cohort, root)
    (root / "case1").chmod(0)
    try:
        result = pack_cohort(root, tmp_path / "out")
        assert sorted(p.name for p in (tmp_path / "out").glob("*.mska")) == [
            f"case{i}.mska" for i in range(CASES) if i != 1
        ]
        assert [(f.source.name, f.reason) for f in result.failures] == [
            ("case1", f"{root / 'case1'}: Permission denied")
        ]
    finally:
        (root / "case1").chmod(0o755)
