"""The mask catalog and SQL over it, side by side with the per-archive way.

    .venv/bin/python benchmarks/catalog.py [--archives 2000] [--cases 10000]

1. **Catalog, cold process** (``medmask catalog`` in a fresh Python, imports included)
   of ``--archives`` archives (20 generated cases packed once, copied under new names;
   s0000 among them when ../shared/data is present), against the anchor: a fresh
   Python opening each archive with ``MaskArchive`` and computing ``statistics()``.
   Both on one core, best of ``--repeat`` runs, bytecode cached as a user's Python does;
   the rows are compared (voxel counts, boxes, centroids).
2. **Incremental**: the same catalog again (nothing changed), and after 1% of the
   archives changed.
3. **SQL**: a ``--cases``-archive catalog (10,000 x 117 masks: 1.17 million rows), a
   filter-and-group question through ``medmask query`` in a fresh process (cold start
   included) and through ``query()`` in one, against pandas reading the same Parquet.

Targets (issue 31): catalog >= 2,000 archives/s cold; query < 0.5 s on 10^6 rows.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "out" / "catalog"
SHARED = ROOT.parent.parent / "shared" / "data" / "totalseg_s0000"
PYTHON = sys.executable
ONE_CORE = ["taskset", "-c", "0"] if shutil.which("taskset") else []

QUESTION = (
    "SELECT mask, count(*) AS cases, round(avg(volume_ml), 1) AS mean_ml, "
    "round(quantile_cont(volume_ml, 0.95), 1) AS p95_ml FROM masks "
    "WHERE NOT empty AND volume_ml > 5 GROUP BY mask ORDER BY mean_ml DESC LIMIT 10"
)
ANCHOR = """
import sys, time
from pathlib import Path
from medmask import MaskArchive
rows = 0
for path in sorted(Path(sys.argv[1]).rglob("*.mska")):
    with MaskArchive(path) as archive:
        rows += len(archive.statistics())
print(rows)
"""


def sources(count: int) -> list[Path]:
    """``count`` distinct packed cases (generated, plus s0000 when present), cached."""
    from medmask.ops.pack import pack
    from medmask.sample import generate_masks

    folder = OUT / "sources"
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    if SHARED.is_dir():
        target = folder / "s0000.mska"
        if not target.exists():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pack(SHARED, target)
        made.append(target)
    seed = 0
    while len(made) < count:
        target = folder / f"gen{seed:02d}.mska"
        if not target.exists():
            sample = generate_masks(folder / f"gen{seed:02d}", seed=seed, shape=(64, 56, 48))
            pack(sample.masks_dir, target)
            shutil.rmtree(folder / f"gen{seed:02d}")
        made.append(target)
        seed += 1
    return made


def cohort(name: str, count: int, originals: list[Path]) -> Path:
    folder = OUT / name
    if folder.is_dir() and len(list(folder.rglob("*.mska"))) == count:
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(count):
        site = folder / f"site{i % 4}"
        site.mkdir(parents=True, exist_ok=True)
        shutil.copy(originals[i % len(originals)], site / f"case{i:06d}.mska")
    return folder


# the processes cache their bytecode as a user's Python does (this machine's sandbox sets
# PYTHONDONTWRITEBYTECODE, which would compile every module from source on each start)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=ENV)
    seconds = time.perf_counter() - start
    if done.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    return seconds, done.stdout


def best(repeat: int, command: list[str]) -> tuple[float, str]:
    runs = [timed(command) for _ in range(repeat)]
    return min(r[0] for r in runs), runs[-1][1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--archives", type=int, default=2000)
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    originals = sources(20)
    folder = cohort(f"archives-{args.archives}", args.archives, originals)
    catalog = OUT / f"catalog-{args.archives}.parquet"
    medmask = [*ONE_CORE, PYTHON, "-m", "medmask"]
    print(f"## Catalog of {args.archives:,} archives ({len(originals)} distinct cases), one core")
    ours, said = best(
        args.repeat, [*medmask, "catalog", str(folder), "-o", str(catalog), "--rebuild"]
    )
    theirs, rows = best(args.repeat, [*ONE_CORE, PYTHON, "-c", ANCHOR, str(folder)])
    print(f"{'':44s} {'seconds':>8s} {'archives/s':>11s}")
    print(f"{'medmask catalog (cold process)':44s} {ours:8.2f} {args.archives / ours:11,.0f}")
    print(f"{'MaskArchive + statistics() each (cold)':44s} {theirs:8.2f} "
          f"{args.archives / theirs:11,.0f}")  # fmt: skip
    print(f"  {said.strip()}")
    print(f"  {theirs / ours:.1f}x the per-archive way; target >= 2,000 archives/s: "
          f"{args.archives / ours:,.0f}")  # fmt: skip
    check(catalog, folder, int(rows))

    again, said = best(args.repeat, [*medmask, "catalog", str(folder), "-o", str(catalog)])
    print(f"\n## Incremental\n{'nothing changed':44s} {again:8.2f}  ({said.strip()})")
    changed = sorted(folder.rglob("*.mska"))[:: max(1, args.archives // (args.archives // 100))]
    for path in changed:
        path.touch()
    later, said = timed([*medmask, "catalog", str(folder), "-o", str(catalog)])
    print(f"{f'{len(changed)} archives touched':44s} {later:8.2f}  ({said.strip()})")

    big_folder = cohort(f"archives-{args.cases}", args.cases, originals)
    big = OUT / f"catalog-{args.cases}.parquet"
    built, said = best(
        args.repeat, [*medmask, "catalog", str(big_folder), "-o", str(big), "--rebuild"]
    )
    print(f"\n## SQL over {said.strip()}")
    print(f"  (catalog built in {built:.1f} s cold, best of {args.repeat}: "
          f"{args.cases / built:,.0f} archives/s; target >= 2,000)")  # fmt: skip
    cold, printed = best(args.repeat, [*medmask, "query", str(big), QUESTION])
    from medmask.ops.query import query

    start = time.perf_counter()
    for _ in range(args.repeat):
        query(big, QUESTION)
    warm = (time.perf_counter() - start) / args.repeat
    import pandas as pd

    start = time.perf_counter()
    frame = pd.read_parquet(big, columns=["mask", "volume_ml", "empty"])
    present = frame[~frame["empty"] & (frame["volume_ml"] > 5)]
    present.groupby("mask")["volume_ml"].agg(["count", "mean", lambda v: v.quantile(0.95)])
    pandas_s = time.perf_counter() - start
    print(f"{'medmask query (cold process, DuckDB)':44s} {cold:8.2f}")
    print(f"{'query() in a running process':44s} {warm:8.3f}")
    print(f"{'pandas: read_parquet + groupby':44s} {pandas_s:8.3f}")
    print(f"  target < 0.5 s: {'met' if cold < 0.5 else 'not met'} cold, "
          f"{'met' if warm < 0.5 else 'not met'} in process")  # fmt: skip
    print("\n" + "\n".join(printed.splitlines()[:6]))


def check(catalog: Path, folder: Path, anchor_rows: int) -> None:
    """The catalog's rows against MaskArchive.statistics() of a sample of archives."""
    import pyarrow.parquet as pq

    from medmask import MaskArchive

    table = pq.read_table(catalog)
    assert table.num_rows == anchor_rows, (table.num_rows, anchor_rows)
    by_archive: dict[str, list[dict[str, object]]] = {}
    for row in table.to_pylist():
        by_archive.setdefault(str(row["archive"]), []).append(row)
    sample = sorted(by_archive)[:: max(1, len(by_archive) // 50)]
    for key in sample:
        with MaskArchive(folder / key) as archive:
            stats = archive.statistics()
        for row in by_archive[key]:
            stat = stats[str(row["mask"])]
            assert row["voxel_count"] == stat.voxel_count
            if stat.centroid is not None:
                assert (row["centroid_i"], row["centroid_j"], row["centroid_k"]) == stat.centroid
    print(f"  rows: {table.num_rows:,} = the anchor's; {len(sample)} archives checked mask by "
          "mask against statistics()")  # fmt: skip


if __name__ == "__main__":
    main()
