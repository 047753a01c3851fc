"""End-to-end extraction at scale: time, files/s and peak memory for 1 and 2 workers.

    .venv/bin/python benchmarks/scale_run.py [--files 100000] [--small 10000]
    .venv/bin/python benchmarks/scale_run.py --against /tmp/old/src --repeat 5 --workers 1
    .venv/bin/python benchmarks/scale_run.py --series --repeat 5

Generates (once, under benchmarks/out/) a data set of ``--files`` files from the real
CT header template when present (half the cases in zips, 100 files per case), runs the
whole extraction (per-case tables, merged CSV + Parquet, report) in a fresh process
with 1 and with 2 workers, and prints wall time, files/s, the main process's peak RSS
and whether the two runs' tables are identical. The same for ``--small`` files shows
whether memory stays flat as the number of files grows.

``--against SRC`` runs another version's ``dcm_extractor`` (``SRC`` is its ``src``
folder, e.g. of ``git worktree add /tmp/old <commit>``) on the same data, alternating
with this one ``--repeat`` times (this machine's timings drift by 10% between runs, so
one run each proves nothing), and prints the median time of each and their ratio.

``--series`` compares, the same way, runs with ``--series --report`` (the series table
and report.html besides the case tables) against runs without; ``--instances`` runs with
``--series --instances`` (series, study and instance tables) against runs without
(issue 32's target: <= 1.15x the time, the main process's peak memory within 10%).

``--dask`` makes every run of a comparison scan on a Dask LocalCluster of ``--workers``
worker processes (one thread each, on 127.0.0.1, started once for all runs) instead of the
local pool; the CPU columns then count the main process only (the workers are not its
children). Instruction counts (below) always scan in the counted process.

Runs are made without the resume manifest unless ``--resume`` is given: then every run
writes one into an empty output folder, as a first ``dcm-extract`` run does by default
(with ``--instances`` the manifest holds every instance row).

``--instructions`` adds, to a comparison, the instructions each side executes per file,
counted by valgrind's callgrind (``--workers`` processes: with more than one, the main
process and its pool's, summed; a fixed hash seed): a count that other
guests of a shared machine do not change (numpy's idle OpenBLAS threads, whose spinning
made it move by 1-2%, are kept to one), where its timings drift by 10-30%.
Per file means the difference between runs over 25 and 5 cases of the ``--small`` set,
divided by the difference in files, so start-up and imports drop out. It counts work, not
time: memory stalls (the cache misses of more objects alive) are time it does not see.
``--cache`` counts those too, in cachegrind's model of this machine's caches (level 1
and level 2; a model: it does not see what the kernel's copies bring into the caches, so
a first read of bytes ``os.read`` gave counts as a miss here that is a hit in truth).
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEMPLATE = ROOT.parent.parent / "shared" / "data" / "ct_sample" / "I10"
PER_CASE = 100

CHILD = """
import json, os, resource, sys, time
from pathlib import Path
from dcm_extractor.runner.pipeline import RunOptions, run
data, out, workers = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
more = {"series": True, "html_report": True} if sys.argv[4:] == ["series"] else {}
if sys.argv[4:] == ["instances"]:
    more = {"series": True, "instances": True}
def cpu():  # user + system seconds of this process and its finished children (pool workers)
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
start, cpu_start = time.perf_counter(), cpu()
resume = os.environ.get("SCALE_RUN_RESUME") == "1"  # (the CLI's default: on)
if os.environ.get("SCALE_RUN_SCHEDULER"):  # --dask: the benchmark's LocalCluster
    more["scheduler"] = os.environ["SCALE_RUN_SCHEDULER"]
summary = run(RunOptions(data, out, merge_all=True, formats=("csv", "parquet"),
                         workers=workers, resume=resume, **more))
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
# VmHWM: this process's peak since exec (ru_maxrss would keep the forking parent's peak)
try:
    status = Path("/proc/self/status").read_text().splitlines()
    peak_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
except (OSError, StopIteration):
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "cpu": cpu_seconds, "files": summary.files,
                  "rows": summary.rows, "peak_mb": peak_kb / 1024}))
"""


def dataset(files: int) -> Path:
    from dcm_extractor.sample import generate_dicom_dataset

    cases = max(2, files // PER_CASE)
    out = ROOT / "out" / f"scale-{cases}"
    if not (out / "dicom_cases").is_dir():
        template = TEMPLATE if TEMPLATE.is_file() else None
        print(f"generating {cases * PER_CASE:,} files ...", flush=True)
        generate_dicom_dataset(
            out,
            showcase=False,
            bulk_cases=cases,
            series_per_case=2,
            images_per_series=PER_CASE // 2,
            image_size=16,
            template=template,
            overwrite=True,
        )
    return out / "dicom_cases"


def extract(
    data: Path,
    out: Path,
    workers: int,
    source: Path | None = None,
    series: bool | str = False,
    resume: bool = False,
) -> dict[str, float]:
    """One run in a fresh process; ``source``: another version's ``src`` folder;
    ``series``: with the series table and report.html ("instances": with the series,
    study and instance tables); ``resume``: writing the resume manifest."""
    done = child(data, out, workers, source, series, resume)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def child(
    data: Path,
    out: Path,
    workers: int,
    source: Path | None,
    series: bool | str,
    resume: bool,
    under: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """The run of :func:`extract` (``under``: a command it runs under, e.g. valgrind's;
    ``env``: variables besides this process's)."""
    env = dict(os.environ, **(env or {}))
    if source is not None:
        env["PYTHONPATH"] = str(source)
    if resume:  # an empty folder: the run writes its manifest, nothing is reused
        env["SCALE_RUN_RESUME"] = "1"
        shutil.rmtree(out, ignore_errors=True)
    mode = [series if isinstance(series, str) else "series"] if series else []
    return subprocess.run(
        [*under, sys.executable, "-c", CHILD, str(data), str(out), str(workers), *mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )


def subset(data: Path, cases: int) -> Path:
    """A data root holding the first ``cases`` case folders of ``data`` (symbolic links)."""
    folder = data.parent.parent / f"subset-{cases}" / "dicom_cases"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for case in sorted(data.iterdir())[:cases]:
            (folder / case.name).symlink_to(case.resolve())
    return folder


# --cache: this machine's caches (AMD EPYC: 32 KiB 8-way level 1, 1 MiB 16-way level 2) as
# cachegrind's model; its level 2 as the last level (the shared level 3 is other guests' too)
CACHES = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64")
EVENTS = {"instructions": r"I\s+refs", "L1i misses": r"I1\s+misses",
          "L1d misses": r"D1\s+misses", "L2 misses": r"LL\s+misses"}  # fmt: skip


def counted(
    data: Path,
    out: Path,
    source: Path | None,
    series: bool | str,
    resume: bool,
    cache: bool,
    workers: int = 1,
) -> tuple[dict[str, int], int]:
    """(events, files) of one run under callgrind (instructions) or, with ``cache``,
    cachegrind's cache model (instructions and misses). With several ``workers`` the pool's
    processes are forked under valgrind too: the events are summed over every process."""
    if cache:
        tool = ["--tool=cachegrind", "--cache-sim=yes", *CACHES, "--cachegrind-out-file=/dev/null"]
        patterns = EVENTS
    else:
        tool = ["--tool=callgrind", "--callgrind-out-file=/dev/null"]
        patterns = {"instructions": r"Collected"}
    done = child(
        data, out, workers, source, series, resume, under=["valgrind", *tool],
        # numpy's OpenBLAS threads spin while they wait: their instructions vary by ~1% from
        # run to run, and the run does no linear algebra; the scan counted is this process's
        # own, never a --dask cluster's
        env={"PYTHONHASHSEED": "0", "OPENBLAS_NUM_THREADS": "1", "SCALE_RUN_SCHEDULER": ""},
    )  # fmt: skip
    events = {}
    for name, pattern in patterns.items():  # (one line per process)
        found = re.findall(pattern + r"\s*:\s*([\d,]+)", done.stderr)
        assert found, done.stderr[-2000:]
        events[name] = sum(int(count.replace(",", "")) for count in found)
    files = int(json.loads(done.stdout.strip().splitlines()[-1])["files"])
    return events, files


def instructions(
    source: Path | None,
    small: int,
    series: bool | str,
    resume: bool,
    cache: bool = False,
    workers: int = 1,
) -> None:
    """Instructions (with ``cache``: and cache misses) per file of each side (module
    docstring), and their ratios; with several ``workers``, of every process together."""
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (Debian: apt-get install valgrind)")
        return
    data = dataset(small)
    per_file: dict[str, dict[str, float]] = {}
    for name, src in (("this", None), ("other", source)):
        mode = series if name == "this" else False
        out = ROOT / "out" / f"scale-instructions-{name}"
        (few, few_files), (more, more_files) = (
            counted(subset(data, cases), out, src, mode, resume, cache, workers)
            for cases in (5, 25)
        )
        per_file[name] = {k: (more[k] - few[k]) / (more_files - few_files) for k in more}
    tool = "cachegrind" if cache else "callgrind"
    how = "1 worker" if workers == 1 else f"{workers} workers, every process"
    for event, this in per_file["this"].items():
        other = per_file["other"][event]
        print(
            f"{event} a file ({tool}, {how}, 25 - 5 cases): this {this:,.0f}, "
            f"other {other:,.0f}, ratio {this / other:.3f}"
        )


def same_tables(one: Path, two: Path) -> bool:
    names = ["all_cases.csv", "all_cases_desensitized.csv", "extraction_report.csv"]
    return all(filecmp.cmp(one / n, two / n, shallow=False) for n in names)


def against(
    source: Path | None,
    counts: list[int],
    repeat: int,
    workers: int,
    series: bool | str = False,
    resume: bool = False,
) -> None:
    """This version and ``source``'s (or, with ``series``, this version with and without
    the series table and report), alternately on the same data: medians and ratio."""
    manifest = ", resume manifest written" if resume else ""
    if series == "instances":
        print(f"--series --instances vs without, {workers} worker(s), median of {repeat} "
              f"alternating runs{manifest}")  # fmt: skip
    elif series:
        print(f"--series --report vs without, {workers} worker(s), median of {repeat} "
              "alternating runs")  # fmt: skip
    else:
        print(f"this version vs {source}, {workers} worker(s), median of {repeat} alternating runs")
    # CPU seconds besides wall time: on a shared VM, time other guests take shows in the
    # wall time but not in the CPU time of a process that does not wait on its disk.
    heads = ("this s", "other s", "ratio", "this cpu", "other cpu", "ratio", "this MB", "other MB")
    print(f"{'files':>9s} " + " ".join(f"{h:>9s}" for h in heads))
    for count in counts:
        data = dataset(count)
        times: dict[str, list[float]] = {"this": [], "other": []}
        cpus: dict[str, list[float]] = {"this": [], "other": []}
        peaks: dict[str, list[float]] = {"this": [], "other": []}
        for _ in range(repeat):
            for name, src in (("this", None), ("other", source)):
                out = ROOT / "out" / f"scale-against-{count}-{name}"
                mode = series if name == "this" else False
                result = extract(data, out, workers, src, mode, resume)
                times[name].append(result["seconds"])
                cpus[name].append(result["cpu"])
                peaks[name].append(result["peak_mb"])
        this, other = statistics.median(times["this"]), statistics.median(times["other"])
        this_cpu, other_cpu = statistics.median(cpus["this"]), statistics.median(cpus["other"])
        print(
            f"{count:9,d} {this:9.1f} {other:9.1f} {this / other:9.2f} {this_cpu:9.1f} "
            f"{other_cpu:9.1f} {this_cpu / other_cpu:9.2f} "
            f"{max(peaks['this']):9.0f} {max(peaks['other']):9.0f}",
            flush=True,
        )
        print(f"{'':9s} each run, this:  {', '.join(f'{t:.1f}' for t in times['this'])}")
        print(f"{'':9s} each run, other: {', '.join(f'{t:.1f}' for t in times['other'])}")
        # other guests only ever add time here: the fastest run of each is the least noisy
        best = min(times["this"]) / min(times["other"])
        best_cpu = min(cpus["this"]) / min(cpus["other"])
        print(f"{'':9s} fastest runs: ratio {best:.2f} (wall), {best_cpu:.2f} (cpu)")


def compare(args: argparse.Namespace) -> None:
    """The comparison the options ask for: timed, counted or both."""
    mode: bool | str = "instances" if args.instances else args.series
    if args.timing:
        counts = [args.small, args.files]
        against(args.against, counts, args.repeat, args.workers, mode, args.resume)
    if args.instructions:
        instructions(args.against, args.small, mode, args.resume, args.cache, args.workers)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--against", type=Path, help="another version's src folder")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs (--against)")
    parser.add_argument("--workers", type=int, default=1, help="workers (--against)")
    parser.add_argument(
        "--series", action="store_true", help="with --series --report vs without (this version)"
    )
    parser.add_argument(
        "--instances", action="store_true",
        help="with --series --instances vs without (this version)",
    )  # fmt: skip
    parser.add_argument(
        "--resume", action="store_true",
        help="every run writes the resume manifest, as dcm-extract does by default",
    )  # fmt: skip
    parser.add_argument(
        "--instructions", action="store_true",
        help="also the instructions a file of each side (valgrind's callgrind)",
    )  # fmt: skip
    parser.add_argument(
        "--cache", action="store_true",
        help="with --instructions: cachegrind's cache model, misses a file besides",
    )  # fmt: skip
    parser.add_argument(
        "--no-timing", dest="timing", action="store_false",
        help="with --instructions: only the instruction counts",
    )  # fmt: skip
    parser.add_argument(
        "--dask", action="store_true",
        help="comparisons scan on a Dask LocalCluster of --workers processes",
    )  # fmt: skip
    args = parser.parse_args()
    comparing = args.against is not None or args.series or args.instances
    if args.dask and not comparing:
        parser.error("--dask is for comparisons (--against, --series or --instances)")
    if args.dask:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster:  # fmt: skip
            os.environ["SCALE_RUN_SCHEDULER"] = cluster.scheduler_address
            print(f"on a Dask LocalCluster: {args.workers} worker process(es), 1 thread each")
            compare(args)
        return
    if comparing:
        compare(args)
        return
    print(f"{'files':>9s} {'workers':>8s} {'seconds':>8s} {'files/s':>9s} {'peak RSS MB':>12s}")
    for count in (args.small, args.files):
        data = dataset(count)
        runs = {}
        for workers in (1, 2):
            out = ROOT / "out" / f"scale-run-{count}-{workers}"
            runs[workers] = extract(data, out, workers)
            r = runs[workers]
            print(
                f"{int(r['files']):9,d} {workers:8d} {r['seconds']:8.1f} "
                f"{r['files'] / r['seconds']:9,.0f} {r['peak_mb']:12.0f}",
                flush=True,
            )
        speedup = runs[1]["seconds"] / runs[2]["seconds"]
        identical = same_tables(
            ROOT / "out" / f"scale-run-{count}-1", ROOT / "out" / f"scale-run-{count}-2"
        )
        print(f"{'':9s} 2 workers: {speedup:.2f}x one worker; tables identical: {identical}")


if __name__ == "__main__":
    main()
