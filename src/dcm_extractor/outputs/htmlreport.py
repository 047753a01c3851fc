"""``report.html``: one self-contained page (inline CSS and SVG, no script, no network)
showing the cohort of a run (:class:`~dcm_extractor.outputs.cohort.Cohort`) and how it was made.

Every value on the page is escaped; under ``--desensitize`` the cohort holds only what
the de-identified tables hold, and the provenance omits the run's paths.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from ..version import __version__
from .cohort import IMAGE_BINS, Cohort

__all__ = ["BAR_COLOUR", "render_report"]

BAR_COLOUR: Final = "#2b6cb0"  # the bars' fill: the browser test looks for it in the picture
_MAX_BARS: Final = 15
_STYLE: Final = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:24px;
color:#1a202c;background:#fff}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #cbd5e0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:8px 24px}
.kpi{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.kpi div{background:#ebf4ff;border-radius:6px;padding:8px 14px}.kpi b{display:block;font-size:20px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #e2e8f0;padding:3px 8px;
text-align:left}th{background:#f7fafc}.muted{color:#718096;font-size:13px}
svg text{font-size:12px;fill:#1a202c}
"""


def render_report(
    cohort: Cohort,
    *,
    summary: Mapping[str, Any],
    options: Mapping[str, Any],
    seconds: float,
    deidentified: bool,
) -> str:
    """The page's HTML.

    Parameters
    ----------
    cohort
        What the run saw.
    summary
        The run's counts (cases, failed, files, images, skipped, rows, series).
    options
        The run's options as recorded (``RunOptions.to_dict``); paths are left out when
        ``deidentified``.
    seconds
        How long the run took.
    deidentified
        A ``--desensitize`` run.
    """
    files = int(summary.get("files", 0))
    rate = files / seconds if seconds > 0 else 0.0
    kpis = [
        ("cases", summary.get("cases", 0)),
        ("failed cases", summary.get("failed", 0)),
        ("files", files),
        ("images", summary.get("images", 0)),
        ("skipped files", summary.get("skipped", 0)),
        ("series", cohort.series),
        ("studies", cohort.studies),
    ]
    months = sorted(cohort.study_months.items())
    years = Counter[str]()
    for month, count in months:
        years[month[:4]] += count
    image_bins = [(label, cohort.image_bins.get(label, 0)) for label, _ in IMAGE_BINS]
    thickness = sorted(cohort.thickness.items(), key=lambda kv: _number(kv[0]))
    undated = (
        f"{cohort.undated_studies:,} studies without a usable StudyDate"
        + (" (--desensitize removes dates; --keep-dates or --shift-dates keep them)"
           if deidentified else "")
    )  # fmt: skip
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        f"<title>dcm-extract cohort report</title><style>{_STYLE}</style></head><body>",
        "<h1>Cohort report</h1>",
        f'<p class="muted">medkit dcm_extractor {_e(__version__)}'
        + (" &middot; de-identified (--desensitize)" if deidentified else "")
        + "</p>",
        '<div class="kpi">'
        + "".join(
            f'<div id="kpi-{_e(k.replace(" ", "-"))}"><b>{v:,}</b>{_e(k)}</div>' for k, v in kpis
        )
        + "</div>",
        '<div class="grid">',
        _chart("Series per modality", cohort.modality_series.most_common()),
        _chart("Images per modality", cohort.modality_images.most_common()),
        _chart("Series per manufacturer", cohort.manufacturers.most_common()),
        _chart("Series per scanner model", cohort.models.most_common()),
        _chart("Studies per year", sorted(years.items()), note=undated, fold=False),
        _chart("Series by images per series", image_bins),
        _chart("Series by slice thickness (mm)", thickness),
        "</div>",
        _calendar(cohort.study_months),
        _gaps(cohort),
        _table(
            "Files not counted, by reason",
            ("reason", "lines"),
            cohort.reasons.most_common(),
            "none",
        ),
        _table(
            "Notes on rows and counted images, by kind (no file left out)",
            ("kind", "lines"),
            cohort.notes.most_common(),
            "none",
        ),
        _table(
            "Character set problems",
            ("what", "values"),
            cohort.charset.most_common(),
            "none",
        ),
        _table(
            f"Cases that failed ({cohort.failed_count:,})",
            ("case", "why"),
            cohort.failed,
            "none",
        ),
        _provenance(options, seconds, rate, deidentified),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _chart(
    title: str, items: Sequence[tuple[str, int]], note: str = "", *, fold: bool = True
) -> str:
    """A horizontal bar chart in inline SVG: with ``fold``, the largest bars and the rest
    summed as "N others" (categories sorted by count); without, every bar (a time axis,
    where one "others" bar would lump years together and outgrow them all)."""
    shown = list(items[:_MAX_BARS] if fold else items)
    rest = sum(count for _, count in items[_MAX_BARS:]) if fold else 0
    if rest:
        shown.append((f"{len(items) - _MAX_BARS} others", rest))
    head = f"<section><h2>{_e(title)}</h2>"
    if not shown:
        return head + f'<p class="muted">no data{_e("; " + note) if note else ""}</p></section>'
    top = max(count for _, count in shown) or 1
    label_width, bar_width, row = 215, 220, 20
    height = row * len(shown) + 4
    lines = [
        f'<svg role="img" aria-label="{_e(title)}" width="{label_width + bar_width + 70}" '
        f'height="{height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for index, (label, count) in enumerate(shown):
        y = index * row + 2
        width = max(1, round(bar_width * count / top)) if count else 0
        short = label if len(label) <= 28 else label[:27] + "\u2026"
        lines.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">{_e(short)}'
            f"<title>{_e(label)}</title></text>"
            f'<rect x="{label_width}" y="{y + 2}" width="{width}" height="{row - 6}" '
            f'fill="{BAR_COLOUR}"/>'
            f'<text x="{label_width + width + 6}" y="{y + 14}">{count:,}</text>'
        )
    lines.append("</svg>")
    extra = f'<p class="muted">{_e(note)}</p>' if note else ""
    return head + "".join(lines) + extra + "</section>"


_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                  "Dec")  # fmt: skip


def _calendar(months: Mapping[str, int]) -> str:
    """Studies per month as a year x month table: every month of every year shown, however
    many years (a bar per month would run to hundreds); cells shaded by count."""
    title = "Studies per month"
    if not months:
        return f'<h2>{title}</h2><p class="muted">no dated studies</p>'
    top = max(months.values()) or 1
    head = "<th>year</th>" + "".join(f"<th>{m}</th>" for m in _MONTHS) + "<th>total</th>"
    body = []
    for year in sorted({m[:4] for m in months}):
        cells = []
        for number in range(1, 13):
            count = months.get(f"{year}-{number:02d}", 0)
            shade = f' style="background:rgba(31,119,180,{0.1 + 0.5 * count / top:.2f})"'
            cells.append(f"<td{shade if count else ''}>{count:,}</td>" if count else "<td></td>")
        total = sum(months.get(f"{year}-{n:02d}", 0) for n in range(1, 13))
        body.append(f"<tr><td>{_e(year)}</td>{''.join(cells)}<td>{total:,}</td></tr>")
    return f'<h2>{title}</h2><table class="calendar"><tr>{head}</tr>{"".join(body)}</table>'


def _table(title: str, header: Sequence[str], rows: Iterable[Sequence[object]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return f'<h2>{_e(title)}</h2><p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    return f"<h2>{_e(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _cell(value: object) -> str:
    return _e(f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else value)


def _gaps(cohort: Cohort) -> str:
    columns = ("ProjectID", "SeriesNumber", "SeriesDescription", "Modality", "ImageCount",
               "SliceCount", "SliceSpacing", "ZExtent")  # fmt: skip
    rows = [[row.get(c) if row.get(c) is not None else "" for c in columns] for row in cohort.gaps]
    title = f"Series with uneven slice spacing or gaps ({cohort.gap_count:,})"
    listed = "" if cohort.gap_count <= len(rows) else f" (the first {len(rows)} listed)"
    return _table(title + listed, columns, rows, "none: every series is evenly spaced")


def _provenance(options: Mapping[str, Any], seconds: float, rate: float, deid: bool) -> str:
    hidden = {"data_root", "out", "projectid_map", "manifest_dir", "scheduler", "scheduler_file"}
    shown = [
        (name, "(not shown: --desensitize)" if deid and name in hidden and value else value)
        for name, value in options.items()
    ]
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    rows = [
        ("tool", f"medkit dcm_extractor {__version__}"),
        ("written", when),
        ("time", f"{seconds:.1f} s"),
        ("speed", f"{rate:,.0f} files/s"),
        *((f"option {name}", _option_text(value)) for name, value in shown),
    ]
    return _table("Provenance", ("what", "value"), rows, "")


def _option_text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return "(none)" if value is None else str(value)
