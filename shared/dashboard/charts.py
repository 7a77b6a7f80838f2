"""Charts drawn on the server for the dashboard: inline SVG (and HTML for the daily bars) styled only by CSS classes.

Every function is pure: data in, `Markup` out, no clock and no I/O, so the caller passes the time range. Colours
live in the stylesheet (static/charts.css), never in the markup, so dark mode is the stylesheet's business; the markup
only carries `currentColor` fallbacks, which keep a chart readable in the page's text colour if the stylesheet
is missing. Coordinates are rounded to one decimal because a list page draws 50 sparklines.

Times are shown in UTC (the server does not know the browser's zone); naive datetimes are taken as UTC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any, Literal, NamedTuple

from markupsafe import Markup, escape

SVG_NS = "http://www.w3.org/2000/svg"
NO_RESULTS = "No results in this range"
SERIES_COLOURS = 8  # the stylesheet colours series-0 .. series-7; a ninth location reuses series-0
PHASES = (("dns", "DNS"), ("connect", "connect"), ("tls", "TLS"), ("firstByte", "first byte"))
UPTIME_OK = 99.9  # at or above: "ok"
UPTIME_WARN = 95.0  # at or above (and below UPTIME_OK): "warn"; below: "bad"

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Round steps for a time axis of a day or less, in minutes; each tick is a multiple of one since midnight UTC.
_MINUTE_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 180, 240, 360, 720)


class Point(NamedTuple):
    """One point of a response-time series. A plain `(t, value)` or `(t, value, extra)` tuple works as well.

    `value` None (or NaN) is a gap: the line breaks there. `extra` adds to the tooltip in its order, e.g.
    {"p95": 150, "checks": 12} reads "p95 150 ms · 12 checks": the keys in LATENCY_EXTRAS take the chart's unit,
    "checks" is counted, any other key is shown as "key value"."""

    t: datetime
    value: float | None
    extra: Mapping[str, Any] | None = None


LATENCY_EXTRAS = frozenset({"min", "max", "avg", "median", "p50", "p75", "p90", "p95", "p99"})


def _point(t: datetime, value: Any, extra: Mapping[str, Any] | None = None) -> Point:
    return Point(_utc(t), _reading(value), extra)


# ---------------------------------------------------------------------------------------------- pure helpers


def nice_ticks(maximum: float | None, *, most: int = 5) -> list[float]:
    """Y-axis ticks from 0 up to the first round value at or above `maximum`: 3 to `most` (5) of them, spaced
    by 1, 2, 2.5 or 5 times a power of ten. Nothing positive to show gives 0, 50, 100."""
    if maximum is None or not math.isfinite(maximum) or maximum <= 0:
        return [0.0, 50.0, 100.0]
    exponent = math.floor(math.log10(maximum)) - 1
    while True:
        for mantissa in (1, 2, 2.5, 5):
            step = mantissa * 10.0**exponent
            # The small allowance keeps 0.3 / 0.1 (2.9999999999999996 in floats) at 3 steps, not 4.
            intervals = max(1, math.ceil(maximum / step - 1e-9))
            if intervals <= most - 1:
                return [round(index * step, 10) for index in range(intervals + 1)]
        exponent += 1


def time_ticks(start: datetime, end: datetime) -> list[datetime]:
    """X-axis ticks within start..end: round times for a span of a day or less (the step giving 4 to 6 ticks),
    midnights UTC beyond it (every n-th, n chosen so that 4 to 6 remain once there are 4 or more midnights)."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        return [start]
    if end - start <= timedelta(days=1):
        closest: list[datetime] = []
        for minutes in _MINUTE_STEPS:
            ticks = _multiples_of(timedelta(minutes=minutes), start, end)
            if 4 <= len(ticks) <= 6:
                return ticks
            if not closest or abs(len(ticks) - 5) < abs(len(closest) - 5):
                closest = ticks
        return closest
    midnights = _multiples_of(timedelta(days=1), start, end)
    every = 1 if len(midnights) <= 6 else math.ceil(len(midnights) / 5)
    return midnights[::every]


def time_label(moment: datetime, span: timedelta) -> str:
    """An axis label: "14:30" when the axis spans a day or less, "Dec 03" beyond (month names in English
    whatever the server's locale)."""
    moment = _utc(moment)
    if span <= timedelta(days=1):
        return f"{moment:%H:%M}"
    return f"{_MONTHS[moment.month - 1]} {moment.day:02d}"


def uptime_class(uptime: float | None) -> str:
    """The fill class of a day: ok, warn, bad, or none when the day has no data."""
    if uptime is None:
        return "none"
    if uptime >= UPTIME_OK:
        return "ok"
    if uptime >= UPTIME_WARN:
        return "warn"
    return "bad"


def _reading(value: Any) -> float | None:
    """A measurement as a float, or None (a gap) when there is none. Postgres averages arrive as Decimal, which
    does not mix with float arithmetic; NaN or infinity would poison the scale."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _multiples_of(step: timedelta, start: datetime, end: datetime) -> list[datetime]:
    """Every multiple of `step` since the midnight before `start` that falls within start..end."""
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    moment = midnight + math.ceil((start - midnight) / step) * step
    found = []
    while moment <= end:
        found.append(moment)
        moment += step
    return found


def _num(value: float) -> str:
    """A coordinate to one decimal, without a trailing ".0" or a "-0"."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _amount(value: float) -> str:
    """A measurement for people: whole above 100 ("123"), one decimal below ("4.5", "12")."""
    return f"{value:.0f}" if abs(value) >= 100 else _num(value)


def _tick_label(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _when(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m-%d %H:%M} UTC"


def _iso(moment: datetime) -> str:
    return f"{_utc(moment):%Y-%m-%dT%H:%M:%SZ}"


def _text_width(text: str, font_size: float) -> float:
    """A guess at a label's width, for laying out legends; no font metrics on the server."""
    return len(text) * font_size * 0.62


def _path(points: Sequence[tuple[float, float]]) -> str:
    """One unbroken segment. A lone point becomes a zero-length line, which a round line cap shows as a dot."""
    head = f"M{_num(points[0][0])},{_num(points[0][1])}"
    if len(points) == 1:
        return head + "h0"
    return head + "L" + " ".join(f"{_num(x)},{_num(y)}" for x, y in points[1:])


def _segments(coordinates: Sequence[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Runs of coordinates between gaps (None)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for coordinate in coordinates:
        if coordinate is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(coordinate)
    return [run for run in runs if run]


# ------------------------------------------------------------------------------------------------- sparkline

SPARK_WIDTH, SPARK_HEIGHT, SPARK_PAD = 120, 28, 2


def sparkline(points: Sequence[tuple[datetime, float | None]], *, label: str) -> Markup:
    """A 120×28 inline SVG of a short series, e.g. 24 hourly averages of response time in ms.

    points: (t, value) pairs in any order; a None (or NaN) value breaks the line (one <path> per unbroken run).
    The times set the x positions (the earliest at the left, the latest at the right), the lowest value sits at
    the bottom and the highest at the top. No value at all gives a flat dashed "no data" line.
    label: the accessible name (aria-label and <title>), e.g. "Response time, last 24 h"."""
    ordered = sorted(
        ((_utc(moment), _reading(value)) for moment, value in points), key=lambda point: point[0]
    )
    values = [value for _, value in ordered if value is not None]
    classes = "sparkline" if values else "sparkline no-data"
    name = label if values else f"{label}: no data"
    # fill/stroke/linecap here are fallbacks for a page without the stylesheet; its classes override them.
    head = (
        f'<svg xmlns="{SVG_NS}" class="{classes}" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" '
        f'width="{SPARK_WIDTH}" height="{SPARK_HEIGHT}" role="img" aria-label="{escape(name)}" '
        f'fill="none" stroke="currentColor" stroke-linecap="round"><title>{escape(name)}</title>'
    )
    if not values:
        middle = _num(SPARK_HEIGHT / 2)
        return Markup(
            f'{head}<path class="placeholder" d="M{SPARK_PAD},{middle}H{SPARK_WIDTH - SPARK_PAD}"/></svg>'
        )

    first, last = _utc(ordered[0][0]), _utc(ordered[-1][0])
    low, high = min(values), max(values)
    inner_width, inner_height = SPARK_WIDTH - 2 * SPARK_PAD, SPARK_HEIGHT - 2 * SPARK_PAD

    def place(moment: datetime, value: float) -> tuple[float, float]:
        across = (_utc(moment) - first) / (last - first) if last > first else 0.5
        up = (value - low) / (high - low) if high > low else 0.5
        return SPARK_PAD + across * inner_width, SPARK_HEIGHT - SPARK_PAD - up * inner_height

    coordinates = [None if value is None else place(moment, value) for moment, value in ordered]
    paths = "".join(f'<path class="line" d="{_path(run)}"/>' for run in _segments(coordinates))
    return Markup(f"{head}{paths}</svg>")


# ----------------------------------------------------------------------------------------- the large charts

CHART_WIDTH, CHART_HEIGHT = 720, 240
FONT_SIZE = 12
# The stylesheet raises the text to 18 viewBox units on narrow screens, where the chart is drawn at half size and
# 12 would read as 6 px; the layout leaves room for that larger text, so nothing overlaps at either size.
LAYOUT_FONT_SIZE = 18
LEGEND_BASELINE, LEGEND_ROW = 18, 24
PLOT_RIGHT = CHART_WIDTH - 34  # room for half of the last time label
DENSE_SPACING = 6  # viewBox units between a series' points below which its circles are drawn only on hover


@dataclass(frozen=True)
class _Frame:
    """The plot area inside a CHART_WIDTH × CHART_HEIGHT viewBox, and the value at its top edge."""

    left: float
    top: float
    right: float
    bottom: float
    top_value: float

    def y_of(self, value: float) -> float:
        share = min(max(value / self.top_value, 0.0), 1.0)  # a negative reading sits on the axis
        return self.bottom - share * (self.bottom - self.top)

    def x_of(self, moment: datetime, start: datetime, end: datetime) -> float:
        share = (_utc(moment) - start) / (end - start) if end > start else 0.5
        return self.left + share * (self.right - self.left)


def _plot_left(ticks: Sequence[float]) -> float:
    """The plot's left edge: just clear of the widest y tick label."""
    widest = max((_text_width(_tick_label(tick), LAYOUT_FONT_SIZE) for tick in ticks), default=0)
    return round(max(widest + 10, 36), 1)


def _frame(left: float, legend_rows: int, top_value: float) -> _Frame:
    return _Frame(
        left=left,
        top=LEGEND_BASELINE + LEGEND_ROW * (max(legend_rows, 1) - 1) + LAYOUT_FONT_SIZE,
        right=PLOT_RIGHT,
        bottom=CHART_HEIGHT - 30,
        top_value=top_value,
    )


def _legend_layout(names: Sequence[str], *, left: float, right: float) -> list[tuple[float, int]]:
    """Where each legend item starts: (x, row), wrapping onto a new row when the next one would not fit."""
    placed, x, row = [], left, 0
    for name in names:
        width = 22 + _text_width(name, LAYOUT_FONT_SIZE)
        if x > left and x + width > right:
            x, row = left, row + 1
        placed.append((x, row))
        x += width + 14
    return placed


def _legend(items: Sequence[tuple[str, str, str]], *, left: float, right: float) -> tuple[str, int]:
    """Legend markup for (name, swatch class, extra attributes) items, and how many rows it took."""
    layout = _legend_layout([name for name, _, _ in items], left=left, right=right)
    parts = ['<g class="legend">']
    for (name, swatch_class, attributes), (x, row) in zip(items, layout, strict=True):
        y = LEGEND_BASELINE + row * LEGEND_ROW
        parts.append(
            f'<g class="legend-item"{attributes}><rect class="swatch {swatch_class}" x="{_num(x)}" '
            f'y="{y - 10}" width="16" height="10" rx="2"/><text x="{_num(x + 22)}" y="{y}">{escape(name)}</text></g>'
        )
    parts.append("</g>")
    rows = 1 + max((row for _, row in layout), default=0)
    return "".join(parts), rows


def _y_axis(frame: _Frame, ticks: Sequence[float], unit: str) -> str:
    parts = ['<g class="y-axis">']
    for tick in ticks:
        y = _num(frame.y_of(tick))
        parts.append(
            f'<line class="grid" x1="{_num(frame.left)}" x2="{_num(frame.right)}" y1="{y}" y2="{y}"/>'
            f'<text class="tick" x="{_num(frame.left - 6)}" y="{y}" dy="4" text-anchor="end">{_tick_label(tick)}</text>'
        )
    # The unit sits on the legend's first row, left of the plot's edge where the legend starts, clear of the top tick.
    if unit:
        parts.append(
            f'<text class="unit" x="{_num(frame.left - 6)}" y="{LEGEND_BASELINE}" text-anchor="end">{escape(unit)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _x_labels(frame: _Frame, labelled: Sequence[tuple[float, str]]) -> str:
    baseline = _num(frame.bottom)
    parts = [
        f'<g class="x-axis"><line class="axis" x1="{_num(frame.left)}" x2="{_num(frame.right)}" '
        f'y1="{baseline}" y2="{baseline}"/>'
    ]
    for x, text in labelled:
        parts.append(
            f'<text class="tick" x="{_num(x)}" y="{_num(frame.bottom + 20)}" text-anchor="middle">{escape(text)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _chart_open(kind: str, label: str) -> str:
    # width 100% with a fixed viewBox: the chart scales with its container and the default
    # preserveAspectRatio (xMidYMid meet) keeps text undistorted.
    return (
        f'<svg xmlns="{SVG_NS}" class="chart {kind}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" width="100%" '
        f'role="img" aria-label="{escape(label)}" fill="currentColor" font-size="{FONT_SIZE}">'
        f"<title>{escape(label)}</title>"
    )


def _empty_message(frame: _Frame) -> str:
    x, y = _num((frame.left + frame.right) / 2), _num((frame.top + frame.bottom) / 2)
    return f'<text class="empty" x="{x}" y="{y}" text-anchor="middle">{NO_RESULTS}</text>'


def _point_tooltip(
    location: str, moment: datetime, value: float, extra: Mapping[str, Any] | None, unit: str
) -> str:
    """A point's tooltip, e.g. "eu-central · 2026-12-03 10:15 UTC · 123 ms · p95 150 ms · 12 checks"."""
    parts = [location, _when(moment), f"{_amount(value)} {unit}".strip()]
    for key, detail in (extra or {}).items():
        if detail is None:
            continue
        if key == "checks":
            parts.append(f"{detail:,} check" + ("" if detail == 1 else "s"))
        elif key in LATENCY_EXTRAS and _reading(detail) is not None:
            parts.append(f"{key} {_amount(_reading(detail))} {unit}".strip())
        else:
            parts.append(f"{key} {detail}")
    return " · ".join(parts)


def response_time_chart(
    series: Mapping[str, Sequence[tuple]],
    *,
    start: datetime,
    end: datetime,
    label: str,
    unit: str = "ms",
) -> Markup:
    """Response time per location over start..end, as a responsive SVG (viewBox 720×240, width 100%).

    series: location → points, each a `Point` or a `(t, value)` / `(t, value, extra)` tuple; `value` None breaks
    the line, `extra` (e.g. {"p95": 150, "checks": 12}) adds to the point's tooltip. Points outside start..end
    are left out. The y axis runs from 0 to a round value at or above the highest reading.
    Each location is a <g class="series series-N" data-location=...> (N its position in `series`, modulo 8)
    holding one <path class="line"> per unbroken run and one <circle class="point"> per reading, whose
    data-t, data-value and <title> describe it (class "point dense" when they lie too close to tell apart, which
    the stylesheet shows only on hover). The output grows by about 200 bytes a reading: pass rollup buckets
    rather than thousands of raw results. No reading at all gives the message "No results in this range"."""
    start, end = _utc(start), _utc(end)
    locations = list(series)
    in_range = {
        location: sorted(
            (_point(*point) for point in series[location] if start <= _utc(point[0]) <= end),
            key=lambda p: _utc(p.t),
        )
        for location in locations
    }
    readings = [point.value for points in in_range.values() for point in points if point.value is not None]

    legend_items = [
        (location, f"series-{index % SERIES_COLOURS}", f' data-location="{escape(location)}"')
        for index, location in enumerate(locations)
    ]
    ticks = nice_ticks(max(readings, default=None))
    left = _plot_left(ticks)
    legend, rows = _legend(legend_items, left=left, right=PLOT_RIGHT) if readings else ("", 1)
    frame = _frame(left, rows, ticks[-1])
    span = end - start
    x_axis = _x_labels(
        frame, [(frame.x_of(tick, start, end), time_label(tick, span)) for tick in time_ticks(start, end)]
    )
    if not readings:
        return Markup(f"{_chart_open('response-time', label)}{x_axis}{_empty_message(frame)}</svg>")

    parts = [_chart_open("response-time", label), _y_axis(frame, ticks, unit), x_axis, legend]
    for index, location in enumerate(locations):
        points = in_range[location]
        place = [
            None if p.value is None else (frame.x_of(p.t, start, end), frame.y_of(p.value)) for p in points
        ]
        attribute = escape(location)
        parts.append(
            f'<g class="series series-{index % SERIES_COLOURS}" data-location="{attribute}" '
            f'fill="none" stroke="currentColor">'
        )
        parts.extend(f'<path class="line" d="{_path(run)}"/>' for run in _segments(place))
        # Circles closer than a few units apart would blur into a thick band; the stylesheet shows "dense" ones
        # only under the pointer, and they still carry their tooltip.
        readings_here = sum(spot is not None for spot in place)
        point_class = "point dense" if readings_here > (frame.right - frame.left) / DENSE_SPACING else "point"
        for point, spot in zip(points, place, strict=True):
            if spot is None:
                continue
            tooltip = _point_tooltip(location, point.t, point.value, point.extra, unit)
            parts.append(
                f'<circle class="{point_class}" data-location="{attribute}" data-t="{_iso(point.t)}" '
                f'data-value="{_num(point.value)}" cx="{_num(spot[0])}" cy="{_num(spot[1])}" r="2.5">'
                f"<title>{escape(tooltip)}</title></circle>"
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _phase(phases: Mapping[str, Any], key: str) -> float | None:
    return _reading(phases.get(key))


def _phase_total(phases: Mapping[str, Any]) -> float:
    """The bar's height: the phases it has, a negative one (clock skew) counting as 0."""
    return sum(max(_phase(phases, key) or 0, 0) for key, _ in PHASES)


def _phase_tooltip(moment: datetime, phases: Mapping[str, float | None]) -> str:
    """A bar's tooltip, e.g. "2026-12-03 10:00 UTC · DNS 3 ms · connect 12 ms · TLS — · first byte 80 ms · total
    95 ms"; a phase the check did not have reads "—"."""
    parts = [_when(moment)]
    for key, name in PHASES:
        value = _phase(phases, key)
        parts.append(f"{name} —" if value is None else f"{name} {_amount(value)} ms")
    parts.append(f"total {_amount(_phase_total(phases))} ms")
    return " · ".join(parts)


def phases_chart(buckets: Sequence[tuple[datetime, Mapping[str, float | None]]], *, label: str) -> Markup:
    """Timing phases stacked per time bucket, as a responsive SVG (viewBox 720×240, width 100%).

    buckets: (t, {"dns": ms, "connect": ms, "tls": ms, "firstByte": ms}) in any order; a missing or None phase
    (no TLS on plain HTTP) counts as 0 in the stack and as "—" in the tooltip. Bars are evenly spaced in time
    order, DNS at the bottom. Each bucket is a <g class="bar" data-t=...> with a <title> naming every phase and
    one <rect class="phase-KEY"> per phase it has. No bucket with a phase gives "No results in this range"."""
    ordered = sorted(buckets, key=lambda bucket: _utc(bucket[0]))

    highest = max((_phase_total(phases) for _, phases in ordered), default=0)
    ticks = nice_ticks(highest)
    left = _plot_left(ticks)
    legend_items = [(name, f"phase-{key}", "") for key, name in PHASES]
    legend, rows = _legend(legend_items, left=left, right=PLOT_RIGHT) if highest > 0 else ("", 1)
    frame = _frame(left, rows, ticks[-1])

    band = (frame.right - frame.left) / max(len(ordered), 1)
    bar_width = max(band * 0.7, 1.0)
    centres = [frame.left + band * (index + 0.5) for index in range(len(ordered))]
    span = _utc(ordered[-1][0]) - _utc(ordered[0][0]) if ordered else timedelta(0)
    labelled = [
        (centres[index], time_label(ordered[index][0], span)) for index in _label_indices(len(ordered))
    ]
    if highest <= 0:
        return Markup(
            f"{_chart_open('phases', label)}{_x_labels(frame, labelled)}{_empty_message(frame)}</svg>"
        )

    parts = [_chart_open("phases", label), _y_axis(frame, ticks, "ms"), _x_labels(frame, labelled), legend]
    for centre, (moment, phases) in zip(centres, ordered, strict=True):
        parts.append(
            f'<g class="bar" data-t="{_iso(moment)}"><title>{escape(_phase_tooltip(moment, phases))}</title>'
        )
        stacked = 0.0
        for key, _ in PHASES:
            value = max(_phase(phases, key) or 0, 0)
            if value <= 0:
                continue
            # Both edges are rounded from the running sums, so stacked rects meet without hairline gaps.
            lower, upper = round(frame.y_of(stacked), 1), round(frame.y_of(stacked + value), 1)
            stacked += value
            parts.append(
                f'<rect class="phase-{key}" x="{_num(centre - bar_width / 2)}" y="{_num(upper)}" '
                f'width="{_num(bar_width)}" height="{_num(lower - upper)}"/>'
            )
        parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _label_indices(count: int) -> list[int]:
    """Which of `count` bars get a time label: all up to 6, else 5 spread evenly from the first to the last."""
    if count <= 6:
        return list(range(count))
    return sorted({round(step * (count - 1) / 4) for step in range(5)})


# ----------------------------------------------------------------------------------------------- daily bars


def _field(day: Any, *names: str) -> Any:
    """A day's field from a dict or an object, under the first of its spellings that is present."""
    for name in names:
        if isinstance(day, Mapping):
            if name in day:
                return day[name]
        elif hasattr(day, name):
            return getattr(day, name)
    return None


def _percent(uptime: float) -> str:
    """Uptime to two decimals, rounded down, so a day with any downtime never reads "100%"."""
    text = str(Decimal(str(uptime)).quantize(Decimal("0.01"), rounding=ROUND_FLOOR))
    return text.rstrip("0").rstrip(".") if "." in text else text


def _day_facts(day: Any) -> tuple[date, float | None, list[str]]:
    """The day, its uptime, and the sentences that describe it: "2026-12-01: 99.95% up", "1,440 checks", ..."""
    when = _field(day, "day")
    if isinstance(when, str):  # "2026-12-01" as JSON carries it
        when = date.fromisoformat(when)
    uptime = _reading(_field(day, "uptime"))
    facts = [f"{when.isoformat()}: {'no data' if uptime is None else _percent(uptime) + '% up'}"]
    checks = _field(day, "checks")
    if checks is not None:
        facts.append(f"{checks:,} check" + ("" if checks == 1 else "s"))
    down_minutes = _field(day, "downMinutes", "down_minutes")
    if down_minutes:
        facts.append(f"{_amount(down_minutes)} min down")
    notes = _field(day, "notes")
    if isinstance(notes, str):
        notes = [notes]
    facts.extend(note for note in notes or () if note)
    return when, uptime, facts


def is_notable(day: Any) -> bool:
    """A day with something to tell beyond its uptime line: less than fully up, minutes down, or notes."""
    uptime = _reading(_field(day, "uptime"))
    down_minutes = _field(day, "downMinutes", "down_minutes")
    return (uptime is not None and uptime < 100) or bool(down_minutes) or bool(_field(day, "notes"))


def daily_bars(days: Sequence[Any], *, label: str, focus: Literal["every", "notable"] = "every") -> Markup:
    """One bar per day (e.g. 90), as HTML so that each day can take keyboard focus and show its tooltip.

    days: dicts or objects with `day` (a date, or its ISO string) and `uptime` (percent, None for a day without
    data), and optionally `checks` (int), `downMinutes` or `down_minutes` (minutes down) and `notes` (a string or
    a list of strings, e.g. incidents). Drawn in the order given, one element per entry, however many.
    Each day is <span class="day ok|warn|bad|none" role="listitem" tabindex="0" data-day="YYYY-MM-DD"
    data-uptime=...> (no data-uptime without data) whose aria-label holds everything its <span class="tip"> shows;
    the tip is aria-hidden so a screen reader does not read it twice.

    focus: "every" day takes keyboard focus, or only the "notable" ones (below 100 % up, minutes down, notes): a
    public page of 50 monitors would otherwise hold 4,500 tab stops, most of them perfect days whose tooltip
    says only what the monitor's uptime figures already do. Hover shows every day's tooltip either way."""
    parts = [f'<div class="daily-bars" role="list" aria-label="{escape(label)}">']
    for day in days:
        when, uptime, facts = _day_facts(day)
        uptime_attribute = "" if uptime is None else f' data-uptime="{_percent(uptime)}"'
        tip = Markup("<br>").join(escape(fact) for fact in facts)
        tab_stop = ' tabindex="0"' if focus == "every" or is_notable(day) else ""
        parts.append(
            f'<span class="day {uptime_class(uptime)}" role="listitem"{tab_stop} data-day="{when.isoformat()}"'
            f'{uptime_attribute} aria-label="{escape(", ".join(facts))}"><span class="tip" aria-hidden="true">{tip}'
            f"</span></span>"
        )
    parts.append("</div>")
    return Markup("".join(parts))


# --------------------------------------------------------------------------------------------- stylesheet

# The classes above are styled by this file, which pages link as an asset (dark mode lives there).
STYLESHEET = Path(__file__).resolve().parent / "static" / "charts.css"
