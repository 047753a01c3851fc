"""The cohort report: its numbers are the catalog's (recomputed here with pandas, not
DuckDB), an enlarged organ is an outlier and a removed one is missing, and headless
Chromium draws the page and reads the same numbers from it."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medmask import MaskArchive, SegmentationMask
from medmask.cli import main
from medmask.errors import MedmaskError
from medmask.ops.catalog import build_catalog
from medmask.ops.pack import pack
from medmask.ops.report import BOX_COLOUR, cohort_report
from medmask.sample import generate_masks


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight cases; case3 without its liver, case5 with a spleen ten times its size."""
    root = tmp_path_factory.mktemp("report")
    for seed in range(8):
        sample = generate_masks(root / "gen" / f"{seed}", seed=seed, shape=(48, 40, 32))
        pack(sample.masks_dir, root / "archives" / f"case{seed}.mska")
    with MaskArchive(root / "archives" / "case3.mska", "a") as archive:
        archive.remove("liver")
        space = archive.space
        assert space is not None
        archive.add_mask(SegmentationMask(np.zeros(space.shape, np.uint8), {"liver": 1}, space),
                         "liver")  # fmt: skip
    with MaskArchive(root / "archives" / "case5.mska", "a") as archive:
        space = archive.space
        assert space is not None
        big = np.zeros(space.shape, np.uint8)
        big[4:40, 4:36, 4:28] = 1
        archive.replace("spleen", SegmentationMask(big, {"spleen": 1}, space))
    return root


def numbers(page: str, section: str) -> list[list[str]]:
    """The text of each table row's cells under the heading with id ``section``."""
    start = page.index(f"id={section}>") if f"id={section}>" in page else page.index(
        f'id="{section}"'
    )  # fmt: skip
    end = page.find("<h2", start + 5)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page[start : end if end > 0 else None], re.S)
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)
        ]
        for r in rows
        if "<td" in r
    ]


def kpi(page: str, name: str) -> int:
    found = re.search(rf'id="kpi-{name}"><b>([\d,]+)</b>', page)
    assert found is not None, name
    return int(found.group(1).replace(",", ""))


def test_the_report_shows_the_catalogs_numbers(cohort: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(cohort / "archives"), "-o", str(out)]) == 0
    page = out.read_text(encoding="utf-8")
    build_catalog(cohort / "archives", tmp_path / "c.parquet")
    frame = pq.read_table(tmp_path / "c.parquet").to_pandas()
    masks = frame[frame["kind"] == "mask"]
    assert kpi(page, "cases") == frame["case_id"].nunique() == 8
    assert kpi(page, "masks") == len(masks)
    assert kpi(page, "found") == int((~masks["empty"]).sum())
    assert kpi(page, "organs") == masks["mask"].nunique()
    organs = {row[0]: row for row in numbers(page, "organs")}
    for name, group in masks.groupby("mask"):
        present = group[~group["empty"]]["volume_ml"]
        row = organs[str(name)]
        assert int(row[1].replace(",", "")) == len(present), name
        assert int(row[2].replace(",", "")) == len(group), name
        if len(present):
            assert row[3] == f"{present.median():,.1f}", name
    assert organs["liver"][1:3] == ["7", "8"]
    outliers = numbers(page, "outliers")
    assert outliers[0][:2] == ["case5", "spleen"]
    missing = {row[0]: row[2] for row in numbers(page, "missing")}
    assert "liver" in missing["case3"].split(", ")
    assert "case0" not in missing
    # the same page from the catalog file itself
    again = cohort_report(tmp_path / "c.parquet", tmp_path / "again.html")
    assert again.kpis["cases"] == 8
    with pytest.raises(MedmaskError, match="no archive"):
        (tmp_path / "empty").mkdir()
        cohort_report(tmp_path / "empty", tmp_path / "none.html")


def test_archives_of_one_name_in_two_folders_are_two_cases(cohort: Path, tmp_path: Path) -> None:
    """site_a/case3.mska and site_b/case3.mska are two patients: before, the report counted
    one case and merged their masks (case3's missing liver hidden by the other's)."""
    for site, case in (("site_a", "case3"), ("site_b", "case0")):
        (tmp_path / "sites" / site).mkdir(parents=True)
        shutil.copy(cohort / "archives" / f"{case}.mska", tmp_path / "sites" / site / "case3.mska")
    for seed in (1, 2, 4, 5, 6, 7):
        shutil.copy(
            cohort / "archives" / f"case{seed}.mska", tmp_path / "sites" / f"case{seed}.mska"
        )
    report = cohort_report(tmp_path / "sites", tmp_path / "report.html")
    assert report.kpis["cases"] == report.kpis["archives"] == 8
    missing = {row["case_id"]: row["missing"] for row in report.missing}
    assert "liver" in missing["site_a/case3.mska"].split(", ")  # named by its archive
    assert "site_b/case3.mska" not in missing and "case1" not in missing


def test_archives_that_cannot_be_read_are_named_not_left_out_silently(
    cohort: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A damaged archive (cut short by a full disk, a file named .mska that is none) was
    left out of the report without a word: its case missing from every count. Now the
    command warns for each, the page lists them above the counts, and it exits 1."""
    folder = tmp_path / "archives"
    shutil.copytree(cohort / "archives", folder)
    data = (folder / "case2.mska").read_bytes()
    (folder / "case2.mska").write_bytes(data[:300])
    (folder / "notes.mska").write_text("not an archive", encoding="utf-8")
    out = tmp_path / "report.html"
    assert main(["report", str(folder), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "case2.mska: not in the report: " in err and "no valid superblock" in err
    assert "notes.mska: not in the report: " in err and "not a medmask archive" in err
    page = out.read_text(encoding="utf-8")
    assert [row[0] for row in numbers(page, "unread")] == ["case2.mska", "notes.mska"]
    assert kpi(page, "cases") == 7
    assert main(["report", str(cohort / "archives"), "-o", str(tmp_path / "whole.html")]) == 0
    assert "id=unread" not in (tmp_path / "whole.html").read_text(encoding="utf-8")


def test_values_are_escaped(cohort: Path, tmp_path: Path) -> None:
    folder = tmp_path / "<i>x&y"  # the title is the folder's name
    folder.mkdir()
    shutil.copy(cohort / "archives" / "case0.mska", folder / "case0.mska")
    cohort_report(folder, tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<i>x&y" not in page and "&lt;i&gt;x&amp;y" in page


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium (Debian: apt-get install chromium)")
def test_headless_chromium_draws_the_report_and_reads_its_numbers(
    cohort: Path, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    report = cohort_report(cohort / "archives", page)
    base = [
        str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--disable-dev-shm-usage",
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    dom = subprocess.run([*base, "--dump-dom", page.resolve().as_uri()], capture_output=True,
                         timeout=180, check=False, env=env)  # fmt: skip
    drawn = dom.stdout.decode("utf-8", errors="replace")
    assert "kpi-cases" in drawn, dom.stderr.decode(errors="replace")[-1500:]
    for name in ("cases", "masks", "found", "organs"):  # the DOM as Chromium built it
        assert kpi(drawn, name) == report.kpis[name], name
    assert len(re.findall(r"<tr data-organ=", drawn)) == len(report.organs)
    shot = tmp_path / "report.png"
    width, height = 1200, 1400
    done = subprocess.run([*base, f"--window-size={width},{height}", f"--screenshot={shot}",
                           page.resolve().as_uri()], capture_output=True, timeout=180,
                          check=False, env=env)  # fmt: skip
    assert shot.is_file(), done.stderr.decode(errors="replace")[-1500:]
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    box = np.array([int(BOX_COLOUR[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    assert int((np.abs(pixels - box).max(axis=2) <= 12).sum()) > 500  # the boxes were drawn
    assert int((pixels.sum(axis=2) < 200).sum()) > 1_000  # and text
