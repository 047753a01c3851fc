"""Runs on a Dask cluster: an in-process LocalCluster and real scheduler/worker processes."""

from __future__ import annotations

import functools
import json
import operator
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from pydicom.data import get_testdata_file
from test_cases import SECONDARY_CAPTURE, _header_only, _image, _series_with_one_damaged_file

from dcm_extractor.extractor import main
from dcm_extractor.runner import cluster
from dcm_extractor.runner.batches import scan_batch
from dcm_extractor.runner.cluster import scan_on_cluster
from dcm_extractor.runner.isolation import CaseFailedError
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources import instances

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
DASK = Path(sys.executable).parent / "dask"


def tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}


@pytest.fixture
def data(tmp_path: Path, dicom_sample: DicomSample) -> Path:
    return Path(shutil.copytree(dicom_sample.cases_root, tmp_path / "cases"))


def extract(data: Path, out: Path, ids: Path, *extra: str) -> int:
    argv = ["-d", str(data), "-o", str(out), "--merge-all", "--no-resume", "-q"]
    return main(
        [*argv, "--log", str(out.parent / f"{out.name}.log"), "--projectid-map", str(ids), *extra]
    )


def test_local_cluster_gives_the_local_outputs(data: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.json"
    more = ["--series", "--columns", "KVP,(0009,04,GEMS_IDEN_01),PatientPosition"]
    more += ["--instances", "--format", "csv"]  # (the instance table in CSV: asked for)
    assert extract(data, tmp_path / "local", ids, "--workers", "1", *more) == 0
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, dashboard_address="127.0.0.1:0"
    ) as cluster:
        address = cluster.scheduler_address
        assert extract(data, tmp_path / "dask", ids, "--scheduler", address, *more) == 0
        # each case in a child process with a deadline, on workers that are daemonic
        # processes (under their nannies): every case failed, "daemonic processes are not
        # allowed to have children"
        timed = ["--scheduler", address, "--case-timeout", "600", *more]
        assert extract(data, tmp_path / "timed", ids, *timed) == 0
    assert tables(tmp_path / "dask") == tables(tmp_path / "local")
    assert tables(tmp_path / "timed") == tables(tmp_path / "local")
    assert b"PatientPosition" in tables(tmp_path / "dask")["all_series.csv"]
    instances = tables(tmp_path / "dask")["all_instances.csv"]  # (in the tables compared)
    assert instances.count(b"\n") > 20 and b"PatientPosition" in instances


def _bad_inputs(root: Path) -> None:
    """Issue 18's cases in one data root: a damaged element, a header without pixels, a
    zip and its identical copy, a FIFO, a dangling link, an empty zip, a hidden folder."""
    _series_with_one_damaged_file(root / "damaged")
    _header_only(root / "header_only" / "sc.dcm", "Doe^Jane", SECONDARY_CAPTURE)
    _image(root / "zips" / "loose.dcm")
    with zipfile.ZipFile(root / "zips" / "CT.zip", "w") as archive:
        archive.write(get_testdata_file("CT_small.dcm"), "CT_small.dcm")  # type: ignore[arg-type]
    (root / "zips" / "CT (1).zip").write_bytes((root / "zips" / "CT.zip").read_bytes())
    with zipfile.ZipFile(root / "zips" / "empty.zip", "w"):
        pass
    os.mkfifo(root / "zips" / "pipe")
    (root / "zips" / "gone").symlink_to(root / "nothing")
    (root / ".Trash").mkdir()
    (root / ".Trash" / "old.dcm").write_bytes(b"x")


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.suffix != ".lock"}


def test_bad_inputs_give_the_same_outputs_inline_in_a_pool_and_on_a_cluster(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    _bad_inputs(root)
    ids = tmp_path / "ids.json"
    runs = {}
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as cluster:
        ways = {
            "inline": ["--workers", "1"],
            "pool": ["--workers", "2"],
            "dask": ["--scheduler", cluster.scheduler_address],
        }
        for private in (False, True):
            for way, how in ways.items():
                out = tmp_path / f"{way}-{private}"
                more = ["--series", "--columns", "KVP,ImageType", *(["--desensitize"] * private)]
                assert extract(root, out, ids, *how, *more) == 0
                runs[way, private] = _outputs(out)
    for private in (False, True):
        inline = runs["inline", private]
        assert runs["pool", private] == inline
        assert runs["dask", private] == inline
        assert inline["all_series.csv"].count(b"\n") > 2  # series rows were compared too
        report = inline["extraction_report.csv"].decode("utf-8")
        for reason in ("unreadable", "duplicate", "empty_zip", "not_regular_file",
                       "dangling_link", "hidden_folder", "no_images"):  # fmt: skip
            assert reason in report, reason
        names = ("damaged", "header_only", "zips", "CT (1).zip", "Doe", "Trash")
        assert any(name in report for name in names) != private  # names only when identified


def test_unreachable_scheduler_is_one_clear_error(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = extract(
        data,
        tmp_path / "o",
        tmp_path / "ids.json",
        "--scheduler-file",
        str(tmp_path / "missing.json"),
    )
    assert code == 1
    assert "Dask scheduler" in capsys.readouterr().err
    # the dashboard's address, copied from a notebook, is not the scheduler's: said so
    dashboard = "http://127.0.0.1:8787/status"
    assert extract(data, tmp_path / "o", tmp_path / "ids.json", "--scheduler", dashboard) == 1
    err = capsys.readouterr().err
    assert "that is the address of the scheduler's dashboard" in err and "tcp://HOST:PORT" in err


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stream:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(argv, stdout=stream, stderr=subprocess.STDOUT)


@pytest.mark.skipif(not DASK.exists(), reason="the dask command line is not installed")
def test_real_scheduler_and_workers_and_a_killed_worker(data: Path, tmp_path: Path) -> None:
    ids = tmp_path / "ids.json"
    assert extract(data, tmp_path / "local", ids, "--workers", "1") == 0
    scheduler_file = tmp_path / "scheduler.json"
    common = ["--no-dashboard"]
    processes = [
        _start([str(DASK), "scheduler", "--host", "127.0.0.1", "--port", "0",
                "--dashboard-address", "127.0.0.1:0",  # (its HTTP server: not 0.0.0.0:8787)
                "--scheduler-file", str(scheduler_file), *common], tmp_path / "scheduler.log"),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for index in range(2):
            worker = [str(DASK), "worker", "--scheduler-file", str(scheduler_file)]
            worker += ["--nthreads", "1", "--host", "127.0.0.1", *common]
            processes.append(_start(worker, tmp_path / f"worker{index}.log"))
        with distributed.Client(scheduler_file=str(scheduler_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
        assert extract(data, tmp_path / "dask", ids, "--scheduler-file", str(scheduler_file)) == 0
        assert tables(tmp_path / "dask") == tables(tmp_path / "local")
        # kill one worker while a run is in flight: its cases run again on the other
        victim = processes[1]
        kill = f"import os, signal, time; time.sleep(0.3); os.kill({victim.pid}, signal.SIGKILL)"
        with subprocess.Popen([sys.executable, "-c", kill]):
            assert (
                extract(data, tmp_path / "killed", ids, "--scheduler-file", str(scheduler_file))
                == 0
            )
        assert tables(tmp_path / "killed") == tables(tmp_path / "local")
        address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        assert address.startswith("tcp://127.0.0.1:")  # everything on this machine
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _one_file_cases(root: Path, count: int) -> list[Path]:
    source = Path(str(get_testdata_file("CT_small.dcm")))
    cases = []
    for index in range(count):
        case = root / f"case{index:03d}"
        case.mkdir(parents=True)
        shutil.copyfile(source, case / "1.dcm")
        cases.append(case)
    return cases


@pytest.fixture
def cases48(tmp_path: Path) -> tuple[list[Path], Any]:
    """48 one-file cases (on 1 worker thread: 16 batches of 3) and the scan of a batch."""
    cases = _one_file_cases(tmp_path / "cases", 48)
    scan = functools.partial(scan_batch, root=tmp_path / "cases", timeout=None, extras=None)
    return cases, scan


def _one_worker() -> Any:
    """A LocalCluster of one worker process with one thread (a context manager)."""
    return distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    )


@pytest.fixture
def arrived(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per case result unpickled in this process: every CaseResult unpickles its
    instance rows through instances._unmarshalled."""
    seen: list[str] = []
    real = instances._unmarshalled

    def counted(headers: tuple[str, ...], rows: bytes) -> instances.InstanceRows:
        seen.append("result")
        return real(headers, rows)

    monkeypatch.setattr(instances, "_unmarshalled", counted)
    return seen


@pytest.fixture
def submitted(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of batches of each ``Client.map`` call (the real one runs)."""
    counts: list[int] = []
    real_map = distributed.Client.map

    def counting_map(self: Any, func: Any, *iterables: Any, **kwargs: Any) -> Any:
        futures = real_map(self, func, *iterables, **kwargs)
        counts.append(len(futures))
        return futures

    monkeypatch.setattr(distributed.Client, "map", counting_map)
    return counts


def test_each_batch_is_fetched_from_its_worker_once(
    cases48: tuple[list[Path], Any], arrived: list[str]
) -> None:
    # Dask's Future.result() fetches and unpickles a result on every call: taken case by
    # case, a batch of 3 cases was unpickled 3 times (``arrived`` counts the case results
    # unpickled in this process).
    cases, scan = cases48  # 1 worker: batches of 48 // 16 = 3
    with _one_worker() as cluster:
        outcomes, close = scan_on_cluster(cases, scan, cluster.scheduler_address, None)
        try:
            results = [outcomes[case.name]() for case in cases]
        finally:
            close()
    assert [r.name for r in results] == [case.name for case in cases]
    assert all(r.files == 1 and r.images == 1 for r in results)
    assert len(arrived) == len(cases)  # 144 before: each batch of 3 fetched 3 times


def test_batches_go_out_a_bounded_number_at_a_time_and_come_back_before_they_are_taken(
    cases48: tuple[list[Path], Any], arrived: list[str], submitted: list[int]
) -> None:
    # Submitted all at once, batches whose results this process has not taken yet waited
    # on the workers without bound (with --instances, a row per file). Now at most
    # MIN_AHEAD (1 worker thread: 2 per thread is fewer) go beyond the one being taken;
    # the PREFETCH after it are fetched as soon as they are done, before their first case
    # is taken, and the others wait on the workers until then.
    cases, scan = cases48  # 1 worker: 16 batches of 3
    window = 1 + cluster.MIN_AHEAD  # the batch being taken and those ahead of it
    fetched = 3 * (1 + cluster.PREFETCH)  # the cases of batch 0 and of those prefetched

    def finished(dask_scheduler: Any) -> int:  # batches whose task has ended on the worker
        return len({t.key for t in dask_scheduler.transition_log if t.finish == "memory"})

    with _one_worker() as local, distributed.Client(local.scheduler_address) as watcher:
        outcomes, close = scan_on_cluster(cases, scan, local.scheduler_address, None)
        try:
            assert sum(submitted) == window  # (16 before)
            results = [outcomes[case.name]() for case in cases[:3]]  # batch 0, all of it
            assert sum(submitted) == window  # none more until batch 1 is taken
            deadline = time.monotonic() + 120  # (waits for events, not timings)
            while (
                len(arrived) < fetched or watcher.run_on_scheduler(finished) < window
            ) and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # (a fetch of batches 3-4, which must not come, would show)
            assert watcher.run_on_scheduler(finished) == window  # all 5 scanned
            assert len(arrived) == fetched  # batches 1-2 came unasked, 3-4 wait on the worker
            for number in range(1, 16):
                batch = cases[3 * number : 3 * number + 3]
                results += [outcomes[case.name]() for case in batch]
                assert sum(submitted) == min(16, number + window)
        finally:
            close()
    assert [r.name for r in results] == [case.name for case in cases]
    assert all(r.files == 1 and r.images == 1 for r in results)
    assert len(arrived) == len(cases)  # each result still fetched once


def test_the_window_of_batches_grows_with_the_cluster(
    cases48: tuple[list[Path], Any], monkeypatch: pytest.MonkeyPatch, submitted: list[int]
) -> None:
    # A dask-jobqueue cluster's workers join while the run goes on: they must get work.
    monkeypatch.setattr(cluster, "WINDOW_READ_EVERY", 0.0)  # the threads read at each batch
    cases, scan = cases48  # 1 worker thread: 16 batches of 3
    with _one_worker() as local, distributed.Client(local.scheduler_address) as watcher:
        outcomes, close = scan_on_cluster(cases, scan, local.scheduler_address, None)
        try:
            for case in cases[:3]:
                outcomes[case.name]()
            assert sum(submitted) == 1 + cluster.MIN_AHEAD
            local.scale(4)
            watcher.wait_for_workers(4, timeout=300)
            outcomes[cases[3].name]()  # batch 1's first case: 2 batches per thread ahead
            assert sum(submitted) == 2 + cluster.AHEAD_PER_THREAD * 4
            results = [outcomes[case.name]() for case in cases[4:]]
        finally:
            close()
    assert sum(submitted) == 16
    assert all(r.files == 1 and r.images == 1 for r in results)


def test_a_scheduler_lost_mid_run_fails_the_cases_left_and_nothing_hangs(
    cases48: tuple[list[Path], Any],
) -> None:
    # Batches not yet submitted when the scheduler goes would wait for ever on a closed
    # client: each case must end, counted or failed with its reason.
    cases, scan = cases48  # 16 batches of 3
    local = _one_worker()
    # (the client gives the lost scheduler Dask's connect timeout to come back: 30 s by
    # default, 5 here)
    with dask.config.set({"distributed.comm.timeouts.connect": "5s"}):
        outcomes, close = scan_on_cluster(cases, scan, local.scheduler_address, None)
    taken: list[str] = []

    def take_all() -> None:
        for number, case in enumerate(cases):
            if number == 6:  # two batches written, the cluster goes
                local.close()
            try:
                outcomes[case.name]()
                taken.append("ok")
            except CaseFailedError as err:
                taken.append(err.reason)

    # (in a thread, so that a hang fails the test instead of stopping the suite)
    taking = threading.Thread(target=take_all, daemon=True)
    try:
        taking.start()
        taking.join(timeout=600)
        assert not taking.is_alive(), f"hung after {len(taken)} cases"
    finally:
        close()
        local.close()
    assert len(taken) == len(cases)
    assert taken[:6] == ["ok"] * 6
    assert all(t == "ok" or t.startswith("its Dask task failed (") for t in taken)
    assert taken[-1] != "ok"  # (batches beyond the window were never scanned)


def test_a_failed_batch_task_fails_each_of_its_cases(cases48: tuple[list[Path], Any]) -> None:
    cases, _ = cases48
    broken = operator.itemgetter(99)  # the task itself raises (IndexError), on the worker
    with _one_worker() as cluster:
        outcomes, close = scan_on_cluster(cases, broken, cluster.scheduler_address, None)
        try:
            for case in cases[:6]:  # two batches of 3: every case says why, none is lost
                with pytest.raises(CaseFailedError, match=r"its Dask task failed \(IndexError\)"):
                    outcomes[case.name]()
        finally:
            close()


# Loaded by every Python process started with its folder on PYTHONPATH (the cluster's
# worker processes, not the test's own): opening a file whose path ends in DIES_AT kills
# the process, as the kernel's out-of-memory killer ends a worker scanning a case too
# large for its machine - every time.
DYING = """
import os, signal, sys
DIES_AT = os.environ["DIES_AT"]
def hook(event, args):
    if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.fsdecode(args[0]).endswith(DIES_AT):
            os.kill(os.getpid(), signal.SIGKILL)
sys.addaudithook(hook)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_a_case_whose_worker_dies_costs_only_itself(
    cases48: tuple[list[Path], Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch task whose workers died (KilledWorker) failed each of its cases, and the
    batches that ran beside it on the dying workers: each such case is scanned again in a
    task of its own, and only the case that kills its worker fails."""
    cases, scan = cases48
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(DYING)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hooks), *sys.path]))
    monkeypatch.setenv("DIES_AT", str(Path("case007") / "1.dcm"))
    # (a task whose worker died is not given to another: KilledWorker at once)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), _one_worker() as c:
        outcomes, close = scan_on_cluster(cases, scan, c.scheduler_address, None)
        try:
            taken = {}
            for case in cases:
                try:
                    taken[case.name] = outcomes[case.name]().images
                except CaseFailedError as err:
                    taken[case.name] = str(err)
        finally:
            close()
    killer = taken.pop("case007")
    assert "its Dask worker died scanning it (out of memory?), also alone (KilledWorker)" in killer
    assert set(taken.values()) == {1}  # every other case scanned, its one image counted


def test_a_cluster_that_cannot_run_dcm_extractor_is_one_clear_error(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cluster started from another environment (a SLURM job's Python without medkit,
    or an older medkit) failed every case alone, "its Dask task failed (RuntimeError)",
    the reason in the scheduler's log only. It is one error before any case is sent."""
    ids = tmp_path / "ids.json"
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        ) as lc,
        distributed.Client(lc) as client,
    ):
        one = sorted(client.scheduler_info()["workers"])[0]
        client.run(exec, "import sys; sys.modules['dcm_extractor'] = None", {}, workers=[one])
        capsys.readouterr()
        assert extract(data, tmp_path / "o1", ids, "--scheduler", lc.scheduler_address) == 1
        err = capsys.readouterr().err
        assert f"1 of its 2 workers cannot import dcm_extractor ({one}: ModuleNotFoundError" in err
        assert "install medkit" in err and "Traceback" not in err
        assert not list((tmp_path / "o1").glob("*.csv"))  # no case tried
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        ) as lc,
        distributed.Client(lc) as client,
    ):
        client.run(exec, "import importlib.metadata as m; m.version = lambda name: '0.0.9'", {})
        assert extract(data, tmp_path / "o2", ids, "--scheduler", lc.scheduler_address) == 1
        err = capsys.readouterr().err
        assert "2 of its 2 workers run medkit 0.0.9" in err and "this is 0.1" in err
        # workers running from a source tree (PYTHONPATH, no installed medkit): no version
        # to compare, and they import it: fine
        source_tree = (
            "import importlib.metadata as m\n"
            "def version(name):\n    raise m.PackageNotFoundError(name)\n"
            "m.version = version"
        )
        client.run(exec, source_tree, {})
        assert extract(data, tmp_path / "o4", ids, "--scheduler", lc.scheduler_address) == 0
    # a scheduler process that cannot import it (it unpickles the tasks)
    scheduler_file = tmp_path / "scheduler.json"
    start = (
        "import sys; sys.modules['dcm_extractor'] = None; "
        "from distributed.cli.dask_scheduler import main; main()"
    )
    scheduler = _start(
        [sys.executable, "-c", start, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--dashboard-address", "127.0.0.1:0", "--scheduler-file", str(scheduler_file)],
        tmp_path / "scheduler.log",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        argv = ["--scheduler-file", str(scheduler_file)]
        assert extract(data, tmp_path / "o3", ids, *argv) == 1
        err = capsys.readouterr().err
        assert "its scheduler cannot import dcm_extractor (ModuleNotFoundError" in err
    finally:
        scheduler.send_signal(signal.SIGTERM)
        try:
            scheduler.wait(20)
        except subprocess.TimeoutExpired:
            scheduler.kill()
            scheduler.wait()


def test_a_relative_data_root_and_workers_that_do_not_see_it(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``-d cases`` (relative) with workers started in another folder: every case was
    "unreadable_folder (FileNotFoundError)", 0 rows, exit 0. The workers get absolute
    paths; workers that do not see the data root at all (another mount) are one error."""
    ids = tmp_path / "ids.json"
    assert extract(data, tmp_path / "local", ids, "--workers", "1") == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(data.parent)
    relative = Path(data.name)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        ) as lc,
        distributed.Client(lc) as client,
    ):
        client.run(os.chdir, str(elsewhere))  # (as `dask worker` started in another folder)
        assert extract(relative, tmp_path / "dask", ids, "--scheduler", lc.scheduler_address) == 0
        assert tables(tmp_path / "dask") == tables(tmp_path / "local")
        one = sorted(client.scheduler_info()["workers"])[0]
        blind = (  # (a worker whose file system lacks the data: another machine's mounts)
            "import genericpath, os.path; seen = genericpath.isdir; "
            f"genericpath.isdir = os.path.isdir = lambda p: p != {str(data)!r} and seen(p)"
        )
        client.run(exec, blind, {}, workers=[one])
        capsys.readouterr()
        assert extract(relative, tmp_path / "o2", ids, "--scheduler", lc.scheduler_address) == 1
        err = capsys.readouterr().err
        assert f"1 of its 2 workers do not see the folder {data} ({one})" in err
        assert not list((tmp_path / "o2").glob("*.csv"))


@pytest.mark.parametrize("package", ["dcm_extractor.runner.cluster", "medmask.ops.cluster"])
def test_a_client_whose_event_loop_starts_late_is_made_again(package: str) -> None:
    """On a machine busy on every core Dask's client failed an ``assert`` (its event loop's
    thread not started within 10 s): a traceback from Dask's internals ended `make test`
    once. Both tools' clients are made again; after 3 such failures one clear error."""
    import importlib

    started = importlib.import_module(package)._started
    tries: list[int] = []

    def late(failures: int) -> Any:
        tries.append(1)
        if len(tries) <= failures:
            raise AssertionError  # (what distributed's LoopRunner raises)
        return "client"

    assert started(lambda: late(2)) == "client" and len(tries) == 3
    tries.clear()
    with pytest.raises(TimeoutError, match="event loop did not start, 3 times"):
        started(lambda: late(3))
    assert len(tries) == 3
