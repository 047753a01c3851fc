"""Packing a generated cohort: one worker, two local workers, a Dask LocalCluster of two
workers, and resuming the finished cohort, side by side in one run.

    .venv/bin/python benchmarks/cohort_pack.py [--cases 1000]

The cohort: ``--cases`` TotalSegmentator-style case folders (``<case>/segmentations/``,
117 masks each, 64 x 56 x 48 voxels), made of 20 generated cases whose files are
hard-linked under new case names (the cases are as many as said; the disk holds 20).
Each configuration packs into its own folder; the archives of all of them are compared
byte for byte.

Targets (issue 31): two local workers >= 1.7x one worker; a LocalCluster of two workers
within 10% of two local processes; resuming the finished cohort under 5% of the first run.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
import warnings
from pathlib import Path

from medmask.ops.cohort import pack_cohort
from medmask.sample import generate_masks

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "cohort"


def make_cohort(cases: int) -> Path:
    folder = OUT / f"cohort-{cases}"
    if folder.is_dir() and len(list(folder.iterdir())) == cases:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    distinct = OUT / "distinct"
    for seed in range(20):
        if not (distinct / f"{seed}" / "segmentations").is_dir():
            generate_masks(distinct / f"{seed}", seed=seed, shape=(64, 56, 48), overwrite=True)
    for i in range(cases):
        target = folder / f"case{i:05d}" / "segmentations"
        target.mkdir(parents=True)
        for path in (distinct / f"{i % 20}" / "segmentations").iterdir():
            os.link(path, target / path.name)
    return folder


def rss_mb() -> float:
    """This process's resident memory now (Linux), MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


MEMORY: dict[str, list[float]] = {}  # label -> this process's RSS after each tenth of the cases


def timed(cohort: Path, cases: int, label: str, **kwargs: object) -> float:
    out = OUT / f"archives-{label}"
    shutil.rmtree(out, ignore_errors=True)
    done = [0]
    MEMORY[label] = [rss_mb()]

    def sample(_: object) -> None:
        done[0] += 1
        if done[0] % max(1, cases // 10) == 0:
            MEMORY[label].append(rss_mb())

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = pack_cohort(cohort, out, on_done=sample, **kwargs)  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    assert not result.failures and len(result.packed) == cases, result.failures[:3]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", type=int, default=1000)
    args = parser.parse_args()
    cohort = make_cohort(args.cases)
    print(f"## Packing {args.cases:,} cases (117 masks each), {os.cpu_count()} cores")
    one = timed(cohort, args.cases, "one", workers=1)
    two = timed(cohort, args.cases, "two", workers=2)
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:  # fmt: skip
        dask = timed(cohort, args.cases, "dask", scheduler=cluster.scheduler_address)
    start = time.perf_counter()
    again = pack_cohort(cohort, OUT / "archives-two", workers=2)
    resume = time.perf_counter() - start
    assert not again.packed and len(again.unchanged) == args.cases
    print(f"{'':36s} {'seconds':>8s} {'cases/s':>8s}")
    for label, seconds in (("1 local worker", one), ("2 local workers", two),
                           ("Dask LocalCluster, 2 workers", dask),
                           ("resume of the finished cohort", resume)):  # fmt: skip
        print(f"{label:36s} {seconds:8.2f} {args.cases / seconds:8.1f}")
    same = all(
        (OUT / "archives-one" / p.name).read_bytes()
        == p.read_bytes()
        == (OUT / "archives-dask" / p.name).read_bytes()
        for p in sorted((OUT / "archives-two").glob("*.mska"))
    )
    print(f"archives byte-identical across the three runs: {'yes' if same else 'NO'}")
    for label, samples in MEMORY.items():
        steps = " ".join(f"{mb:.0f}" for mb in samples)
        print(f"main process RSS, MB, at 0%, 10% ... 100% of the cases ({label}): {steps}")
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e3
    print(f"largest local worker process: {children:.0f} MB peak RSS")
    print(f"2 workers {one / two:.2f}x one (target >= 1.7x); LocalCluster at {dask / two:.2f}x "
          f"the local processes' time (target <= 1.10x); resume {resume / two:.1%} of the "
          "first run (target < 5%)")  # fmt: skip


if __name__ == "__main__":
    main()
