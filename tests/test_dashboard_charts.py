"""The dashboard's server-drawn charts, read back as a browser would: SVG parsed as XML, the daily bars as HTML."""

from __future__ import annotations

import ast
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path

import pytest
from markupsafe import Markup

from shared.dashboard import charts
from shared.dashboard.charts import (
    NO_RESULTS,
    STYLESHEET,
    Point,
    daily_bars,
    nice_ticks,
    phases_chart,
    response_time_chart,
    sparkline,
    time_label,
    time_ticks,
    uptime_class,
)

NOW = datetime(2026, 12, 3, 10, 15, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"

CSS = STYLESHEET.read_text()


def parse_svg(markup: str) -> ElementTree.Element:
    root = ElementTree.fromstring(str(markup))
    for element in root.iter():
        element.tag = element.tag.removeprefix(SVG)
    return root


def classes(element: ElementTree.Element) -> list[str]:
    return element.get("class", "").split()


def with_class(root: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [element for element in root.iter() if name in classes(element)]


def path_points(d: str) -> list[tuple[float, float]]:
    """The vertices of one path as this module writes them: M x,y L x,y x,y ... (or M x,y h0 for a dot)."""
    return [(float(x), float(y)) for x, y in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)]


@dataclass
class Plot:
    """The plot area as the chart drew it: its x axis line and its gridlines by tick label."""

    left: float
    right: float
    bottom: float
    grid_y: dict[str, float]

    @classmethod
    def read(cls, root: ElementTree.Element) -> Plot:
        axis = with_class(root, "axis")[0]
        y_axis = with_class(root, "y-axis")[0]
        grid_y = {
            text.text: float(line.get("y1"))
            for line, text in zip(y_axis.iter("line"), y_axis.iter("text"), strict=False)
        }
        return cls(float(axis.get("x1")), float(axis.get("x2")), float(axis.get("y1")), grid_y)


def tick_texts(root: ElementTree.Element, axis: str) -> list[str]:
    return [text.text for text in with_class(root, axis)[0].iter("text") if "tick" in classes(text)]


# ------------------------------------------------------------------------------------------------ nice ticks


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (None, [0, 50, 100]),
        (0, [0, 50, 100]),
        (-5, [0, 50, 100]),
        (float("nan"), [0, 50, 100]),
        (0.3, [0, 0.1, 0.2, 0.3]),
        (1, [0, 0.25, 0.5, 0.75, 1]),
        (4, [0, 1, 2, 3, 4]),
        (7, [0, 2, 4, 6, 8]),
        (100, [0, 25, 50, 75, 100]),
        (101, [0, 50, 100, 150]),
        (123, [0, 50, 100, 150]),
        (308, [0, 100, 200, 300, 400]),
        (980, [0, 250, 500, 750, 1000]),
        (60000, [0, 20000, 40000, 60000]),
    ],
)
def test_nice_ticks_start_at_zero_and_end_on_a_round_value_at_or_above_the_maximum(maximum, ticks):
    assert nice_ticks(maximum) == ticks


@pytest.mark.parametrize("maximum", [0.01, 0.7, 3, 9.99, 12, 49, 51, 99, 250.5, 999, 1001, 4321, 77777])
def test_nice_ticks_are_three_to_five_evenly_spaced_and_cover_the_maximum(maximum):
    ticks = nice_ticks(maximum)
    steps = {round(upper - lower, 9) for lower, upper in zip(ticks, ticks[1:], strict=False)}
    assert 3 <= len(ticks) <= 5
    assert ticks[0] == 0 and ticks[-1] >= maximum
    assert len(steps) == 1


# ------------------------------------------------------------------------------------------------- time axis


@pytest.mark.parametrize(
    ("span", "labels"),
    [
        (timedelta(hours=1), ["09:20", "09:30", "09:40", "09:50", "10:00", "10:10"]),
        (timedelta(days=1), ["12:00", "16:00", "20:00", "00:00", "04:00", "08:00"]),
        (timedelta(days=7), ["Nov 27", "Nov 29", "Dec 01", "Dec 03"]),
        (timedelta(days=30), ["Nov 04", "Nov 10", "Nov 16", "Nov 22", "Nov 28"]),
        (timedelta(days=90), ["Sep 05", "Sep 23", "Oct 11", "Oct 29", "Nov 16"]),
    ],
)
def test_the_time_axis_has_four_to_six_labels_formatted_for_its_span(span, labels):
    start = NOW - span
    ticks = time_ticks(start, NOW)
    assert [time_label(tick, span) for tick in ticks] == labels
    assert all(start <= tick <= NOW for tick in ticks)


@pytest.mark.parametrize(
    ("moment", "span", "label"),
    [
        (datetime(2026, 12, 3, 10, 15, tzinfo=UTC), timedelta(hours=1), "10:15"),
        (datetime(2026, 12, 3, 10, 15, tzinfo=UTC), timedelta(days=1), "10:15"),
        (datetime(2026, 12, 3, 10, 15, tzinfo=UTC), timedelta(days=1, seconds=1), "Dec 03"),
        (datetime(2026, 1, 9, 23, 0, tzinfo=UTC), timedelta(days=90), "Jan 09"),
        (datetime(2026, 12, 3, 11, 15, tzinfo=timezone(timedelta(hours=1))), timedelta(hours=6), "10:15"),
        (datetime(2026, 12, 3, 10, 15), timedelta(hours=6), "10:15"),  # naive: taken as UTC
    ],
)
def test_time_labels_are_utc_clock_times_up_to_a_day_and_dates_beyond(moment, span, label):
    assert time_label(moment, span) == label


# ------------------------------------------------------------------------------------------------- sparkline


def hours(*values):
    return [(NOW - timedelta(hours=len(values) - 1 - index), value) for index, value in enumerate(values)]


def test_a_sparkline_scales_times_left_to_right_and_values_bottom_to_top():
    root = parse_svg(sparkline(hours(100, 200, None, 150), label="Response time, 24 h"))
    paths = root.findall("path")
    assert [path_points(path.get("d")) for path in paths] == [
        [(2, 26), (40.7, 2)],  # the earliest at x 2, the lowest at y 26 (28 - padding), the highest at y 2
        [(118, 14)],  # the latest at x 118; alone after the gap, drawn as a dot
    ]
    assert paths[1].get("d") == "M118,14h0"
    assert (root.get("viewBox"), root.get("width"), root.get("height")) == ("0 0 120 28", "120", "28")
    assert (root.get("role"), root.get("aria-label"), root.find("title").text) == (
        "img",
        "Response time, 24 h",
        "Response time, 24 h",
    )


@pytest.mark.parametrize(
    ("values", "segments"),
    [
        ((1, 2, 3, 4), 1),
        ((1, None, 3, 4), 2),
        ((None, 1, 2, None), 1),
        ((1, None, None, 4, None, 6), 3),
    ],
)
def test_a_gap_in_a_sparkline_breaks_its_line_into_separate_paths(values, segments):
    assert len(parse_svg(sparkline(hours(*values), label="x")).findall("path")) == segments


def test_a_sparkline_orders_its_points_by_time_whatever_order_they_come_in():
    points = hours(5, 9, 7, None, 3)
    assert sparkline(list(reversed(points)), label="x") == sparkline(points, label="x")


@pytest.mark.parametrize("points", [[], hours(None, None, None)])
def test_a_sparkline_without_data_is_a_flat_placeholder(points):
    root = parse_svg(sparkline(points, label="Response time"))
    assert classes(root) == ["sparkline", "no-data"]
    assert [classes(path) for path in root.findall("path")] == [["placeholder"]]
    assert path_points(root.find("path").get("d")) == [(2, 14)]  # from (2, 14) across: "M2,14H118"
    assert root.get("aria-label") == "Response time: no data"


def test_a_flat_series_sits_in_the_middle():
    (path,) = parse_svg(sparkline(hours(80, 80, 80), label="x")).findall("path")
    assert {y for _, y in path_points(path.get("d"))} == {14}


def test_24_hourly_points_make_a_small_sparkline_rounded_to_one_decimal():
    markup = sparkline(hours(*[100 + index * 7.123456 for index in range(24)]), label="Response time")
    assert isinstance(markup, Markup)
    assert len(markup) < 600
    assert not re.search(r"\d\.\d\d", markup)


def test_decimal_readings_from_sql_draw_like_floats_and_nan_is_a_gap():
    assert sparkline(hours(Decimal("100.0"), Decimal("200"), None, 150), label="x") == sparkline(
        hours(100.0, 200.0, float("nan"), 150.0), label="x"
    )


def test_a_sparkline_label_is_escaped():
    markup = sparkline(hours(1, 2), label='<b onclick="x">hi</b>')
    assert "<b" not in markup
    assert parse_svg(markup).get("aria-label") == '<b onclick="x">hi</b>'


# --------------------------------------------------------------------------------------- response-time chart


def test_each_location_is_a_line_with_a_circle_per_reading_and_breaks_at_gaps():
    start = NOW - timedelta(hours=1)
    minutes = [start + timedelta(minutes=15 * step) for step in range(5)]
    series = {
        "eu-central": [
            (minutes[0], 10),
            (minutes[1], 20),
            (minutes[2], None),
            (minutes[3], 40),
            (minutes[4], 50),
        ],
        "us-east": [(moment, 30) for moment in minutes],
    }
    root = parse_svg(response_time_chart(series, start=start, end=NOW, label="Response time"))

    groups = with_class(root, "series")
    assert [(group.get("data-location"), classes(group)) for group in groups] == [
        ("eu-central", ["series", "series-0"]),
        ("us-east", ["series", "series-1"]),
    ]
    assert [len(group.findall("path")) for group in groups] == [2, 1]
    assert [len(group.findall("circle")) for group in groups] == [4, 5]
    first = groups[0].find("circle")
    assert (first.get("data-location"), first.get("data-t"), first.get("data-value")) == (
        "eu-central",
        "2026-12-03T09:15:00Z",
        "10",
    )
    assert [group.get("data-location") for group in with_class(root, "legend-item")] == [
        "eu-central",
        "us-east",
    ]


def test_points_are_placed_by_time_within_the_range_and_by_value_from_zero_to_the_top_tick():
    start = NOW - timedelta(hours=2)
    series = {
        "eu-central": [
            (start - timedelta(minutes=1), 999),  # before the range: left out
            (start, 0),
            (start + timedelta(hours=1), 50),
            (NOW, 100),
            (NOW + timedelta(minutes=1), 999),  # after it: left out
        ]
    }
    root = parse_svg(response_time_chart(series, start=start, end=NOW, label="x"))
    plot = Plot.read(root)
    spots = [(float(circle.get("cx")), float(circle.get("cy"))) for circle in root.iter("circle")]

    assert list(plot.grid_y) == ["0", "25", "50", "75", "100"]
    assert spots == [
        (plot.left, plot.bottom),
        (pytest.approx((plot.left + plot.right) / 2, abs=0.1), plot.grid_y["50"]),
        (plot.right, plot.grid_y["100"]),
    ]
    assert plot.grid_y["0"] == plot.bottom and plot.grid_y["100"] < plot.grid_y["50"] < plot.bottom


def test_a_point_tooltip_names_the_location_time_value_and_extras():
    series = {"eu-central": [Point(NOW, 123.4, {"p95": 150, "checks": 12, "p99": None})]}
    circle = next(
        parse_svg(response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label="x")).iter(
            "circle"
        )
    )
    assert circle.find("title").text == "eu-central · 2026-12-03 10:15 UTC · 123 ms · p95 150 ms · 12 checks"
    assert circle.get("data-value") == "123.4"


@pytest.mark.parametrize(
    ("extra", "tooltip"),
    [
        (None, "eu · 2026-12-03 10:15 UTC · 40 ms"),
        (
            {"p95": Decimal("61.26"), "max": 300},
            "eu · 2026-12-03 10:15 UTC · 40 ms · p95 61.3 ms · max 300 ms",
        ),
        ({"checks": 1, "failures": 2}, "eu · 2026-12-03 10:15 UTC · 40 ms · 1 check · failures 2"),
        (
            {"checks": 12000, "note": "<b>x</b>"},
            "eu · 2026-12-03 10:15 UTC · 40 ms · 12,000 checks · note <b>x</b>",
        ),
    ],
)
def test_extras_in_a_tooltip_take_the_unit_only_when_they_are_latencies(extra, tooltip):
    series = {"eu": [(NOW, 40, extra)]}
    markup = response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label="x")
    assert next(parse_svg(markup).iter("circle")).find("title").text == tooltip
    assert "<b>" not in markup


@pytest.mark.parametrize(("count", "dense"), [(60, False), (288, True)])
def test_points_too_close_to_tell_apart_are_marked_dense(count, dense):
    start = NOW - timedelta(days=1)
    series = {"eu": [(start + index * (NOW - start) / count, 100) for index in range(count)]}
    circles = list(parse_svg(response_time_chart(series, start=start, end=NOW, label="x")).iter("circle"))
    assert len(circles) == count
    assert {("dense" in classes(circle)) for circle in circles} == {dense}


def test_a_hostile_location_name_and_label_come_out_escaped():
    series = {"<script>alert(1)</script>": [(NOW, 5)]}
    markup = response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label='"><script>')
    assert "<script>" not in markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markup
    root = parse_svg(markup)
    assert root.get("aria-label") == '"><script>'
    assert with_class(root, "series")[0].get("data-location") == "<script>alert(1)</script>"
    assert next(root.iter("circle")).find("title").text.startswith("<script>alert(1)</script> · ")


@pytest.mark.parametrize(
    ("span", "x_labels"),
    [
        (timedelta(days=1), ["12:00", "16:00", "20:00", "00:00", "04:00", "08:00"]),
        (timedelta(days=7), ["Nov 27", "Nov 29", "Dec 01", "Dec 03"]),
    ],
)
def test_the_axes_carry_round_values_and_times_for_the_span(span, x_labels):
    series = {"eu-central": [(NOW - span, 80), (NOW, 123)]}
    root = parse_svg(response_time_chart(series, start=NOW - span, end=NOW, label="x"))
    assert tick_texts(root, "x-axis") == x_labels
    assert tick_texts(root, "y-axis") == ["0", "50", "100", "150"]
    assert with_class(root, "unit")[0].text == "ms"


def test_the_chart_scales_with_its_container_without_distorting_text():
    root = parse_svg(
        response_time_chart({"eu": [(NOW, 1)]}, start=NOW - timedelta(hours=1), end=NOW, label="x")
    )
    assert (root.get("viewBox"), root.get("width"), root.get("preserveAspectRatio")) == (
        "0 0 720 240",
        "100%",
        None,
    )
    assert (root.get("role"), root.find("title").text) == ("img", "x")


@pytest.mark.parametrize(
    "series",
    [
        {},
        {"eu-central": []},
        {"eu-central": [(NOW, None), (NOW - timedelta(minutes=5), None)]},
        {"eu-central": [(NOW - timedelta(days=2), 100)]},  # only outside the range
    ],
)
def test_a_range_without_readings_says_so_inside_the_chart(series):
    root = parse_svg(response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label="x"))
    assert [text.text for text in with_class(root, "empty")] == [NO_RESULTS]
    assert list(root.iter("circle")) == [] and with_class(root, "legend") == []
    assert len(tick_texts(root, "x-axis")) == 6  # the range is still shown


def test_a_ninth_location_takes_the_first_colour_again():
    series = {f"loc-{index}": [(NOW, index + 1)] for index in range(9)}
    root = parse_svg(response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label="x"))
    assert [classes(group)[1] for group in with_class(root, "series")] == [
        f"series-{i}" for i in range(8)
    ] + ["series-0"]


def test_a_long_legend_wraps_and_the_plot_moves_down_to_make_room():
    short = {"eu": [(NOW, 10)]}
    long = {f"a-rather-long-location-name-{index}": [(NOW, 10)] for index in range(6)}
    tops = []
    for series in (short, long):
        root = parse_svg(response_time_chart(series, start=NOW - timedelta(hours=1), end=NOW, label="x"))
        legend_rows = {text.get("y") for text in with_class(root, "legend")[0].iter("text")}
        tops.append((len(legend_rows), Plot.read(root).grid_y["10"]))
    assert tops[0][0] == 1 and tops[1][0] > 1
    assert tops[1][1] > tops[0][1]


# ----------------------------------------------------------------------------------------------- phases chart


def test_phases_stack_from_dns_at_the_bottom_each_in_proportion():
    buckets = [
        (NOW - timedelta(hours=1), {"dns": 10, "connect": 20, "tls": 30, "firstByte": 40}),
        (NOW, {"dns": 5, "connect": 5, "tls": None, "firstByte": 40}),
    ]
    root = parse_svg(phases_chart(buckets, label="Timing phases"))
    plot = Plot.read(root)
    height = plot.bottom - plot.grid_y["100"]
    bars = with_class(root, "bar")

    assert [bar.get("data-t") for bar in bars] == ["2026-12-03T09:15:00Z", "2026-12-03T10:15:00Z"]
    assert [[classes(rect)[0] for rect in bar.iter("rect")] for bar in bars] == [
        ["phase-dns", "phase-connect", "phase-tls", "phase-firstByte"],
        ["phase-dns", "phase-connect", "phase-firstByte"],  # no TLS on this one
    ]
    rects = list(bars[0].iter("rect"))
    assert [float(rect.get("height")) for rect in rects] == pytest.approx(
        [height * share for share in (0.1, 0.2, 0.3, 0.4)], abs=0.15
    )
    assert float(rects[0].get("y")) + float(rects[0].get("height")) == pytest.approx(plot.bottom)
    for lower, upper in zip(rects, rects[1:], strict=False):  # each phase starts where the one below ends
        assert float(upper.get("y")) + float(upper.get("height")) == pytest.approx(float(lower.get("y")))
    assert float(rects[-1].get("y")) == pytest.approx(plot.grid_y["100"])
    assert float(rects[0].get("x")) < float(next(bars[1].iter("rect")).get("x"))


def test_a_bar_tooltip_gives_every_phase_and_the_total():
    buckets = [(NOW, {"dns": 3, "connect": 12.5, "tls": None, "firstByte": 80})]
    bar = with_class(parse_svg(phases_chart(buckets, label="x")), "bar")[0]
    assert bar.find("title").text == (
        "2026-12-03 10:15 UTC · DNS 3 ms · connect 12.5 ms · TLS — · first byte 80 ms · total 95.5 ms"
    )


def test_the_phases_chart_has_a_legend_and_a_y_axis():
    root = parse_svg(phases_chart([(NOW, {"dns": 30, "connect": 40, "tls": 50, "firstByte": 60})], label="x"))
    assert [text.text for text in with_class(root, "legend")[0].iter("text")] == [
        "DNS",
        "connect",
        "TLS",
        "first byte",
    ]
    assert [classes(rect)[1] for rect in with_class(root, "swatch")] == [
        "phase-dns",
        "phase-connect",
        "phase-tls",
        "phase-firstByte",
    ]
    assert tick_texts(root, "y-axis") == ["0", "50", "100", "150", "200"]


@pytest.mark.parametrize("buckets", [[], [(NOW, {})], [(NOW, {"dns": None, "connect": 0})]])
def test_a_phases_chart_without_timings_says_so(buckets):
    root = parse_svg(phases_chart(buckets, label="x"))
    assert [text.text for text in with_class(root, "empty")] == [NO_RESULTS]
    assert list(root.iter("rect")) == []


def test_ninety_buckets_get_five_time_labels():
    buckets = [(NOW - timedelta(days=89 - index), {"dns": 1, "firstByte": 50}) for index in range(90)]
    root = parse_svg(phases_chart(buckets, label="x"))
    assert len(with_class(root, "bar")) == 90
    assert tick_texts(root, "x-axis") == ["Sep 05", "Sep 27", "Oct 19", "Nov 11", "Dec 03"]


# ------------------------------------------------------------------------------------------------- daily bars


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text inside each tip."""

    def __init__(self, markup: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.tips: list[list[str]] = []
        self._in_tip = 0
        self.feed(str(markup))

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        if "tip" in (attributes.get("class") or "").split():
            self._in_tip += 1
            self.tips.append([])
        elif self._in_tip and tag == "span":
            self._in_tip += 1

    def handle_endtag(self, tag):
        if self._in_tip and tag == "span":
            self._in_tip -= 1

    def handle_data(self, data):
        if self._in_tip:
            self.tips[-1].append(data)

    def days(self) -> list[dict[str, str | None]]:
        return [
            attributes for _, attributes in self.elements if "day" in (attributes.get("class") or "").split()
        ]


@pytest.mark.parametrize(
    ("uptime", "fill"),
    [(100, "ok"), (99.9, "ok"), (99.89, "warn"), (95, "warn"), (94.99, "bad"), (0, "bad"), (None, "none")],
)
def test_a_day_is_filled_by_its_uptime(uptime, fill):
    assert uptime_class(uptime) == fill
    (day,) = Elements(daily_bars([{"day": date(2026, 12, 1), "uptime": uptime}], label="x")).days()
    assert day["class"].split() == ["day", fill]


def test_there_is_one_focusable_list_item_per_day_given():
    days = [{"day": date(2026, 9, 5) + timedelta(days=index), "uptime": 100.0} for index in range(90)]
    days[3] = {"day": days[3]["day"], "uptime": None}
    parsed = Elements(daily_bars(days, label="Uptime, last 90 days"))
    container = parsed.elements[0]
    assert container == ("div", {"class": "daily-bars", "role": "list", "aria-label": "Uptime, last 90 days"})
    found = parsed.days()
    assert len(found) == 90
    assert [day["data-day"] for day in found] == [day["day"].isoformat() for day in days]
    assert {(day["role"], day["tabindex"]) for day in found} == {("listitem", "0")}
    assert [day.get("data-uptime") for day in found[2:5]] == ["100", None, "100"]


@pytest.mark.parametrize(
    ("uptime", "shown"),
    [(99.95, "99.95"), (99.999, "99.99"), (100, "100"), (99.9, "99.9"), (80, "80"), (0, "0")],
)
def test_uptime_reads_to_two_decimals_rounded_down(uptime, shown):
    (day,) = Elements(daily_bars([{"day": date(2026, 12, 1), "uptime": uptime}], label="x")).days()
    assert day["data-uptime"] == shown
    assert day["aria-label"] == f"2026-12-01: {shown}% up"


@dataclass
class DayRow:
    day: date
    uptime: float | None
    checks: int | None = None
    down_minutes: float | None = None
    notes: list[str] | None = None


def test_the_tip_and_the_accessible_name_give_checks_downtime_and_notes():
    days = [
        {
            "day": date(2026, 12, 1),
            "uptime": 99.5,
            "checks": 1440,
            "downMinutes": 7,
            "notes": "<img src=x> 503s",
        },
        DayRow(date(2026, 12, 2), None),
        DayRow(date(2026, 12, 3), 100, checks=1, down_minutes=0, notes=["deploy", "maintenance"]),
    ]
    markup = daily_bars(days, label="x")
    parsed = Elements(markup)
    assert "<img" not in markup
    assert [day["aria-label"] for day in parsed.days()] == [
        "2026-12-01: 99.5% up, 1,440 checks, 7 min down, <img src=x> 503s",
        "2026-12-02: no data",
        "2026-12-03: 100% up, 1 check, deploy, maintenance",
    ]
    assert parsed.tips[0] == ["2026-12-01: 99.5% up", "1,440 checks", "7 min down", "<img src=x> 503s"]
    assert [
        attributes.get("aria-hidden")
        for tag, attributes in parsed.elements
        if attributes.get("class") == "tip"
    ] == ["true"] * 3


def test_a_day_may_come_as_json_carries_it():
    days = [{"day": "2026-12-01", "uptime": Decimal("99.95")}]
    (day,) = Elements(daily_bars(days, label="x")).days()
    assert (day["data-day"], day["data-uptime"], day["class"]) == ("2026-12-01", "99.95", "day ok")


def test_no_days_give_an_empty_list():
    assert Elements(daily_bars([], label="x")).elements == [
        ("div", {"class": "daily-bars", "role": "list", "aria-label": "x"})
    ]


# ------------------------------------------------------------------------------------------------ stylesheet


def every_chart() -> list[str]:
    start = NOW - timedelta(days=1)
    return [
        sparkline(hours(1, None, 3), label="x"),
        sparkline([], label="x"),
        response_time_chart(
            {f"loc-{index}": [(NOW, index + 1)] for index in range(8)}, start=start, end=NOW, label="x"
        ),
        response_time_chart({}, start=start, end=NOW, label="x"),
        phases_chart([(NOW, {"dns": 1, "connect": 2, "tls": 3, "firstByte": 4})], label="x"),
    ]


def test_charts_carry_no_colour_of_their_own():
    for markup in every_chart():
        painted = {
            (element.tag, name, element.get(name))
            for element in parse_svg(markup).iter()
            for name in ("fill", "stroke", "color", "style")
            if element.get(name) is not None
        }
        assert {value for _, _, value in painted} <= {"none", "currentColor"}, painted


HOOKS_ONLY = {
    "legend-item",
    "tick",
    "y-axis",
    "x-axis",
    "series",
    "unit",
    "response-time",
    "phases",
    "no-data",
}


def test_the_stylesheet_styles_every_class_the_charts_use():
    used = {
        name for markup in every_chart() for element in parse_svg(markup).iter() for name in classes(element)
    }
    days = [{"day": date(2026, 12, 1), "uptime": uptime} for uptime in (100, 99, 50, None)]
    used |= {
        name
        for _, attributes in Elements(daily_bars(days, label="x")).elements
        for name in (attributes.get("class") or "").split()
    }
    unstyled = {name for name in used - HOOKS_ONLY if not re.search(rf"\.{re.escape(name)}\b(?!-)", CSS)}
    assert unstyled == set()
    assert {"phase-firstByte", "series-7", "ok", "warn", "bad", "none", "tip"} <= used


def test_the_charts_read_no_clock():
    """Pure means the caller passes `now`: a chart drawn twice from the same data is the same chart."""
    tree = ast.parse(Path(charts.__file__).read_text())
    calls = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert calls & {"now", "utcnow", "today", "time", "monotonic", "perf_counter"} == set()


def test_a_chart_goes_into_an_autoescaping_template_as_markup_and_its_data_stays_escaped():
    from jinja2 import Environment

    template = Environment(autoescape=True).from_string("<td>{{ spark }}</td>")
    spark = sparkline(hours(1, 2), label="<i>eu</i>")
    assert template.render(spark=spark) == f"<td>{spark}</td>"
    assert "&lt;i&gt;eu&lt;/i&gt;" in spark


@pytest.mark.parametrize(
    "day, notable",
    [
        ({"day": "2026-12-01", "uptime": 100.0, "checks": 1440}, False),
        ({"day": "2026-12-01", "uptime": None}, False),
        ({"day": "2026-12-01", "uptime": 99.99}, True),
        ({"day": "2026-12-01", "uptime": 100.0, "downMinutes": 2}, True),
        ({"day": "2026-12-01", "uptime": 100.0, "notes": ["Incident: slow checkout"]}, True),
        ({"day": "2026-12-01", "uptime": 100.0, "notes": []}, False),
    ],
)
def test_only_notable_days_take_focus_when_asked(day, notable):
    every = charts.daily_bars([day], label="x")
    some = charts.daily_bars([day], label="x", focus="notable")
    assert 'tabindex="0"' in every
    assert ('tabindex="0"' in some) is notable
    assert 'data-day="2026-12-01"' in some and 'class="tip"' in some  # hover still shows it
