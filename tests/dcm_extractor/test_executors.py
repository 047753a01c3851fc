"""Where cases run: a pool that outlives a dead worker, and a child process per case."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from slow_case import make_slow_case

from dcm_extractor import RunOptions, run
from dcm_extractor.runner.isolation import CaseFailedError, scan_case_isolated
from dcm_extractor.sample import generate_dicom_dataset


def _kill_a_child_once_busy(killed: list[int], delay: float) -> threading.Thread:
    """Kill (SIGKILL) one child process of this one, ``delay`` s after the first appears
    that was not there when this was called (an earlier test's pool worker not reaped
    yet is not it: killing that one instead left the case running, the test waiting)."""
    earlier = {child.pid for child in multiprocessing.active_children()}

    def new_children() -> list[multiprocessing.process.BaseProcess]:
        return [c for c in multiprocessing.active_children() if c.pid not in earlier]

    def kill() -> None:
        deadline = time.monotonic() + 120
        while not new_children() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(delay)
        children = new_children()
        if children and children[0].pid is not None:
            os.kill(children[0].pid, signal.SIGKILL)
            killed.append(children[0].pid)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".csv"}


def test_a_killed_pool_worker_costs_no_case(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Python's pool fails every unfinished batch when one worker dies (the issue: five
    cases lost to one kill); the run scans them again and loses none."""
    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=8).cases_root
    for index in range(3):  # first in project-ID order: both workers busy, batches waiting
        make_slow_case(root / f"0_slow{index}" / "many", files=20_000)
    ids = tmp_path / "ids.json"
    inline = run(RunOptions(root, tmp_path / "one", merge_all=True, projectid_map=ids))
    killed: list[int] = []
    thread = _kill_a_child_once_busy(killed, delay=0.5)
    with caplog.at_level(logging.WARNING, logger="dcm_extractor"):
        pooled = run(
            RunOptions(root, tmp_path / "two", merge_all=True, workers=2, projectid_map=ids)
        )
    thread.join()
    assert killed, "no worker process was killed"
    assert "a worker process died" in caplog.text
    assert pooled.failed == 0
    assert (pooled.files, pooled.images, pooled.rows) == (inline.files, inline.images, inline.rows)
    assert _tables(tmp_path / "two") == _tables(tmp_path / "one")


def test_a_case_whose_process_dies_fails_alone_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case's process is killed while it scans. Its scan is one that never ends (the
    forked child runs it): the kill always comes mid-case. (A slow real case, killed
    0.2 s in, sometimes ended first: the test failed on a fast moment.)"""
    from dcm_extractor.runner import isolation

    def stuck(*args: object, **kwargs: object) -> None:
        time.sleep(3600)

    monkeypatch.setattr(isolation, "scan_case", stuck)
    case = tmp_path / "root" / "case"
    case.mkdir(parents=True)
    killed: list[int] = []
    thread = _kill_a_child_once_busy(killed, delay=0.0)
    with pytest.raises(CaseFailedError) as caught:  # (a kill that missed: the limit, not a hang)
        scan_case_isolated(case, case.parent, timeout=600)
    thread.join()
    assert killed
    assert caught.value.case == "case"
    assert caught.value.reason == f"its process died (exit code {-signal.SIGKILL})"


def test_the_pool_holds_a_few_batches_not_the_whole_run(tmp_path: Path) -> None:
    """Results wait in the main process until their cases are taken: the pool submits a
    few batches ahead of the one being taken and lets each go after its last case, so
    the rows held do not grow with the run (they did: every result was kept to the end)."""
    from dcm_extractor.runner.batches import case_batches
    from dcm_extractor.runner.executors import WorkerPool
    from dcm_extractor.sources.cases import scan_case

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=12, showcase=False).cases_root
    cases = sorted(root.iterdir())
    batches = [[case] for case in cases]  # one case a batch: 12 batches for 2 workers
    assert case_batches(cases, 2) == batches
    pool = WorkerPool(batches, root, None, 2)
    try:
        most_held = 0
        for number, batch in enumerate(batches):
            result = pool.outcome(number, 0, batch[0].name)
            assert result == scan_case(batch[0], root)  # the same as scanned here
            held = sum(future is not None for future in pool.futures)
            most_held = max(most_held, held)
            assert pool.futures[number] is None  # its only case taken: let go
        assert 0 < most_held <= pool.ahead + 1 < len(batches)
    finally:
        pool.shutdown()


def test_instance_runs_go_in_small_batches_and_give_the_tables_of_one_process(
    tmp_path: Path,
) -> None:
    """With --instances a batch is at most INSTANCE_BATCH_CASES cases (its result waits
    whole in the main process); the pooled run's tables are the in-process run's."""
    import pyarrow.parquet as pq

    from dcm_extractor.runner.batches import INSTANCE_BATCH_CASES, case_batches

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=10, showcase=False).cases_root
    cases = sorted(root.iterdir())
    assert max(map(len, case_batches(cases * 40, 1, INSTANCE_BATCH_CASES))) == 4
    assert max(map(len, case_batches(cases * 40, 1))) == 25  # 400 cases / 16 batches
    ids = tmp_path / "ids.json"
    for name, workers in (("one", 1), ("two", 2)):
        options = RunOptions(
            root, tmp_path / name, merge_all=True, workers=workers, projectid_map=ids,
            instances=True, series=True, formats=("csv", "parquet"),
        )  # fmt: skip
        run(options)
    assert _tables(tmp_path / "one") == _tables(tmp_path / "two")
    one, two = (pq.read_table(tmp_path / n / "all_instances.parquet") for n in ("one", "two"))
    assert one.num_rows > 0 and one.equals(two)


def _run_in_a_daemon(root: Path, out: Path, ids: Path, said: multiprocessing.Queue[str]) -> None:
    messages: list[str] = []

    class Heard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    logging.getLogger("dcm_extractor").addHandler(Heard())
    try:
        options = RunOptions(root, out, merge_all=True, workers=2, projectid_map=ids)
        summary = run(options)
        said.put(f"ok {summary.failed} " + " | ".join(messages))
    except BaseException as err:
        said.put(f"error {type(err).__name__}: {err}")


def test_a_run_in_a_daemonic_process_scans_its_cases_itself(tmp_path: Path) -> None:
    """A Celery or Airflow task, a Dask worker: a daemonic process may not start
    processes, and run(workers=2) there died, "daemonic processes are not allowed to have
    children". It scans the cases itself, saying so, to the same tables."""
    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=4).cases_root
    ids = tmp_path / "ids.json"
    run(RunOptions(root, tmp_path / "one", merge_all=True, projectid_map=ids))
    context = multiprocessing.get_context("fork")
    said: multiprocessing.Queue[str] = context.Queue()
    daemon = context.Process(
        target=_run_in_a_daemon, args=(root, tmp_path / "daemon", ids, said), daemon=True
    )
    daemon.start()
    outcome = said.get(timeout=300)
    daemon.join(60)
    assert outcome.startswith("ok 0 "), outcome
    assert "daemonic one" in outcome and "one at a time, not by 2 workers" in outcome
    assert _tables(tmp_path / "daemon") == _tables(tmp_path / "one")


def test_spawned_processes_give_the_tables_of_forked_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """macOS and Windows start processes by spawn (a fresh interpreter that imports what
    it runs, and takes its work pickled), Linux by fork: the spawn path, run here, gives
    the tables the fork path gives - with a pool of workers, and with a process per case
    (--case-timeout) started in each of them."""
    import pyarrow.parquet as pq

    from dcm_extractor.runner import isolation
    from dcm_extractor.runner.executors import WorkerPool

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=6).cases_root
    ids = tmp_path / "ids.json"

    def options(name: str, timeout: float | None) -> RunOptions:
        return RunOptions(
            root, tmp_path / name, merge_all=True, workers=2, projectid_map=ids,
            instances=True, series=True, case_timeout=timeout,
        )  # fmt: skip

    forked = run(options("fork", None))
    monkeypatch.setattr(isolation, "START_METHOD", "spawn")
    pool = WorkerPool([], root, None, 1)
    assert pool.context.get_start_method() == "spawn"
    pool.pool.shutdown()
    for name, timeout in (("spawn", None), ("spawn_each", 600.0)):
        spawned = run(options(name, timeout))
        assert spawned.failed == forked.failed == 0
        assert (spawned.files, spawned.images) == (forked.files, forked.images)
        assert _tables(tmp_path / name) == _tables(tmp_path / "fork")
        table = pq.read_table(tmp_path / name / "all_instances.parquet")
        assert table.num_rows > 0
        assert table.equals(pq.read_table(tmp_path / "fork" / "all_instances.parquet"))


_UNGUARDED = """\
import sys
from pathlib import Path

from dcm_extractor import RunOptions, run
from dcm_extractor.runner import isolation

isolation.START_METHOD = sys.argv[3]
root, out = Path(sys.argv[1]), Path(sys.argv[2])
# (no `if __name__ == "__main__":`: a spawned process runs its parent's script first)
summary = run(RunOptions(root, out, workers=2, merge_all=True, case_timeout=600))
print(f"ran: {summary.failed} failed, {summary.images} images")
"""


def test_a_script_without_the_main_guard_runs_with_spawned_workers(tmp_path: Path) -> None:
    """A script that calls run() outside `if __name__ == "__main__":`, where processes are
    spawned (macOS, Windows): each worker (and each case's process) ran the script again
    first, started the run again and died - every case "failed: its process died". The
    workers now skip the script: the run gives the tables a forked run gives."""
    import subprocess
    import sys

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=4).cases_root
    script = tmp_path / "unguarded.py"
    script.write_text(_UNGUARDED)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    said = {}
    for method in ("fork", "spawn"):
        done = subprocess.run(
            [sys.executable, str(script), str(root), str(tmp_path / method), method],
            capture_output=True, text=True, env=env, timeout=600, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        said[method] = done.stdout
        assert "Traceback" not in done.stderr, done.stderr
    assert said["spawn"] == said["fork"]
    assert said["fork"].startswith("ran: 0 failed, ")
    assert _tables(tmp_path / "spawn") == _tables(tmp_path / "fork")


def test_workers_that_end_as_they_start_stop_the_run_with_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker processes that die as they start (each forked one runs the dying starter)
    would fail every case, each "its process died", a new pool after each: the run
    stops with one WorkersError, and writes no tables."""
    from dcm_extractor import WorkersError
    from dcm_extractor.runner import executors

    def die_at_start(parent: int, start_method: str) -> None:
        os._exit(1)

    monkeypatch.setattr(executors, "_start_worker", die_at_start)
    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=4, showcase=False).cases_root
    out = tmp_path / "out"
    with pytest.raises(WorkersError, match="worker processes end as they start"):
        run(RunOptions(root, out, workers=2, merge_all=True, projectid_map=tmp_path / "i.json"))
    assert not list(out.glob("*.csv"))


def test_a_worker_dying_while_this_process_writes_costs_no_case(tmp_path: Path) -> None:
    """The pool breaks (a worker killed: out of memory) while the main process is between
    cases, with batches not yet submitted: the next case taken submits more, to a broken
    pool. That raised BrokenProcessPool out of the run (a traceback, the run lost); now
    those batches go to the new pool and every case gives its result."""
    from dcm_extractor.runner.batches import case_batches
    from dcm_extractor.runner.executors import WorkerPool
    from dcm_extractor.sources.cases import scan_case

    root = generate_dicom_dataset(tmp_path / "s", bulk_cases=10, showcase=False).cases_root
    cases = sorted(root.iterdir())
    batches = case_batches(cases, 2, 1)  # one case a batch: more batches than go ahead
    earlier = {child.pid for child in multiprocessing.active_children()}
    pool = WorkerPool(batches, root, None, 2)
    try:
        assert len(batches) > 1 + pool.ahead
        first = pool.outcome(0, 0, cases[0].name)
        for future in pool.futures[1 : 1 + pool.ahead]:  # submitted, finished
            assert future is not None and future.result()
        worker = next(c for c in multiprocessing.active_children() if c.pid not in earlier)
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 300
        while not getattr(pool.pool, "_broken", False):  # the pool has seen it
            assert time.monotonic() < deadline, "the pool never saw its worker die"
            time.sleep(0.05)
        taken = [first] + [pool.outcome(n, 0, cases[n].name) for n in range(1, len(cases))]
    finally:
        pool.shutdown()
    assert [r.rows for r in taken] == [scan_case(c, root).rows for c in cases]
