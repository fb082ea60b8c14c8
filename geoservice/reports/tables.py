"""A bulletin's tables, and the workbook (one sheet per table) and CSV made of them.

The workbook is written with openpyxl (the tests read it back with the same library):
counts are integers, rates are numbers shown as percentages, times are Excel dates in
China time. The CSV holds the same tables one after another, each under its title, in
UTF-8 with a byte-order mark so that Excel opens the Chinese text.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from geoservice.events import routing
from geoservice.patrols import CHINA

if TYPE_CHECKING:
    from geoservice.reports.data import Report

from geoservice.reports.data import (
    COVERAGE_CLASSES,
    HOT_CLASSES,
    MINUTES,
    Column,
    Figures,
    Table,
    coverage_classes,
    with_previous,
)

NUMBER_FORMATS = {
    "int": "#,##0",
    "float": "0.00",
    "percent": "0.0%",
    "datetime": "yyyy-mm-dd hh:mm",
    "date": "yyyy-mm-dd",
}


def _change(now: int, before: int) -> float | None:
    return round((now - before) / before, 4) if before else None


def summary_rows(current: Figures, previous: Figures) -> list[list[Any]]:
    return [
        [
            label,
            f.period.first,
            f.period.last,
            f.events,
            f.closed,
            f.open,
            f.closure_rate,
            f.median_handling_hours,
            f.on_time_rate,
            f.overdue,
        ]
        for label, f in (("本期", current), ("上期", previous))
    ]


def area_bands(report: Report) -> list[dict[str, Any]]:
    """The 1/3/5-minute bands of the bulletin's area (the district: the API's bands)."""
    cov, mask = report.coverage, report.coverage_mask
    minutes = cov.minutes_to_reach[mask]
    population = cov.grids.population[mask]
    area = cov.grids.area_km2[mask]
    total_pop = float(population.sum()) or 1.0
    total_area = float(area.sum()) or 1.0
    out = []
    for m in MINUTES:
        covered = minutes <= m
        out.append(
            {
                "minutes": m,
                "grids_total": len(minutes),
                "grids_covered": int(covered.sum()),
                "grid_share": round(float(covered.mean()), 6) if len(minutes) else None,
                "area_share": round(float(area[covered].sum()) / total_area, 6),
                "population_share": round(float(population[covered].sum()) / total_pop, 6),
            }
        )
    return out


def uncovered(report: Report) -> list[dict[str, Any]]:
    """The area's grids not reached within 5 minutes, slowest first."""
    cov, mask = report.coverage, report.coverage_mask
    index = np.flatnonzero(mask & ~(cov.minutes_to_reach <= MINUTES[-1]))
    order = index[
        np.argsort(
            -np.where(np.isfinite(cov.minutes_to_reach[index]), cov.minutes_to_reach[index], 1e9),
            kind="stable",
        )
    ]
    return [
        {
            "code": str(cov.grids.codes[i]),
            "name": cov.grids.names[i],
            "town": report.town_names.get(cov.grids.towns[i], cov.grids.towns[i]),
            "minutes": _minutes(cov.minutes_to_reach[i]),
            "origin": cov.nearest_origin[i],
        }
        for i in order.tolist()
    ]


def _minutes(value: float) -> float | None:
    if not np.isfinite(value):
        return None
    return float(np.ceil(value * 100) / 100)


def tables_of(report: Report) -> list[Table]:
    """Every table of the bulletin, in the order of the document."""
    cur, prev = report.current, report.previous
    tables = [
        Table(
            "概况",
            "一、总体情况（本期与上期）",
            [
                Column("期间"),
                Column("起始日期", "date"),
                Column("截止日期", "date"),
                Column("事件总数", "int"),
                Column("已办结", "int"),
                Column("在办", "int"),
                Column("办结率", "percent"),
                Column("办结中位时长（小时）", "float"),
                Column("按时办结率", "percent"),
                Column("超期未办结", "int"),
            ],
            summary_rows(cur, prev),
            note=(
                f"状态与超期统计截至 {report.as_of:%Y-%m-%d %H:%M}（北京时间）。"
                "按时办结率 = 在办理时限内办结的事件 ÷（已办结 + 超期未办结）。"
            ),
        )
    ]
    before = {g["code"]: g["events"] for g in prev.by_category["groups"]}
    rows = []
    for code, rule in routing().items():
        group = next((g for g in cur.by_category["groups"] if g["code"] == code), None)
        rows.append(
            [
                rule["name"],
                group["events"] if group else 0,
                before.get(code, 0),
                _change(group["events"] if group else 0, before.get(code, 0)),
                group["closed"] if group else 0,
                group["open"] if group else 0,
                group["closure_rate"] if group else None,
                group["median_handling_hours"] if group else None,
                group["overdue"] if group else 0,
                rule["deadline_days"],
            ]
        )
    tables.append(
        Table(
            "按类别",
            "二、事件类别",
            [
                Column("类别"),
                Column("本期事件", "int"),
                Column("上期事件", "int"),
                Column("环比", "percent"),
                Column("已办结", "int"),
                Column("在办", "int"),
                Column("办结率", "percent"),
                Column("办结中位时长（小时）", "float"),
                Column("超期未办结", "int"),
                Column("办理时限（天）", "int"),
            ],
            rows,
        )
    )
    before = {g["code"]: g["events"] for g in prev.by_area["groups"]}
    level = "村（社区）" if report.town else "镇街"
    tables.append(
        Table(
            "按村社区" if report.town else "按镇街",
            f"三、各{level}事件",
            [
                Column(f"{level}代码"),
                Column(level),
                Column("本期事件", "int"),
                Column("上期事件", "int"),
                Column("环比", "percent"),
                Column("已办结", "int"),
                Column("在办", "int"),
                Column("办结率", "percent"),
                Column("办结中位时长（小时）", "float"),
                Column("超期未办结", "int"),
            ],
            [
                [
                    g["code"],
                    g["name"] or report.town_names.get(g["code"] or "", "未定位"),
                    g["events"],
                    before.get(g["code"], 0),
                    _change(g["events"], before.get(g["code"], 0)),
                    g["closed"],
                    g["open"],
                    g["closure_rate"],
                    g["median_handling_hours"],
                    g["overdue"],
                ]
                for g in sorted(
                    with_previous(cur.by_area, prev.by_area),
                    key=lambda g: (-g["events"], -before.get(g["code"], 0), str(g["code"])),
                )
            ],
        )
    )
    tables.append(
        Table(
            "责任单位排名",
            "四、责任单位排名（按时办结率从高到低，超期少者在前）",
            [
                Column("排名", "int"),
                Column("责任单位"),
                Column("类型"),
                Column("事件数", "int"),
                Column("已办结", "int"),
                Column("按时办结", "int"),
                Column("超期未办结", "int"),
                Column("按时办结率", "percent"),
                Column("办结中位时长（小时）", "float"),
            ],
            [
                [
                    d["rank"],
                    d["department"],
                    d["kind"],
                    d["events"],
                    d["closed"],
                    d["on_time"],
                    d["overdue"],
                    d["on_time_rate"],
                    d["median_handling_hours"],
                ]
                for d in report.departments
            ],
            note="责任单位按事件分拨规则确定：区直部门、牵头部门（联办类别），或事件所在镇街。",
        )
    )
    tables.append(
        Table(
            "超期事件",
            "五、超期未办结事件",
            [
                Column("事件编号"),
                Column("发生时间", "datetime"),
                Column("类别"),
                Column("镇街"),
                Column("网格编码"),
                Column("网格"),
                Column("责任单位"),
                Column("协办单位"),
                Column("办理期限", "datetime"),
                Column("超期天数", "float"),
            ],
            [
                [
                    e["id"],
                    e["time"],
                    e["category"],
                    e["town"],
                    e["grid"],
                    e["grid_name"],
                    e["department"],
                    e["helpers"],
                    e["deadline"],
                    e["days_overdue"],
                ]
                for e in report.overdue
            ],
        )
    )
    spots = report.hot_spots
    names = dict(HOT_CLASSES)
    hot_rows = []
    if spots.z is not None:
        town_of = dict(zip(report.coverage.grids.codes, report.coverage.grids.towns, strict=True))
        order = np.argsort(-spots.z, kind="stable")
        for i in order.tolist():
            if spots.classes[i] == 0:
                continue
            code = str(spots.codes[i])
            hot_rows.append(
                [
                    code,
                    report.grid_names.get(code),
                    report.town_names.get(town_of.get(code) or "", town_of.get(code)),
                    int(spots.counts[i]),
                    round(float(spots.z[i]), 3),
                    names[int(spots.classes[i])],
                ]
            )
    tables.append(
        Table(
            "热点网格",
            "六、事件热点网格（Getis-Ord Gi*）",
            [
                Column("网格编码"),
                Column("网格"),
                Column("镇街"),
                Column("本期事件", "int"),
                Column("Gi* z值", "float"),
                Column("类别"),
            ],
            hot_rows,
            note=spots.note,
        )
    )
    bands = area_bands(report)
    tables.append(
        Table(
            "响应覆盖",
            "七、1/3/5分钟响应覆盖",
            [
                Column("时限（分钟）", "int"),
                Column("网格总数", "int"),
                Column("覆盖网格", "int"),
                Column("网格覆盖率", "percent"),
                Column("面积覆盖率", "percent"),
                Column("人口覆盖率", "percent"),
            ],
            [
                [
                    int(b["minutes"]),
                    b["grids_total"],
                    b["grids_covered"],
                    b["grid_share"],
                    b["area_share"],
                    b["population_share"],
                ]
                for b in bands
            ],
            note=(
                f"按数据版本 {report.dataset_version} 的路网，自派出所、警务室与巡逻点位出发，"
                "网格半数需求点到达的时间。"
            ),
        )
    )
    classes = coverage_classes(report.coverage.minutes_to_reach[report.coverage_mask])
    tables[-1].note += (
        " 网格分级："
        + "，".join(
            f"{name} {int((classes == i).sum())} 个" for i, name in enumerate(COVERAGE_CLASSES)
        )
        + "。"
    )
    tables.append(
        Table(
            "未覆盖网格",
            "八、5分钟内未覆盖网格",
            [
                Column("网格编码"),
                Column("网格"),
                Column("镇街"),
                Column("到达时间（分钟）", "float"),
                Column("最近出警点"),
            ],
            [
                [u["code"], u["name"], u["town"], u["minutes"], u["origin"]]
                for u in uncovered(report)
            ],
        )
    )
    ch = report.changes
    tables.append(
        Table(
            "数据版本",
            "九、本期生效的数据版本",
            [
                Column("生效时间", "datetime"),
                Column("数据版本", "int"),
                Column("说明"),
                Column("发布人"),
            ],
            [[v["since"], v["version"], v["note"], v["by"]] for v in ch["versions"]],
        )
    )
    tables.append(
        Table(
            "边界站点变更",
            "十、边界与站点变更（期初版本 → 期末版本）",
            [Column("图层"), Column("变更"), Column("数量", "int"), Column("编码")],
            [[c["layer"], c["change"], c["count"], "、".join(c["codes"])] for c in ch["layers"]],
            note=(
                f"期初版本 {_version(ch['from_version'])}，期末版本 {_version(ch['to_version'])}。"
            ),
        )
    )
    return tables


# --- writing ------------------------------------------------------------------------------


def _version(version: int | None) -> str:
    return "（尚无数据版本）" if version is None else str(version)


def _local(value: Any) -> Any:
    """Excel has no time zones: aware times as naive China time."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(CHINA).replace(tzinfo=None)
    return value


def workbook_bytes(report: Report) -> bytes:
    """The bulletin as an .xlsx workbook: a sheet 说明, then one sheet per table."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    book = Workbook()
    info = book.active
    assert info is not None
    info.title = "说明"
    period = report.current.period
    for row in (
        ["标题", report.title],
        ["期间", f"{period.label}（{period.span}）"],
        ["上期", f"{report.previous.period.label}（{report.previous.period.span}）"],
        ["统计截至", _local(report.as_of)],
        ["数据版本", report.dataset_version],
        ["范围", report.area],
    ):
        info.append(row)
    info["B4"].number_format = NUMBER_FORMATS["datetime"]
    info.column_dimensions["A"].width = 12
    info.column_dimensions["B"].width = 60
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="DDE6F0")
    for table in report.tables:
        sheet = book.create_sheet(table.sheet)
        sheet.append([c.title for c in table.columns])
        for cell in sheet[1]:
            cell.font = bold
            cell.fill = fill
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        for row in table.rows:
            sheet.append([_local(v) for v in row])
        for n, column in enumerate(table.columns, 1):
            letter = get_column_letter(n)
            number_format = NUMBER_FORMATS.get(column.kind)
            if number_format:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=n, max_col=n):
                    cell.number_format = number_format
            longest = max(
                [_width(column.title)] + [_width(_shown(v)) for v in (r[n - 1] for r in table.rows)]
            )
            sheet.column_dimensions[letter].width = min(max(8, longest + 2), 60)
        sheet.freeze_panes = "A2"
        if table.note:
            sheet.cell(row=len(table.rows) + 3, column=1, value=table.note)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _shown(value: Any) -> str:
    if isinstance(value, datetime):
        return "2020-06-30 12:00"
    return "" if value is None else str(value)


def _width(text: str) -> int:
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def csv_bytes(report: Report) -> bytes:
    """Every table one after another (title line, header, rows, blank line), UTF-8 with
    a byte-order mark; times as ``YYYY-MM-DD HH:MM`` China time, rates as fractions."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    period = report.current.period
    writer.writerow([report.title, f"{period.label}（{period.span}）"])
    writer.writerow(
        ["统计截至", f"{report.as_of:%Y-%m-%d %H:%M}", "数据版本", report.dataset_version]
    )
    writer.writerow([])
    for table in report.tables:
        writer.writerow([f"【{table.title}】"])
        writer.writerow([c.title for c in table.columns])
        for row in table.rows:
            writer.writerow([_csv_value(v) for v in row])
        if table.note:
            writer.writerow([table.note])
        writer.writerow([])
    return out.getvalue().encode("utf-8-sig")


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return f"{_local(value):%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    return value
