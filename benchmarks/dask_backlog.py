"""Results waiting on a Dask cluster when the main process writes more slowly than the
cluster scans: this version against another's.

    .venv/bin/python benchmarks/dask_backlog.py --against /tmp/old/src [--files 10000]
        [--delay-ms 20] [--repeat 3]

One process writes every output of a Dask run while the cluster's workers scan. A large
cluster, a slow disk or a slow ``--format`` makes the workers finish batches faster than
that process takes them, and a batch's result waits on its worker until it is taken (with
``--instances``, a row per file). Here the same is made on this 2-core machine: the main
thread waits ``--delay-ms`` after each case.

Each side runs ``--series --instances`` on the same data (``scale_run.py``'s, generated
once under benchmarks/out/), in a fresh process, on one LocalCluster of 2 worker processes
(1 thread each, 127.0.0.1), restarted before each run. While it runs, a thread here asks
the scheduler every 50 ms how many batch results are held in the workers' memory, and
reads the workers' memory (the scheduler's view, refreshed at each heartbeat). Printed
per side: the peak of both, the run's time and the main process's peak memory; and
whether the two sides' tables are the same.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from scale_run import ROOT, dataset

CHILD = """
import json, sys, time, shutil
from pathlib import Path
from dcm_extractor.runner.pipeline import RunOptions, run
data, out, scheduler, delay = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], float(sys.argv[4])
shutil.rmtree(out, ignore_errors=True)
start = time.perf_counter()
options = RunOptions(data, out, merge_all=True, formats=("csv", "parquet"), resume=False,
                     series=True, instances=True, scheduler=scheduler)
summary = run(options, progress=lambda result: time.sleep(delay))
status = Path("/proc/self/status").read_text().splitlines()
peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(json.dumps({"seconds": time.perf_counter() - start, "files": summary.files,
                  "peak_mb": peak_kb / 1024}))
"""


def waiting(dask_scheduler: Any) -> tuple[int, float]:
    """(batch results in the workers' memory, the workers' memory in MB), on the scheduler."""
    held = sum(1 for task in dask_scheduler.tasks.values() if task.state == "memory")
    memory = sum(ws.memory.process for ws in dask_scheduler.workers.values())
    return held, memory / 2**20


class Sampler(threading.Thread):
    """Peaks of :func:`waiting` while a run goes on."""

    def __init__(self, client: Any) -> None:
        super().__init__(daemon=True)
        self.client, self.stop = client, threading.Event()
        self.held, self.memory = 0, 0.0

    def run(self) -> None:
        while not self.stop.is_set():
            held, memory = self.client.run_on_scheduler(waiting)
            self.held, self.memory = max(self.held, held), max(self.memory, memory)
            self.stop.wait(0.05)


def one_run(
    client: Any, address: str, data: Path, out: Path, source: Path | None, delay: float
) -> dict[str, float]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = str(source)
    client.restart()  # fresh workers: a worker keeps the memory an earlier run took
    sampler = Sampler(client)
    sampler.start()
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(data), str(out), address, str(delay)],
            capture_output=True, text=True, check=True, env=env,
        )  # fmt: skip
    finally:
        sampler.stop.set()
        sampler.join()
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(held=sampler.held, worker_mb=sampler.memory)
    return result


def main() -> None:
    import distributed

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--against", type=Path, required=True, help="the other src folder")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--delay-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = dataset(args.files)
    runs: dict[str, list[dict[str, float]]] = {"this": [], "other": []}
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address="127.0.0.1:0"
        ) as c,
        distributed.Client(c.scheduler_address) as client,
    ):
        for _ in range(args.repeat):
            for name, source in (("this", None), ("other", args.against)):
                out = ROOT / "out" / f"dask-backlog-{name}"
                result = one_run(
                    client, c.scheduler_address, data, out, source, args.delay_ms / 1000
                )
                runs[name].append(result)
    print(
        f"{args.files:,} files, --series --instances on 2 Dask workers, the main thread "
        f"waiting {args.delay_ms:g} ms a case; medians of {args.repeat} alternating runs"
    )
    print(f"{'':6s} {'s':>7s} {'main MB':>8s} {'batches waiting':>16s} {'worker MB':>10s}")
    for name, done in runs.items():
        print(
            f"{name:6s} {statistics.median(r['seconds'] for r in done):7.1f} "
            f"{max(r['peak_mb'] for r in done):8.0f} "
            f"{statistics.median(r['held'] for r in done):16.0f} "
            f"{statistics.median(r['worker_mb'] for r in done):10.0f}"
        )
    one, two = (ROOT / "out" / f"dask-backlog-{name}" for name in ("this", "other"))
    same = all(
        filecmp.cmp(one / name, two / name, shallow=False)
        for name in ("all_cases.csv", "all_series.csv", "extraction_report.csv")
    )
    print(f"same tables: {same}")


if __name__ == "__main__":
    main()
