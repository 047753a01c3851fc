"""Cohort packing: the same bytes as packing case by case, here, in a process pool and on
a real Dask LocalCluster; a killed run resumed; failures listed, changes repacked."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medmask.cli import main
from medmask.errors import MedmaskError
from medmask.ops.cohort import FAILURES, MANIFEST, detect_cohort, pack_cohort
from medmask.ops.pack import pack
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
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
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
    # (an unreachable address is retried for the client's 30 s: the file case is immediate)
    with pytest.raises(MedmaskError, match=r"no Dask scheduler file at .*is a scheduler running"):
        pack_cohort(cohort, tmp_path / "x", scheduler_file=str(tmp_path / "none.json"))


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
    assert len(lines) == CASES + 1  # case4 twice: the last line counts


def test_archives_no_run_wrote_are_not_replaced(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "case1.mska").write_bytes(b"someone else's")
    result = pack_cohort(cohort, out)
    assert [f.source.parent.name for f in result.failures] == ["case1"]
    assert "--overwrite" in result.failures[0].reason
    assert (out / "case1.mska").read_bytes() == b"someone else's"
    assert len(pack_cohort(cohort, out, overwrite=True).packed) == 1
