"""Bulletins, read as a reader would: the PDF's text against ``/v1/events/stats``, its
pages rendered with pdftoppm, the workbook read back with openpyxl, the CSV's BOM, and
every bad period, date, town and format refused naming the value."""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import pytest
from openpyxl import load_workbook

from geoservice.reports.periods import PeriodKind, period_of
from tests.cli import run_cli
from tests.conftest import auth

JUNE = {"from": "2020-06-01T00:00:00+08:00", "to": "2020-07-01T00:00:00+08:00"}
MAY = {"from": "2020-05-01T00:00:00+08:00", "to": "2020-06-01T00:00:00+08:00"}
SHEETS = [
    "说明",
    "概况",
    "按类别",
    "按镇街",
    "责任单位排名",
    "超期事件",
    "热点网格",
    "响应覆盖",
    "未覆盖网格",
    "数据版本",
    "边界站点变更",
]


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}%"


def hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def pdf_text(path: Path, mode: str = "-layout") -> str:
    """The PDF's text: ``-layout`` keeps table rows on lines, ``-raw`` keeps the order in
    which cells were written (a wrapped cell's lines together)."""
    done = subprocess.run(
        ["pdftotext", mode, str(path), "-"], capture_output=True, text=True, check=True
    )
    return done.stdout


def rows_starting(text: str, first: str) -> list[list[str]]:
    """The table lines of ``text`` whose first cell is ``first``, split into cells."""
    return [line.split() for line in text.splitlines() if line.split()[:1] == [first]]


@pytest.fixture(scope="module")
def june(demo_readonly, tmp_path_factory) -> dict[str, Path]:
    """The June 2020 bulletin written by the CLI in every format."""
    out = tmp_path_factory.mktemp("june")
    files = {}
    for suffix in ("pdf", "xlsx", "csv"):
        path = out / f"june.{suffix}"
        done = run_cli(
            "report", "monthly", "--date", "2020-06-30", "--out", str(path), settings=demo_readonly
        )
        assert done.returncode == 0, done.stderr
        assert "2020-06-01 to 2020-06-30" in done.stderr
        files[suffix] = path
    return files


def test_periods() -> None:
    tuesday = date(2020, 6, 30)
    week = period_of(PeriodKind.weekly, tuesday)
    assert (week.first, week.last) == (date(2020, 6, 29), date(2020, 7, 5))
    assert week.label == "2020年第27周（2020年6月29日—2020年7月5日）"
    assert (week.previous().first, week.previous().last) == (date(2020, 6, 22), date(2020, 6, 28))
    new_year = period_of(PeriodKind.weekly, date(2021, 1, 1))
    assert new_year.first == date(2020, 12, 28) and new_year.label.startswith("2020年第53周")
    quarter = period_of(PeriodKind.quarterly, tuesday)
    assert (quarter.first, quarter.last, quarter.label) == (
        date(2020, 4, 1),
        date(2020, 6, 30),
        "2020年第二季度",
    )
    assert quarter.previous().first == date(2020, 1, 1)
    assert period_of(PeriodKind.quarterly, date(2021, 2, 1)).previous().first == date(2020, 10, 1)
    month = period_of(PeriodKind.monthly, date(2020, 3, 15))
    assert (month.previous().first, month.previous().last) == (date(2020, 2, 1), date(2020, 2, 29))
    day = period_of(PeriodKind.daily, date(2020, 3, 1))
    assert day.previous().first == date(2020, 2, 29)
    assert day.end.isoformat() == "2020-03-02T00:00:00+08:00"


def test_pdf_figures_equal_the_api(june, client) -> None:
    text = pdf_text(june["pdf"])
    assert "惠城区网格事件月通报" in text and "2020年6月" in text
    for label, window in (("本期", JUNE), ("上期", MAY)):
        stats = client.get("/v1/events/stats", params={"by": "category", **window}).json()
        (row,) = [r for r in rows_starting(text, label) if r[1] == window["from"][:10]]
        assert row[3:7] == [
            f"{stats['events']:,}",
            f"{stats['closed']:,}",
            f"{stats['open']:,}",
            percent(stats["closure_rate"]),
        ]
        assert row[-1] == f"{stats['overdue']:,}"
    june_stats = client.get("/v1/events/stats", params={"by": "category", **JUNE}).json()
    may = client.get("/v1/events/stats", params={"by": "category", **MAY}).json()
    before = {g["code"]: g["events"] for g in may["groups"]}
    assert june_stats["events"] > 500
    for group in june_stats["groups"]:
        (row,) = rows_starting(text, group["name"])
        assert row[1:3] == [f"{group['events']:,}", f"{before[group['code']]:,}"]
        assert row[4:9] == [
            f"{group['closed']:,}",
            f"{group['open']:,}",
            percent(group["closure_rate"]),
            hours(group["median_handling_hours"]),
            f"{group['overdue']:,}",
        ]
    towns = client.get("/v1/events/stats", params={"by": "town", **JUNE}).json()
    assert len(towns["groups"]) == 16
    for group in towns["groups"]:
        (row,) = rows_starting(text, group["code"])
        assert row[1] == group["name"]
        assert row[2] == f"{group['events']:,}"
        assert row[5:10] == [
            f"{group['closed']:,}",
            f"{group['open']:,}",
            percent(group["closure_rate"]),
            hours(group["median_handling_hours"]),
            f"{group['overdue']:,}",
        ]
    assert f"共受理事件 {june_stats['events']:,} 件" in text.replace("\n", "")


def test_pdf_overdue_and_departments_follow_the_rules(june, client) -> None:
    text = pdf_text(june["pdf"])
    overdue = client.get("/v1/events/overdue", params={"limit": 10_000}).json()
    in_june = [e for e in overdue["events"] if "2020-06-01" <= e["time"][:10] <= "2020-06-30"]
    assert in_june, "the demo has an overdue event in June"
    flat = re.sub(r"\s+", "", pdf_text(june["pdf"], "-raw"))
    for event in in_june:
        assert len(rows_starting(text, event["id"])) == 1
        if event["route"] != "town":
            assert event["handler"] in flat
    book = load_workbook(june["xlsx"])
    sheet = book["责任单位排名"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)]
    rows = [r for r in rows if isinstance(r["排名"], int)]
    assert [r["排名"] for r in rows] == list(range(1, len(rows) + 1))
    rates = [r["按时办结率"] for r in rows]
    assert rates == sorted(rates, reverse=True)
    stats = client.get("/v1/events/stats", params={"by": "category", **JUNE}).json()
    assert sum(r["事件数"] for r in rows) == stats["events"]
    assert sum(r["超期未办结"] for r in rows) == stats["overdue"]
    assert {"区城市管理和综合执法局", "区委政法委", "区政务服务数据管理局"} <= {
        r["责任单位"] for r in rows
    }


def test_pdf_embeds_the_cjk_font_and_renders(june, tmp_path) -> None:
    fonts = subprocess.run(
        ["pdffonts", str(june["pdf"])], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if "Noto-Sans-CJK-SC" in line]
    assert cjk and all(" yes yes yes " in line for line in cjk), fonts
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", str(june["pdf"]), str(tmp_path / "page")], check=True
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 4
    from PIL import Image

    for page in pages:
        with Image.open(page) as image:
            assert image.size[0] < image.size[1]  # A4 portrait
            colours = image.convert("L").getextrema()
            assert colours[0] < 100  # something is drawn on every page


def test_workbook_one_sheet_per_table_typed(june, client) -> None:
    book = load_workbook(june["xlsx"])
    assert book.sheetnames == SHEETS
    summary = book["概况"]
    assert [c.value for c in summary[1]][:4] == ["期间", "起始日期", "截止日期", "事件总数"]
    now = [c.value for c in summary[2]]
    stats = client.get("/v1/events/stats", params={"by": "category", **JUNE}).json()
    assert now[0] == "本期"
    assert now[1] == datetime(2020, 6, 1) and now[2] == datetime(2020, 6, 30)
    assert now[3:6] == [stats["events"], stats["closed"], stats["open"]]
    assert now[6] == stats["closure_rate"] and summary.cell(2, 7).number_format == "0.0%"
    assert isinstance(now[7], float) and isinstance(now[8], float)
    late = book["超期事件"]
    first = [c.value for c in late[2]]
    assert isinstance(first[1], datetime) and isinstance(first[8], datetime)
    assert isinstance(first[9], int | float) and first[9] > 0
    assert late.cell(2, 10).number_format == "0.00"
    coverage = client.get("/v1/coverage/response", params={"minutes": "1,3,5"}).json()
    bands = [r for r in book["响应覆盖"].iter_rows(min_row=2, values_only=True) if r[1]]
    assert [(r[0], r[2], r[3]) for r in bands] == [
        (b["minutes"], b["grids_covered"], b["grid_share"]) for b in coverage["bands"]
    ]
    uncovered = [r for r in book["未覆盖网格"].iter_rows(min_row=2, values_only=True)]
    assert [r[0] for r in uncovered] == [g["code"] for g in coverage["uncovered_grids"]]
    hot = [r for r in book["热点网格"].iter_rows(min_row=2, values_only=True) if r[4]]
    assert hot and all(isinstance(r[3], int) and isinstance(r[4], float) for r in hot)
    assert hot[0][5] == "热点（99%置信）" and hot[0][4] >= 2.576
    for sheet in book.worksheets:
        for row in sheet.iter_rows(values_only=True):
            assert not any(isinstance(v, float) and v != v for v in row)  # never NaN


def test_csv_has_a_bom_and_every_table(june) -> None:
    raw = june["csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    titles = [r[0] for r in rows if r and r[0].startswith("【")]
    assert len(titles) == len(SHEETS) - 1
    assert rows[0][0] == "惠城区网格事件月通报"


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("fortnightly", "--out", "x.pdf"), "'fortnightly'"),
        (("monthly", "--date", "2020-02-30", "--out", "x.pdf"), "'2020-02-30'"),
        (("monthly", "--town", "441399999", "--out", "x.pdf"), "'441399999'"),
        (("monthly", "--out", "x.docx"), "x.docx"),
    ],
)
def test_cli_refuses_bad_input(demo_readonly, tmp_path, args, named) -> None:
    args = tuple(str(tmp_path / a) if a.startswith("x.") else a for a in args)
    done = run_cli("report", *args, settings=demo_readonly)
    assert done.returncode == 2, done.stderr
    assert named in done.stderr.replace("\n", "")
    assert not list(tmp_path.iterdir())


def test_town_bulletin_and_changes_in_the_period(demo_settings, demo_files, tmp_path) -> None:
    """A station renamed today: today's daily bulletin for its town lists the change."""
    stations = gpd.read_file(demo_files.stations)
    town = "441302002"
    renamed = stations.index[stations["code"] == f"PS{town}"][0]
    stations.loc[renamed, "name"] = "桥西派出所（新址）"
    edited = tmp_path / "stations.geojson"
    stations.to_file(edited, driver="GeoJSON")
    done = run_cli("etl", "stations", str(edited), settings=demo_settings)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "today.xlsx"
    done = run_cli("report", "daily", "--town", town, "--out", str(out), settings=demo_settings)
    assert done.returncode == 0, done.stderr
    book = load_workbook(out)
    assert book["说明"]["B6"].value == "桥西街道"
    changes = [r for r in book["边界站点变更"].iter_rows(min_row=2, values_only=True) if r[2]]
    assert ("派出所/警务室", "属性变更", 1, f"PS{town}") in changes
    versions = [r for r in book["数据版本"].iter_rows(min_row=2, values_only=True) if r[1]]
    assert versions and isinstance(versions[-1][0], datetime)
    assert book.sheetnames == [s if s != "按镇街" else "按村社区" for s in SHEETS]
    units = [r for r in book["按村社区"].iter_rows(min_row=2, values_only=True) if r[2]]
    assert all(r[0].startswith(town) for r in units)  # today has no events, or the town's
    uncovered = [r for r in book["未覆盖网格"].iter_rows(min_row=2, values_only=True) if r[0]]
    assert all(r[2] == "桥西街道" for r in uncovered)


def test_tools_are_there() -> None:
    for tool in ("pdftotext", "pdftoppm", "pdffonts"):
        assert shutil.which(tool), f"{tool} missing: `make tools` installs poppler-utils"


# --- the API ---------------------------------------------------------------------------------


def test_api_pdf_equals_the_stats(client, tmp_path) -> None:
    answer = client.get("/v1/reports/monthly", params={"date": "2020-06-30"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/pdf"
    assert "bulletin-monthly-2020-06-01.pdf" in answer.headers["content-disposition"]
    path = tmp_path / "june.pdf"
    path.write_bytes(answer.content)
    text = pdf_text(path)
    stats = client.get("/v1/events/stats", params={"by": "category", **JUNE}).json()
    (row,) = [r for r in rows_starting(text, "本期") if r[1] == "2020-06-01"]
    assert row[3:7] == [
        f"{stats['events']:,}",
        f"{stats['closed']:,}",
        f"{stats['open']:,}",
        percent(stats["closure_rate"]),
    ]


def test_api_workbook_and_csv(client, june, tmp_path) -> None:
    answer = client.get("/v1/reports/quarterly", params={"date": "2020-06-30", "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    path = tmp_path / "q2.xlsx"
    path.write_bytes(answer.content)
    book = load_workbook(path)
    assert book.sheetnames == SHEETS
    now, before = ([c.value for c in row] for row in book["概况"].iter_rows(min_row=2, max_row=3))
    assert (now[1], now[2]) == (datetime(2020, 4, 1), datetime(2020, 6, 30))
    assert (before[1], before[2]) == (datetime(2020, 1, 1), datetime(2020, 3, 31))
    stats = client.get(
        "/v1/events/stats",
        params={
            "by": "town",
            "from": "2020-04-01T00:00:00+08:00",
            "to": "2020-07-01T00:00:00+08:00",
        },
    ).json()
    assert now[3:6] == [stats["events"], stats["closed"], stats["open"]]
    towns = {r[0]: r for r in book["按镇街"].iter_rows(min_row=2, values_only=True) if r[2]}
    for group in stats["groups"]:
        assert towns[group["code"]][2] == group["events"]
        assert towns[group["code"]][8] == group["median_handling_hours"]
    monthly = client.get("/v1/reports/monthly", params={"date": "2020-06-30", "format": "csv"})
    assert monthly.status_code == 200
    assert monthly.headers["content-type"].startswith("text/csv")
    assert monthly.content.startswith(b"\xef\xbb\xbf")

    # the API's tables are the CLI's (the time they were made aside)
    def tables(text: str) -> list[str]:
        return [line for line in text.splitlines() if "统计截至" not in line]

    assert tables(monthly.content.decode("utf-8-sig")) == tables(
        june["csv"].read_bytes().decode("utf-8-sig")
    )


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/v1/reports/fortnightly", {}, "'fortnightly'"),
        ("/v1/reports/monthly", {"date": "2020-02-30"}, "'2020-02-30'"),
        ("/v1/reports/monthly", {"date": "June"}, "'June'"),
        ("/v1/reports/quarterly", {"date": "0001-01-01"}, "'0001-01-01'"),
        ("/v1/reports/monthly", {"date": "2020-06-30", "town": "441399999"}, "'441399999'"),
        ("/v1/reports/monthly", {"format": "docx"}, "'docx'"),
    ],
)
def test_api_refuses_bad_input(client, path, params, named) -> None:
    answer = client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 422 and named in problem["detail"]


def test_api_needs_a_planner(client) -> None:
    answer = client.get("/v1/reports/daily", headers=auth("dispatch"))
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/v1/reports/daily", headers={"Authorization": ""}).status_code == 401


# --- in this process (every warning is an error here: missing glyphs, empty statistics) ------


@pytest.fixture(scope="module")
def demo_model(demo_readonly, demo_index, demo_network):
    from geoservice.coverage import CoverageModel
    from geoservice.db import create_engine

    engine = create_engine(demo_readonly)
    yield CoverageModel(engine, demo_network, demo_index)
    engine.dispose()


def test_a_town_quarter_in_process(demo_model, tmp_path) -> None:
    from geoservice.events import event_stats
    from geoservice.reports import Format, bulletin, gather, render

    engine = demo_model.engine
    report = gather(
        engine, demo_model, period_of(PeriodKind.quarterly, date(2020, 6, 30)), "441302002"
    )
    assert report.title == "桥西街道网格事件季度分析"
    stats = event_stats(engine, "town", report.current.period.start, report.current.period.end)
    (town,) = [g for g in stats["groups"] if g["code"] == "441302002"]
    assert (report.current.events, report.current.closed, report.current.overdue) == (
        town["events"],
        town["closed"],
        town["overdue"],
    )
    assert report.coverage_mask.sum() == (demo_model.grids.towns == "441302002").sum()
    units = report.tables[2]
    assert units.sheet == "按村社区" and units.columns[1].title == "村（社区）"
    assert len(units.rows) > 3 and all(r[0].startswith("441302002") for r in units.rows)
    assert sum(r[2] for r in units.rows) == town["events"]
    path = tmp_path / "q2.pdf"
    path.write_bytes(render(report, Format.pdf))
    text = pdf_text(path)
    assert "桥西街道网格事件季度分析" in text and "2020年第二季度" in text
    (row,) = [r for r in rows_starting(text, "本期") if r[1] == "2020-04-01"]
    assert row[3] == f"{town['events']:,}"
    # a day without events: no hot-spot test, empty tables, still a bulletin
    _, empty = bulletin(engine, demo_model, PeriodKind.daily, date(2019, 1, 1), None, Format.pdf)
    path.write_bytes(empty)
    text = pdf_text(path)
    assert "本期事件过少" in text and "共受理事件 0 件" in text.replace("\n", "")
