"""The bulletin as a PDF: HTML and CSS laid out by WeasyPrint, figures from matplotlib.

Why WeasyPrint and not reportlab: the CJK font the service ships with on Debian
(``fonts-noto-cjk``, Noto Sans CJK) has PostScript (CFF) outlines, which reportlab's
``TTFont`` refuses ("postscript outlines are not supported"); reportlab would need a
converted TrueType copy or an unembedded Adobe CID font. WeasyPrint shapes text with
Pango/HarfBuzz, finds Noto Sans CJK SC through fontconfig, embeds a subset of it (with a
ToUnicode map, so ``pdftotext`` reads the Chinese back), breaks Chinese lines properly,
and repeats table headers across pages; the layout is ordinary CSS.
"""

from __future__ import annotations

import base64
import logging
from html import escape
from typing import TYPE_CHECKING, Any

from geoservice.reports import figures
from geoservice.reports.data import MAX_LISTED, Column, Table

if TYPE_CHECKING:
    from geoservice.reports.data import Figures, Report

CSS = """
@page {
  size: A4; margin: 16mm 15mm 18mm 15mm;
  @bottom-center { content: string(title) "  ·  第 " counter(page) " 页 / 共 " counter(pages) " 页";
    font-size: 8pt; color: #4a5568; }
}
html { font-family: "Noto Sans CJK SC", sans-serif; font-size: 9.5pt; color: #1a202c; }
h1 { string-set: title content(); font-size: 20pt; text-align: center; margin: 0 0 2mm 0;
  color: #9b2c2c; letter-spacing: 1pt; }
.sub { text-align: center; color: #2d3748; margin: 0 0 1mm 0; }
.meta { text-align: center; color: #718096; font-size: 8pt; margin-bottom: 3mm; }
hr.red { border: none; border-top: 2pt solid #9b2c2c; margin: 2mm 0 4mm 0; }
h2 { font-size: 12.5pt; color: #1a365d; border-left: 4pt solid #2b6cb0; padding-left: 2mm;
  margin: 5mm 0 2mm 0; break-after: avoid; }
p { margin: 1mm 0 2mm 0; line-height: 1.55; }
.cards { display: flex; gap: 2.5mm; margin: 2mm 0 3mm 0; }
.card { flex: 1; border: 0.6pt solid #cbd5e0; border-radius: 2mm; padding: 2mm 1mm;
  text-align: center; background: #f7fafc; }
.card .v { font-size: 14pt; font-weight: bold; color: #1a365d; }
.card .k { font-size: 8pt; color: #4a5568; }
.card .d { font-size: 7.5pt; color: #718096; }
table { border-collapse: collapse; width: 100%; margin: 1mm 0 1mm 0; font-size: 8.5pt; }
thead { display: table-header-group; }
th { background: #dde6f0; border: 0.5pt solid #a0aec0; padding: 1mm 1.2mm; font-weight: bold; }
td { border: 0.5pt solid #cbd5e0; padding: 0.8mm 1.2mm; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.t { white-space: nowrap; }
table.small { font-size: 7.5pt; }
.card .u { font-size: 8pt; font-weight: normal; margin-left: 0.5mm; }
tr { break-inside: avoid; }
tr.bad td { background: #fff5f5; }
.note { font-size: 8pt; color: #4a5568; margin: 0 0 2mm 0; }
img { display: block; margin: 1mm auto 2mm auto; }
img.chart { width: 170mm; }
img.map { width: 165mm; }
.keep { break-inside: avoid; }
"""
log = logging.getLogger(__name__)


def _number(value: Any, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "float":
        return f"{float(value):.2f}" if not float(value).is_integer() else f"{float(value):.1f}"
    if kind == "percent":
        return f"{100 * float(value):.1f}%"
    if kind == "datetime":
        return f"{value:%Y-%m-%d %H:%M}"
    if kind == "date":
        return f"{value:%Y-%m-%d}"
    return escape(str(value))


def _table(
    table: Table, *, limit: int | None = MAX_LISTED, bad: int | None = None, css: str = ""
) -> str:
    """A table as HTML (the first ``limit`` rows; ``bad``: rows from there on marked)."""
    rows = table.rows if limit is None else table.rows[:limit]
    head = "".join(f"<th>{escape(c.title)}</th>" for c in table.columns)
    body = []
    for n, row in enumerate(rows):
        cells = "".join(
            f'<td class="{_cell_class(c.kind)}">{_number(v, c.kind)}</td>'
            for c, v in zip(table.columns, row, strict=True)
        )
        marked = ' class="bad"' if bad is not None and n >= bad else ""
        body.append(f"<tr{marked}>{cells}</tr>")
    if not rows:
        span = len(table.columns)
        body.append(f'<tr><td colspan="{span}" style="text-align:center">无</td></tr>')
    more = ""
    if limit is not None and len(table.rows) > limit:
        more = (
            f'<p class="note">共 {len(table.rows):,} 条，此处列出前 {limit} 条；'
            "完整名单见 Excel 版（--out FILE.xlsx 或 format=xlsx）。</p>"
        )
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    rows_html = "".join(body)
    return (
        f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'
        f"{more}{note}"
    )


def _cell_class(kind: str) -> str:
    if kind in ("int", "float", "percent"):
        return "n"
    return "t" if kind in ("date", "datetime") else ""


def _img(png: bytes, css: str, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{css}" alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _change(now: float | None, before: float | None, *, points: bool = False) -> str:
    if now is None or before is None:
        return "上期无可比数据"
    if points:
        return f"较上期{'上升' if now >= before else '下降'} {abs(now - before) * 100:.1f} 个百分点"
    if not before:
        return "上期为 0"
    change = (now - before) / before
    return f"环比{'增长' if change >= 0 else '下降'} {abs(change) * 100:.1f}%"


def _cards(cur: Figures, prev: Figures) -> str:
    items = [
        ("事件总数", _number(cur.events, "int"), _change(cur.events, prev.events)),
        ("已办结", _number(cur.closed, "int"), f"在办 {cur.open:,}"),
        (
            "办结率",
            _number(cur.closure_rate, "percent"),
            _change(cur.closure_rate, prev.closure_rate, points=True),
        ),
        (
            "按时办结率",
            _number(cur.on_time_rate, "percent"),
            _change(cur.on_time_rate, prev.on_time_rate, points=True),
        ),
        (
            "办结中位时长",
            f'{_number(cur.median_handling_hours, "float")}<span class="u">小时</span>',
            f"上期 {_number(prev.median_handling_hours, 'float')} 小时",
        ),
        ("超期未办结", _number(cur.overdue, "int"), f"上期 {prev.overdue:,}"),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div>'
            f'<div class="d">{d}</div></div>'
            for k, v, d in items
        )
        + "</div>"
    )


def _summary(report: Report) -> str:
    cur, prev = report.current, report.previous
    parts = [
        f"{cur.period.label}，{escape(report.area)}网格平台共受理事件 {cur.events:,} 件"
        f"（上期 {prev.events:,} 件，{_change(cur.events, prev.events)}），"
        f"已办结 {cur.closed:,} 件、在办 {cur.open:,} 件，"
        f"办结率 {_number(cur.closure_rate, 'percent')}；"
        f"按时办结率 {_number(cur.on_time_rate, 'percent')}，"
        f"办结中位时长 {_number(cur.median_handling_hours, 'float')} 小时；"
        f"超期未办结 {cur.overdue:,} 件。"
    ]
    top = max(cur.by_category["groups"], key=lambda g: g["events"], default=None)
    if top:
        share = top["events"] / cur.events if cur.events else 0
        parts.append(
            f"事件以{escape(str(top['name']))}为主（{top['events']:,} 件，占 {share * 100:.1f}%）。"
        )
    ranked = [d for d in report.departments if d["on_time_rate"] is not None]
    if len(ranked) >= 2:
        worst = ranked[-1]
        parts.append(
            f"按时办结率最高的是{escape(ranked[0]['department'])}"
            f"（{_number(ranked[0]['on_time_rate'], 'percent')}），"
            f"最低的是{escape(worst['department'])}（{_number(worst['on_time_rate'], 'percent')}，"
            f"超期 {worst['overdue']:,} 件）。"
        )
    hot = int((report.hot_spots.classes >= 2).sum())
    if report.hot_spots.z is not None:
        parts.append(f"95% 以上置信的事件热点网格 {hot} 个。")
    bands = report.tables[6].rows
    if bands:
        parts.append(
            "1/3/5 分钟网格覆盖率分别为 "
            + "、".join(_number(b[3], "percent") for b in bands)
            + f"，5 分钟内未覆盖网格 {len(report.tables[7].rows):,} 个。"
        )
    versions = report.changes["versions"]
    parts.append(
        f"本期生效数据版本 {len(versions)} 个，边界与站点变更 {len(report.changes['layers'])} 项。"
        if versions
        else "本期边界与站点无变更。"
    )
    return "<p>" + "".join(parts) + "</p>"


def html_of(report: Report) -> str:
    """The bulletin as one HTML document (figures inline)."""
    t = report.tables
    daily = figures.trend_chart(report)
    trend = "" if daily is None else _img(daily, "chart", "每日事件数")
    cur = report.current.period
    prev = report.previous.period
    sections = [
        f"<h1>{escape(report.title)}</h1>",
        f'<p class="sub">{escape(cur.label)}（{escape(cur.span)}）</p>',
        f'<p class="meta">上期：{escape(prev.label)}（{escape(prev.span)}） · 统计截至 '
        f"{report.as_of:%Y-%m-%d %H:%M}（北京时间） · 数据版本 {report.dataset_version}</p>",
        '<hr class="red">',
        _cards(report.current, report.previous),
        _summary(report),
        f"<h2>{escape(t[0].title)}</h2>",
        _table(t[0]),
        trend,
        f"<h2>{escape(t[1].title)}</h2>",
        _img(figures.category_chart(report), "chart", "各类别事件数"),
        _table(t[1]),
        f"<h2>{escape(t[2].title)}</h2>",
        _table(t[2]),
        _img(figures.town_chart(report), "chart", "各镇街事件数"),
        f"<h2>{escape(t[3].title)}</h2>",
        _table(t[3], limit=None, bad=max(len(t[3].rows) - 3, 3)),
        f"<h2>{escape(t[4].title)}</h2>",
        _table(t[4], css="small"),
        f"<h2>{escape(t[5].title)}</h2>",
        _img(figures.hot_spot_map(report), "map", "事件热点图"),
        _table(t[5], limit=30),
        f"<h2>{escape(t[6].title)}</h2>",
        _img(figures.coverage_map(report), "map", "响应覆盖图"),
        _table(t[6]),
        f"<h2>{escape(t[7].title)}</h2>",
        _table(t[7], limit=60),
        f"<h2>{escape(t[8].title)}</h2>",
        _table(t[8]),
        f"<h2>{escape(t[9].title)}</h2>",
        _table(t[9]),
    ]
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{escape(report.title)}</title></head><body>" + "".join(sections) + "</body></html>"
    )


def pdf_bytes(report: Report) -> bytes:
    """The bulletin as PDF bytes (Noto Sans CJK SC embedded)."""
    from weasyprint import CSS as Stylesheet
    from weasyprint import HTML

    document = HTML(string=html_of(report))
    return document.write_pdf(stylesheets=[Stylesheet(string=CSS)])


__all__ = ["Column", "html_of", "pdf_bytes"]
