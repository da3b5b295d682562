"""Report files: XLSX workbook, CSV sheets and PNG charts built from a `ReportData`.

* XLSX: openpyxl write-only mode (rows are streamed to a temporary file, so 100,000 rows stay
  memory-light). Sheets "Điển hình", "Đề cử", "Người tốt việc tốt", "Thống kê theo đơn vị" (English
  names with lang="en"). Row 1 is a title (report, period, scope), row 2 the bold header row,
  frozen, with an auto-filter; dates are real dates shown dd/mm/yyyy; printed landscape, fitted to
  the page width, the header repeated on every page. Text that starts with "=" is stored as text,
  never as a formula; characters XML cannot hold are dropped.
* CSV: UTF-8 with a BOM (Excel then reads Vietnamese correctly), header on the first line, data
  rows only (no title, no total row). Cells starting with = + - @ are prefixed with "'" so a
  spreadsheet never runs them as formulas (CSV injection).
* Charts: matplotlib's Agg canvas (no pyplot, no global backend switch), 1080 px wide, large
  DejaVu Sans text (bundled with matplotlib, covers Vietnamese diacritics). An empty dataset gives a
  chart with a "no data" note. matplotlib is not thread-safe, so chart drawing is serialised by a
  lock; the `*_async` wrappers run the work in `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import csv
import io
import textwrap
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.worksheet import Worksheet

from bot.services.reports import (
    GoodDeedRow,
    NominationRow,
    ReportData,
    UnitStat,
    field_label,
    fmt_date,
    kind_label,
    label,
    normalise_lang,
    period_label,
    revoke_note,
    scope_label,
    status_label,
    unit_label,
)

CSV_SHEETS: tuple[str, ...] = ("exemplars", "nominations", "good_deeds", "units")
EXCEL_CELL_LIMIT = 32767
DATE_FORMAT = "dd/mm/yyyy"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class Column:
    header_key: str
    width: float
    kind: Literal["text", "wrap", "date", "int"] = "text"


EXEMPLAR_COLUMNS = (
    Column("h_no", 6, "int"),
    Column("h_nomination_id", 10, "int"),
    Column("h_nominee", 28),
    Column("h_kind", 12),
    Column("h_unit_at_time", 30),
    Column("h_field", 22),
    Column("h_title", 22),
    Column("h_movement", 24),
    Column("h_achievements", 50, "wrap"),
    Column("h_practices", 50, "wrap"),
    Column("h_submitted", 12, "date"),
    Column("h_approved", 12, "date"),
    Column("h_revoked", 26, "wrap"),
)
NOMINATION_COLUMNS = (
    Column("h_no", 6, "int"),
    Column("h_nomination_id", 10, "int"),
    Column("h_nominee", 28),
    Column("h_kind", 12),
    Column("h_unit_at_time", 30),
    Column("h_field", 22),
    Column("h_title", 22),
    Column("h_movement", 24),
    Column("h_nominator", 24),
    Column("h_status", 16),
    Column("h_submitted", 12, "date"),
    Column("h_decided", 12, "date"),
    Column("h_achievements", 50, "wrap"),
    Column("h_note", 26, "wrap"),
)
DEED_COLUMNS = (
    Column("h_no", 6, "int"),
    Column("h_deed_id", 10, "int"),
    Column("h_subject", 28),
    Column("h_kind", 12),
    Column("h_unit_at_time", 30),
    Column("h_occurred", 12, "date"),
    Column("h_place", 22),
    Column("h_deed", 60, "wrap"),
    Column("h_reporter", 24),
    Column("h_reported", 12, "date"),
)
UNIT_COLUMNS = (
    Column("h_no", 6, "int"),
    Column("h_unit", 48, "wrap"),
    Column("h_ex_individual", 14, "int"),
    Column("h_ex_collective", 14, "int"),
    Column("h_ex_total", 14, "int"),
    Column("h_revoked_count", 14, "int"),
    Column("h_deeds", 14, "int"),
    Column("h_nominations", 14, "int"),
)


def headers(columns: Sequence[Column], lang: str) -> list[str]:
    return [label(lang, c.header_key) for c in columns]


# --- the rows of each sheet, as plain values (shared by XLSX and CSV) ----------------------------


def exemplar_values(rows: Iterable[NominationRow], lang: str) -> Iterator[list[Any]]:
    for i, r in enumerate(rows, 1):
        yield [
            i,
            r.id,
            r.nominee_name,
            kind_label(r.nominee_kind, lang),
            r.unit_name or label(lang, "unknown_unit"),
            r.field_name or label(lang, "unclassified"),
            r.title_name,
            r.movement_name,
            r.achievements,
            r.good_practices,
            r.submitted_on,
            r.decided_on,
            revoke_note(r, lang) or None,
        ]


def nomination_values(rows: Iterable[NominationRow], lang: str) -> Iterator[list[Any]]:
    for i, r in enumerate(rows, 1):
        yield [
            i,
            r.id,
            r.nominee_name,
            kind_label(r.nominee_kind, lang),
            r.unit_name or label(lang, "unknown_unit"),
            r.field_name or label(lang, "unclassified"),
            r.title_name,
            r.movement_name,
            r.nominator_name,
            status_label(r.status, lang),
            r.submitted_on,
            r.decided_on,
            r.achievements,
            revoke_note(r, lang) or None,
        ]


def deed_values(rows: Iterable[GoodDeedRow], lang: str) -> Iterator[list[Any]]:
    for i, r in enumerate(rows, 1):
        yield [
            i,
            r.id,
            r.subject_name,
            kind_label(r.subject_kind, lang),
            r.unit_name or label(lang, "unknown_unit"),
            r.day,
            r.place,
            r.description,
            r.reporter_name,
            r.submitted_on,
        ]


def unit_values(stats: Iterable[UnitStat], lang: str) -> Iterator[list[Any]]:
    for i, s in enumerate(stats, 1):
        yield [
            i,
            unit_label(s, lang),
            s.exemplars_individual,
            s.exemplars_collective,
            s.exemplars,
            s.revoked,
            s.good_deeds,
            s.nominations,
        ]


def unit_totals(data: ReportData, lang: str) -> list[Any]:
    stats = data.by_unit
    return [
        None,
        label(lang, "total"),
        sum(s.exemplars_individual for s in stats),
        sum(s.exemplars_collective for s in stats),
        sum(s.exemplars for s in stats),
        sum(s.revoked for s in stats),
        sum(s.good_deeds for s in stats),
        sum(s.nominations for s in stats),
    ]


def _sheet(
    data: ReportData, which: str, lang: str
) -> tuple[str, Sequence[Column], Iterator[list[Any]]]:
    if which == "exemplars":
        return "sheet_exemplars", EXEMPLAR_COLUMNS, exemplar_values(data.exemplars, lang)
    if which == "nominations":
        return "sheet_nominations", NOMINATION_COLUMNS, nomination_values(data.nominations, lang)
    if which == "good_deeds":
        return "sheet_good_deeds", DEED_COLUMNS, deed_values(data.good_deeds, lang)
    if which == "units":
        return "sheet_units", UNIT_COLUMNS, unit_values(data.by_unit, lang)
    raise ValueError(f"unknown report sheet {which!r}; one of {', '.join(CSV_SHEETS)}")


# --- XLSX ----------------------------------------------------------------------------------------

_HEADER_FONT = Font(bold=True)
_TITLE_FONT = Font(bold=True, size=13)
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_HEADER_ALIGN = Alignment(wrap_text=True, vertical="center")
_WRAP = Alignment(wrap_text=True, vertical="top")


def _clean_text(value: str) -> str:
    if ILLEGAL_CHARACTERS_RE.search(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
    if len(value) > EXCEL_CELL_LIMIT:
        value = value[: EXCEL_CELL_LIMIT - 1] + "…"
    return value


class _RowWriter:
    """Appends rows to a write-only sheet, as cheaply as openpyxl allows.

    Plain numbers and short texts go in as bare values (no style). Dates and long texts need a
    style (date format, wrapping): they go through one reusable cell per column, which is safe
    because the write-only sheet serialises a row as soon as it is appended. A text starting with
    "=" is given an explicit text cell so it is never stored as a formula.
    """

    def __init__(self, ws: WriteOnlyWorksheet, columns: Sequence[Column]) -> None:
        self.ws = ws
        self.cells: list[WriteOnlyCell | None] = []
        for col in columns:
            cell: WriteOnlyCell | None = None
            if col.kind == "date":
                cell = WriteOnlyCell(ws)
                cell.number_format = DATE_FORMAT
            elif col.kind == "wrap":
                cell = WriteOnlyCell(ws)
                cell.alignment = _WRAP
            self.cells.append(cell)
        self.rows = 0

    def append(self, values: Sequence[Any]) -> None:
        out: list[Any] = []
        for cell, value in zip(self.cells, values, strict=True):
            if value is None or value == "":
                out.append(None)
                continue
            if isinstance(value, str):
                value = _clean_text(value)
                if value.startswith("="):
                    text_cell = WriteOnlyCell(self.ws, value=value)
                    text_cell.data_type = "s"  # text, not a formula
                    if cell is not None:
                        text_cell.alignment = _WRAP
                    out.append(text_cell)
                    continue
            if cell is None:
                out.append(value)
            else:
                cell.value = value
                out.append(cell)
        self.ws.append(out)
        self.rows += 1


def _styled(ws: WriteOnlyWorksheet, value: Any, font: Font, fill: PatternFill | None) -> Any:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = font
    cell.alignment = _HEADER_ALIGN
    if fill is not None:
        cell.fill = fill
    return cell


def _write_sheet(
    wb: Workbook,
    title: str,
    heading: str,
    columns: Sequence[Column],
    rows: Iterable[Sequence[Any]],
    lang: str,
    totals: Sequence[Any] | None = None,
) -> None:
    ws: WriteOnlyWorksheet = wb.create_sheet(title)
    for idx, col in enumerate(columns, 1):
        ws.column_dimensions[get_column_letter(idx)].width = col.width
    ws.freeze_panes = "A3"
    ws.print_title_rows = "2:2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = Worksheet.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True

    ws.append([_styled(ws, heading, _TITLE_FONT, None)])
    ws.append([_styled(ws, h, _HEADER_FONT, _HEADER_FILL) for h in headers(columns, lang)])
    writer = _RowWriter(ws, columns)
    for values in rows:
        writer.append(values)
    last_col = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A2:{last_col}{max(writer.rows + 2, 2)}"
    if totals is not None:
        ws.append([_styled(ws, v, _HEADER_FONT, None) if v is not None else None for v in totals])


def to_xlsx(data: ReportData, lang: str = "vi") -> bytes:
    """The whole report as an XLSX workbook (four sheets)."""
    lang = normalise_lang(lang)
    heading = " — ".join(
        (label(lang, "title"), period_label(data.period, lang), scope_label(data, lang))
    )
    wb = Workbook(write_only=True)
    wb.properties.creator = "Hoa Đẹp"
    wb.properties.title = heading[:255]
    for which in ("exemplars", "nominations", "good_deeds"):
        key, columns, rows = _sheet(data, which, lang)
        _write_sheet(wb, label(lang, key), heading, columns, rows, lang)
    _write_sheet(
        wb,
        label(lang, "sheet_units"),
        heading,
        UNIT_COLUMNS,
        unit_values(data.by_unit, lang),
        lang,
        totals=unit_totals(data, lang),
    )
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


# --- CSV -----------------------------------------------------------------------------------------


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, date):
        return fmt_date(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def to_csv(data: ReportData, which: str, lang: str = "vi") -> bytes:
    """One sheet ("exemplars", "nominations", "good_deeds" or "units") as CSV, UTF-8 with BOM."""
    lang = normalise_lang(lang)
    _, columns, rows = _sheet(data, which, lang)
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(headers(columns, lang))
    for values in rows:
        writer.writerow([_csv_cell(v) for v in values])
    text.flush()
    out = raw.getvalue()
    text.detach()
    return out


# --- charts --------------------------------------------------------------------------------------

CHART_WIDTH_PX = 1080
CHART_DPI = 100
MAX_UNITS_IN_CHART = 7
_CHART_LOCK = threading.Lock()
_CHART_STYLE: dict[Any, Any] = {
    "font.family": "DejaVu Sans",
    "font.size": 20,
    "axes.titlesize": 26,
    "axes.labelsize": 22,
    "xtick.labelsize": 19,
    "ytick.labelsize": 19,
    "legend.fontsize": 18,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PALETTE = (
    "#2E86AB",
    "#E4572E",
    "#F3A712",
    "#4CB944",
    "#A23B72",
    "#6C4AB6",
    "#17BEBB",
    "#9E9E9E",
)


def _render(draw: Callable[[Any], None], height_px: int) -> bytes:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _CHART_LOCK, matplotlib.rc_context(_CHART_STYLE):
        fig = Figure(
            figsize=(CHART_WIDTH_PX / CHART_DPI, height_px / CHART_DPI),
            dpi=CHART_DPI,
            layout="constrained",
        )
        FigureCanvasAgg(fig)
        draw(fig)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=CHART_DPI, facecolor="white")
    return buf.getvalue()


def _no_data(fig: Any, title: str, data: ReportData, lang: str) -> None:
    ax = fig.add_subplot()
    ax.set_title(f"{title}\n{period_label(data.period, lang)}", fontsize=22)
    ax.set_axis_off()
    note = label(lang, "no_data")
    ax.text(0.5, 0.5, note, ha="center", va="center", fontsize=24, color="#555555")


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width=width, max_lines=2, placeholder="…")) or text


def chart_deeds_per_unit_month(data: ReportData, lang: str = "vi") -> bytes:
    """Approved good deeds per month, stacked by unit (the leading units, the rest grouped)."""
    lang = normalise_lang(lang)
    title = label(lang, "chart_deeds")
    months = data.months
    totals = {uid: sum(per.values()) for uid, per in data.deeds_by_unit_month.items() if per}
    if not totals or not months:
        return _render(lambda fig: _no_data(fig, title, data, lang), 700)

    # charts use the current name only: the legend must stay short
    names = {s.unit_id: s.name or "" for s in data.by_unit}
    ranked = sorted(totals, key=lambda uid: (-totals[uid], names.get(uid, "")))
    shown = ranked[:MAX_UNITS_IN_CHART] if len(ranked) > MAX_UNITS_IN_CHART + 1 else ranked
    rest = [uid for uid in ranked if uid not in shown]
    series: list[tuple[str, list[int]]] = []
    for uid in shown:
        per = data.deeds_by_unit_month[uid]
        name = names.get(uid) or label(lang, "unknown_unit")
        series.append((name, [per.get(m, 0) for m in months]))
    if rest:
        series.append(
            (
                label(lang, "other_units"),
                [sum(data.deeds_by_unit_month[u].get(m, 0) for u in rest) for m in months],
            )
        )
    labels = [f"{m[5:7]}/{m[:4]}" for m in months]
    legend_rows = (len(series) + 1) // 2

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        bottom = [0] * len(months)
        for i, (name, values) in enumerate(series):
            color = _PALETTE[i % len(_PALETTE)] if i < len(shown) else _PALETTE[-1]
            ax.bar(range(len(months)), values, bottom=bottom, label=_wrap(name, 32), color=color)
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        for x, total in enumerate(bottom):
            if total:
                ax.text(x, total, str(total), ha="center", va="bottom", fontsize=16)
        ax.set_title(f"{title}\n{period_label(data.period, lang)}", fontsize=22)
        ax.set_ylabel(label(lang, "count"))
        ax.set_ylim(0, max(bottom) * 1.12 + 0.5)
        step = max(1, len(months) // 12)
        ax.set_xticks(range(0, len(months), step))
        ax.set_xticklabels(labels[::step], rotation=45 if len(months) > 6 else 0, ha="right")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.grid(axis="y", alpha=0.3)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)

    return _render(draw, 900 + 70 * legend_rows)


def chart_exemplars_per_field(data: ReportData, lang: str = "vi") -> bytes:
    """Counted exemplars per field, individuals and collectives stacked."""
    lang = normalise_lang(lang)
    title = label(lang, "chart_fields")
    stats = [f for f in data.by_field if f.total > 0] or []
    if not stats:
        return _render(lambda fig: _no_data(fig, title, data, lang), 700)
    stats = list(reversed(stats))  # largest on top
    labels = [_wrap(field_label(f, lang), 26) for f in stats]
    individual = [f.individual for f in stats]
    collective = [f.collective for f in stats]

    def draw(fig: Any) -> None:
        ax = fig.add_subplot()
        ys = range(len(stats))
        ax.barh(ys, individual, color=_PALETTE[0], label=label(lang, "individual"))
        ax.barh(ys, collective, left=individual, color=_PALETTE[1], label=label(lang, "collective"))
        for y, f in zip(ys, stats, strict=True):
            ax.text(f.total, y, f" {f.total}", va="center", fontsize=18)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(labels)
        ax.set_title(f"{title}\n{period_label(data.period, lang)}", fontsize=22)
        ax.set_xlabel(label(lang, "count"))
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlim(0, max(f.total for f in stats) * 1.15 + 0.5)
        ax.grid(axis="x", alpha=0.3)
        fig.legend(loc="outside lower center", ncols=2, frameon=False)

    return _render(draw, max(800, 260 + 95 * len(stats)))


# --- async wrappers ------------------------------------------------------------------------------


async def to_xlsx_async(data: ReportData, lang: str = "vi") -> bytes:
    return await asyncio.to_thread(to_xlsx, data, lang)


async def to_csv_async(data: ReportData, which: str, lang: str = "vi") -> bytes:
    return await asyncio.to_thread(to_csv, data, which, lang)


async def chart_deeds_per_unit_month_async(data: ReportData, lang: str = "vi") -> bytes:
    return await asyncio.to_thread(chart_deeds_per_unit_month, data, lang)


async def chart_exemplars_per_field_async(data: ReportData, lang: str = "vi") -> bytes:
    return await asyncio.to_thread(chart_exemplars_per_field, data, lang)
