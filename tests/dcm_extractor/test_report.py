"""report.html: its numbers against the run's own tables, no PHI when de-identified, and
the page as a real browser (headless Chromium) draws it."""

from __future__ import annotations

import csv
import html
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from dcm_extractor.extractor import main
from dcm_extractor.outputs.cohort import Cohort, image_bin
from dcm_extractor.outputs.htmlreport import BAR_COLOUR, render_report
from dcm_extractor.sample import DicomSample
from dcm_extractor.sources.cases import NOTE_REASONS


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _extract(data: Path, out: Path, *extra: str) -> int:
    argv = ["-d", str(data), "-o", str(out), "--log", str(out.parent / "log"), "-q"]
    return main([*argv, "--report", *extra])


def _kpi(page: str, name: str) -> int:
    match = re.search(rf'id="kpi-{name}"><b>([\d,]+)</b>', page)
    assert match is not None, name
    return int(match.group(1).replace(",", ""))


def _table(page: str, title: str) -> dict[str, int]:
    """The two-column table under the heading starting with ``title``: first cell -> number."""
    start = page.index(f"<h2>{html.escape(title)}")
    end = page.find("<h2>", start + 4)
    rows = re.findall(r"<tr><td>(.*?)</td><td>([\d,]+)</td></tr>", page[start:end])
    return {html.unescape(k): int(v.replace(",", "")) for k, v in rows}


@pytest.fixture(scope="module")
def identified(dicom_sample: DicomSample, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "out"
    assert _extract(dicom_sample.cases_root, out, "--series") == 0
    return out


def test_the_report_shows_the_runs_own_numbers(identified: Path) -> None:
    page = (identified / "report.html").read_text(encoding="utf-8")
    series = read_csv(identified / "all_series.csv")
    report = read_csv(identified / "extraction_report.csv")
    assert _kpi(page, "series") == len(series)
    assert _kpi(page, "images") == sum(int(r["ImageCount"]) for r in series)
    assert _kpi(page, "cases") == len({r["ProjectID"] for r in series})
    # files left out and notes on rows apart: the first table adds up to files, not lines
    files = Counter(r["reason"] for r in report if r["reason"] not in NOTE_REASONS)
    notes = Counter(r["reason"] for r in report if r["reason"] in NOTE_REASONS)
    assert files and notes
    assert _table(page, "Files not counted") == dict(files)
    assert _table(page, "Notes on rows") == dict(notes)
    assert sum(files.values()) == _kpi(page, "skipped-files")  # one line per file here
    bins = Counter(image_bin(int(r["ImageCount"])) for r in series)
    gaps = [r for r in series if r["EvenlySpaced"] == "no"]
    assert f"Series with uneven slice spacing or gaps ({len(gaps)})" in page
    assert len(gaps) == 1 and ">Gap<" in page
    thickness = Counter(f"{float(r['SliceThickness']):g}" for r in series)
    makers = Counter(r["Manufacturer"] for r in series)
    assert len(thickness) >= 3 and len(makers) >= 2  # the sample mixes them
    for label, count in [*bins.items(), *thickness.items(), *makers.items()]:
        assert re.search(  # each chart's bars are labelled with their counts
            rf">{re.escape(html.escape(label))}<title>.*?</text><rect[^>]*/><text[^>]*>{count}<",
            page,
        ), label
    assert _kpi(page, "studies") == len({r["StudyInstanceUID"] for r in series})
    assert "<script" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )  # self-contained: nothing fetched


def test_a_de_identified_report_names_no_patient_case_or_path(
    dicom_sample: DicomSample, tmp_path: Path
) -> None:
    out = tmp_path / "shared"
    assert _extract(dicom_sample.cases_root, out, "--desensitize", "--series") == 0
    page = (out / "report.html").read_text(encoding="utf-8")
    truth: dict[str, Any] = json.loads(dicom_sample.truth_path.read_text(encoding="utf-8"))
    for case in truth["cases"]:
        patient = case["patient"]
        for secret in (case["name"], patient["patient_id"], *patient["name"].split("^")):
            assert html.escape(secret) not in page, secret
    assert str(dicom_sample.cases_root) not in page and str(out) not in page
    assert "动脉期" not in page  # series descriptions are free text
    assert "de-identified (--desensitize)" in page


def test_rendering_escapes_every_value() -> None:
    cohort = Cohort()
    row = {"Modality": "<b>CT</b>", "Manufacturer": "A&B", "ImageCount": 3, "EvenlySpaced": "no",
           "SeriesDescription": "<script>x</script>", "StudyDate": "20240101"}  # fmt: skip
    cohort.add_series([row])
    page = render_report(cohort, summary={"files": 3}, options={}, seconds=1.0, deidentified=False)
    assert "<script>" not in page and "&lt;script&gt;" in page and "A&amp;B" in page


def test_every_year_and_month_of_a_long_cohort_is_shown() -> None:
    # 30 years of studies: no "others" bar lumping years together
    cohort = Cohort()
    rows = []
    for year in range(1995, 2025):
        for month in (1, 6, 12):
            for copies in range(year - 1990):  # later years hold more studies
                rows.append({"StudyInstanceUID": f"1.{year}.{month}.{copies}", "ImageCount": 1,
                             "StudyDate": f"{year}{month:02d}15"})  # fmt: skip
    cohort.add_series(rows)
    page = render_report(cohort, summary={}, options={}, seconds=1.0, deidentified=False)
    years = page[page.index("<h2>Studies per year") :]
    years = years[: years.index("</section>")]
    assert "others" not in years
    for year in range(1995, 2025):
        count = 3 * (year - 1990)
        assert re.search(rf">{year}<title>{year}</title></text><rect[^>]*/><text[^>]*>{count}<",
                         years), year  # fmt: skip
    start = page.index("<h2>Studies per month")
    calendar = page[start : page.index("</table>", start)]
    rows = re.findall(r"<tr><td>(\d{4})</td>(.*?)</tr>", calendar)
    assert [year for year, _ in rows] == [str(y) for y in range(1995, 2025)]
    for year, cells in rows:  # Jan, Jun and Dec hold the studies; the total closes the row
        counts = re.findall(r"<td[^>]*>([\d,]*)</td>", cells)
        each = str(int(year) - 1990)
        assert counts == [each, "", "", "", "", each, "", "", "", "", "", each,
                          str(3 * int(each))], year  # fmt: skip


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium (Debian: apt-get install chromium)")
def test_headless_chromium_draws_the_report(identified: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    width, height = 1200, 1600
    command = [
        str(_chromium()), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
        # offline: no update checks, sync or QUIC probes (a closed network refuses them)
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-quic", "--disable-dev-shm-usage",  # containers often have a small /dev/shm
        f"--window-size={width},{height}", f"--screenshot={shot}",
        (identified / "report.html").resolve().as_uri(),
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(tmp_path)}
    done = subprocess.run(command, capture_output=True, timeout=180, check=False, env=env)
    tail = done.stderr.decode(errors="replace")[-1500:]
    assert shot.is_file(), f"chromium (exit {done.returncode}) wrote no screenshot: {tail}"
    picture = Image.open(shot).convert("RGB")
    assert picture.size == (width, height)
    pixels = np.asarray(picture, dtype=np.int16)
    bar = np.array([int(BAR_COLOUR[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    bar_pixels = int((np.abs(pixels - bar).max(axis=2) <= 12).sum())
    assert bar_pixels > 2_000  # the charts' bars were drawn
    white = int((pixels.min(axis=2) >= 250).sum())
    assert white > pixels.shape[0] * pixels.shape[1] // 2  # on a white page
    dark = int((pixels.sum(axis=2) < 200).sum())
    assert dark > 1_000  # and text was drawn


def _gbk_name_without_charset(path: Path) -> None:
    """A CT image whose PatientName is GB18030 bytes and which declares no character set
    (as some Chinese exporters write them): the extractor reads it and reports it."""
    ds = dcmread(get_testdata_file("CT_small.dcm"))
    del ds.SpecificCharacterSet
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    old = str(ds.PatientName).encode("ascii")
    at = data.index(old)
    name = "张三".encode("gbk")
    data[at - 2 : at + len(old) + len(old) % 2] = len(name).to_bytes(2, "little") + name
    path.write_bytes(bytes(data))


def test_character_set_problems_are_listed_as_the_report_lines_say(tmp_path: Path) -> None:
    _gbk_name_without_charset(tmp_path / "data" / "case" / "ct.dcm")
    out = tmp_path / "out"
    assert _extract(tmp_path / "data", out) == 0
    lines = [r for r in read_csv(out / "extraction_report.csv") if r["reason"] == "charset"]
    assert len(lines) == 1 and "GB18030" in lines[0]["detail"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert _table(page, "Character set problems") == {lines[0]["detail"]: 1}
