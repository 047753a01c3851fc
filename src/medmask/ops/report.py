"""``report.html`` of a cohort of archives: one self-contained page (inline CSS and SVG,
no script, no network) from the catalog (docs/cohorts.md): cases, how often each organ is
found, its volumes, the outliers, the cases that lack organs most cases have, and how
the grids differ.

Every number on the page is a SQL answer over the catalog (DuckDB), so the page and the
catalog cannot disagree; the tests read the page back as headless Chromium draws it.

A case is an archive, named by its ``case_id`` (its file name); archives of one name in
several folders (``site_a/case1.mska``, ``site_b/case1.mska``) are named by their paths,
so that two patients are never counted, or their organs looked for, as one.
"""

from __future__ import annotations

import dataclasses
import html
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from ..errors import MedmaskError
from ..files.atomic import atomic_path
from ..files.names import readable
from ..version import __version__
from .catalog import build_catalog
from .query import connect

__all__ = ["BOX_COLOUR", "CohortReport", "cohort_report", "render"]

BOX_COLOUR: Final = "#2b6cb0"  # the boxes' fill: the browser test looks for it
COMMON: Final = 0.8  # an organ most cases have: found in at least 80% of them
OUTLIER_IQR: Final = 3.0  # volumes beyond 3 interquartile ranges from the quartiles

_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:24px;
color:#1a202c;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #cbd5e0}
.kpi{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi div{background:#ebf4ff;border-radius:6px;padding:8px 14px}.kpi b{display:block;font-size:20px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #e2e8f0;padding:3px 8px;
text-align:left}th{background:#f7fafc}td.n{text-align:right}.muted{color:#718096;font-size:13px}
"""

_ORGANS = """
SELECT mask,
       count(*) AS looked_for,
       count(*) FILTER (WHERE NOT empty) AS found,
       min(volume_ml) FILTER (WHERE NOT empty) AS low,
       quantile_cont(volume_ml, 0.25) FILTER (WHERE NOT empty) AS q1,
       median(volume_ml) FILTER (WHERE NOT empty) AS median,
       quantile_cont(volume_ml, 0.75) FILTER (WHERE NOT empty) AS q3,
       max(volume_ml) FILTER (WHERE NOT empty) AS high
FROM cohort WHERE kind = 'mask' GROUP BY mask ORDER BY found DESC, mask
"""
_OUTLIERS = f"""
WITH q AS (
  SELECT mask, quantile_cont(volume_ml, 0.25) AS q1, quantile_cont(volume_ml, 0.75) AS q3,
         median(volume_ml) AS median
  FROM cohort WHERE kind = 'mask' AND NOT empty GROUP BY mask HAVING count(*) >= 5)
SELECT m.case_id, m.mask, m.volume_ml, q.median
FROM cohort m JOIN q USING (mask)
WHERE m.kind = 'mask' AND NOT m.empty AND q.q3 > q.q1
  AND (m.volume_ml > q.q3 + {OUTLIER_IQR} * (q.q3 - q.q1)
       OR m.volume_ml < q.q1 - {OUTLIER_IQR} * (q.q3 - q.q1))
ORDER BY abs(m.volume_ml - q.median) / (q.q3 - q.q1) DESC, m.case_id, m.mask
"""
_MISSING = f"""
WITH cases AS (SELECT count(DISTINCT case_id) AS n FROM cohort),
common AS (
  SELECT mask FROM cohort, cases WHERE kind = 'mask'
  GROUP BY mask, cases.n
  HAVING count(DISTINCT case_id) FILTER (WHERE NOT empty) >= {COMMON} * cases.n)
SELECT c.case_id, string_agg(c.mask, ', ' ORDER BY c.mask) AS missing, count(*) AS n
FROM (SELECT DISTINCT case_id FROM cohort) k
CROSS JOIN common
JOIN (SELECT case_id, mask, bool_and(empty) AS empty FROM cohort WHERE kind = 'mask'
      GROUP BY case_id, mask) c ON c.case_id = k.case_id AND c.mask = common.mask
WHERE c.empty GROUP BY c.case_id ORDER BY n DESC, c.case_id
"""
_GRIDS = """
SELECT format('{:.3g} x {:.3g} x {:.3g} mm', spacing_i, spacing_j, spacing_k) AS spacing,
       format('{} x {} x {}', shape_i, shape_j, shape_k) AS shape,
       count(DISTINCT archive) AS archives
FROM cohort GROUP BY 1, 2 ORDER BY archives DESC, spacing, shape
"""
_KPIS = """
SELECT count(DISTINCT case_id) AS cases, count(DISTINCT archive) AS archives,
       count(*) FILTER (WHERE kind = 'mask') AS masks,
       count(*) FILTER (WHERE kind = 'mask' AND NOT empty) AS found,
       count(DISTINCT mask) FILTER (WHERE kind = 'mask') AS organs
FROM cohort
"""


@dataclass(frozen=True)
class CohortReport:
    """What the page shows, as the catalog's SQL answers it."""

    kpis: dict[str, int]
    organs: list[dict[str, Any]]
    outliers: list[dict[str, Any]]
    missing: list[dict[str, Any]]
    grids: list[dict[str, Any]]
    unread: list[tuple[str, str]] = field(default_factory=list)  # (archive, why): not in it


def cohort_report(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> CohortReport:
    """Write ``report.html`` of the archives under ``source`` (or of a catalog,
    ``.parquet``, written by ``medmask catalog``); the numbers it shows.

    Raises
    ------
    MedmaskError
        No archive under ``source``, or the catalog cannot be read.
    """
    base = Path(source)
    if base.suffix.lower() == ".parquet":
        report = _gather(base)
        title = readable(base.name)
    else:
        with tempfile.TemporaryDirectory(prefix="medmask-report-") as folder:
            catalog = Path(folder) / "catalog.parquet"
            built = build_catalog(base, catalog)
            if not built.rows:
                why = "".join(f"; {archive}: {reason}" for archive, reason in built.failures)
                raise MedmaskError(f"{base}: no archive with masks to report on{why}")
            report = dataclasses.replace(_gather(catalog), unread=list(built.failures))
        title = readable(base.name or str(base))
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as partial:
        Path(partial).write_text(render(report, title), encoding="utf-8")
    return report


# A case is its case_id (the archive's name) - unless archives in several folders share
# that name (site_a/case1.mska, site_b/case1.mska: two patients): then each is its archive.
_COHORT = """
CREATE TEMP VIEW cohort AS
SELECT m.* REPLACE (CASE WHEN d.case_id IS NULL THEN m.case_id ELSE m.archive END AS case_id)
FROM masks m LEFT JOIN (
  SELECT case_id FROM masks GROUP BY case_id HAVING count(DISTINCT archive) > 1
) d ON d.case_id = m.case_id
"""


def _gather(catalog: Path) -> CohortReport:
    with connect(catalog) as connection:
        connection.execute(_COHORT)

        def rows(sql: str) -> list[dict[str, Any]]:
            result = connection.execute(sql)
            names = [d[0] for d in result.description]
            return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

        kpis = {k: int(v or 0) for k, v in rows(_KPIS)[0].items()}
        return CohortReport(kpis, rows(_ORGANS), rows(_OUTLIERS), rows(_MISSING), rows(_GRIDS))


def render(report: CohortReport, title: str) -> str:
    """The page's HTML; every value escaped."""
    e = html.escape
    kpis = "".join(
        f'<div id="kpi-{e(name)}"><b>{value:,}</b>{e(label)}</div>'
        for name, label, value in (
            ("cases", "cases", report.kpis["cases"]),
            ("archives", "archives", report.kpis["archives"]),
            ("organs", "organs looked for", report.kpis["organs"]),
            ("masks", "masks", report.kpis["masks"]),
            ("found", "masks with voxels", report.kpis["found"]),
        )
    )
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>medmask cohort report: {e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Cohort report: {e(title)}</h1>",
        f"<p class=muted>medmask {e(str(__version__))}; every number is a SQL answer over "
        "the catalog (docs/catalog.md)</p>",
        f"<div class=kpi>{kpis}</div>",
        _unread_list(report.unread),
        _organ_table(report.organs),
        _outlier_table(report.outliers),
        _missing_table(report.missing),
        _grid_table(report.grids),
        "</body></html>",
    ]
    return "\n".join(parts)


def _unread_list(unread: Sequence[tuple[str, str]]) -> str:
    """The archives that could not be read: none of their masks is counted below."""
    if not unread:
        return ""
    e = html.escape
    rows = "".join(f"<tr><td>{e(a)}</td><td>{e(why)}</td></tr>" for a, why in unread)
    return (
        f"<h2 id=unread>Not read: {len(unread):,} archives (none of their masks is counted "
        f"below)</h2><table><tr><th>archive</th><th>why</th></tr>{rows}</table>"
    )


def _number(value: Any) -> str:
    return "" if value is None else f"{float(value):,.1f}"


def _organ_table(organs: Sequence[dict[str, Any]]) -> str:
    """Per organ: found in how many cases, and its volumes as a box on one log axis."""
    e = html.escape
    volumes = [o[k] for o in organs for k in ("low", "high") if o[k] is not None and o[k] > 0]
    lo = math.log10(min(volumes)) if volumes else 0.0
    hi = math.log10(max(volumes)) if volumes else 1.0
    span = max(hi - lo, 1e-9)
    width = 240

    def x(value: float | None) -> float:
        if value is None or value <= 0:
            return 0.0
        return round((math.log10(value) - lo) / span * width, 1)

    rows = []
    for organ in organs:
        box = ""
        if organ["found"]:
            box = (
                f'<svg width="{width}" height="14" role="img" aria-label="volumes">'
                f'<line x1="{x(organ["low"])}" x2="{x(organ["high"])}" y1="7" y2="7" '
                'stroke="#4a5568"/>'
                f'<rect x="{min(x(organ["q1"]), width - 4)}" y="2" height="10" '
                f'width="{max(x(organ["q3"]) - x(organ["q1"]), 4)}" fill="{BOX_COLOUR}"/>'
                f'<line x1="{x(organ["median"])}" x2="{x(organ["median"])}" y1="1" y2="13" '
                'stroke="#fff" stroke-width="2"/></svg>'
            )
        rows.append(
            f'<tr data-organ="{e(organ["mask"])}"><td>{e(organ["mask"])}</td>'
            f"<td class=n>{organ['found']:,}</td><td class=n>{organ['looked_for']:,}</td>"
            f"<td class=n>{_number(organ['median'])}</td><td class=n>{_number(organ['q1'])}"
            f"</td><td class=n>{_number(organ['q3'])}</td><td>{box}</td></tr>"
        )
    scale = f"log scale, {10**lo:,.2g} to {10**hi:,.3g} ml" if volumes else "no volumes"
    return (
        "<h2 id=organs>Organs: found, and volumes (ml)</h2>"
        "<table><tr><th>organ</th><th>found in</th><th>of</th><th>median</th><th>Q1</th>"
        f"<th>Q3</th><th>range and quartiles ({e(scale)})</th></tr>{''.join(rows)}</table>"
    )


def _outlier_table(outliers: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    if not outliers:
        body = f"<p class=muted>No volume beyond {OUTLIER_IQR:g} interquartile ranges.</p>"
    else:
        rows = "".join(
            f"<tr><td>{e(str(o['case_id']))}</td><td>{e(o['mask'])}</td>"
            f"<td class=n>{_number(o['volume_ml'])}</td>"
            f"<td class=n>{_number(o['median'])}</td></tr>"
            for o in outliers[:200]
        )
        more = f"<p class=muted>{len(outliers) - 200:,} more</p>" if len(outliers) > 200 else ""
        body = (
            "<table><tr><th>case</th><th>organ</th><th>ml</th><th>median ml</th></tr>"
            f"{rows}</table>{more}"
        )
    return (
        f"<h2 id=outliers>Outliers: {len(outliers):,} volumes beyond {OUTLIER_IQR:g} "
        f"interquartile ranges of their organ's quartiles</h2>{body}"
    )


def _missing_table(missing: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(str(m['case_id']))}</td><td class=n>{m['n']:,}</td>"
        f"<td>{e(m['missing'])}</td></tr>"
        for m in missing[:200]
    )
    body = (
        f"<table><tr><th>case</th><th>missing</th><th>organs</th></tr>{rows}</table>"
        if missing
        else "<p class=muted>Every case has every organ most cases have.</p>"
    )
    return (
        f"<h2 id=missing>Missing organs: {len(missing):,} cases lack organs found in at least "
        f"{COMMON:.0%} of the cases</h2>{body}"
    )


def _grid_table(grids: Sequence[dict[str, Any]]) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(g['spacing'])}</td><td>{e(g['shape'])}</td>"
        f"<td class=n>{g['archives']:,}</td></tr>"
        for g in grids[:100]
    )
    return (
        f"<h2 id=grids>Grids: {len(grids):,} combinations of spacing and size</h2>"
        f"<table><tr><th>spacing</th><th>voxels</th><th>archives</th></tr>{rows}</table>"
    )
