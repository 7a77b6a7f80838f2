"""The status pages' pure decisions as tables: a monitor's public status, the banner, the cache's freshness,
maintenance occurrences, badge durations, colours and SVG (read back with an XML parser), and the feeds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest

from shared.rules import badges
from shared.rules.status_page import (
    Banner,
    Freshness,
    banner,
    duration_hours,
    freshness,
    occurrences,
    public_status,
)

SVG = "{http://www.w3.org/2000/svg}"


@pytest.mark.parametrize(
    ("status", "enabled", "in_maintenance", "failing", "key", "label"),
    [
        ("up", True, False, (), "operational", "Operational"),
        ("up", True, False, ("eu-central",), "degraded", "Degraded in eu-central"),
        ("degraded", True, False, (), "degraded", "Degraded"),
        ("degraded", True, False, ("eu-central", "us-east"), "degraded", "Degraded in eu-central, us-east"),
        ("down", True, False, ("eu-central", "us-east"), "down", "Down in eu-central, us-east"),
        ("down", True, False, (), "down", "Down"),
        ("error", True, False, (), "down", "Down"),
        ("down", True, True, ("us-east",), "maintenance", "Under maintenance"),
        ("down", False, False, (), "paused", "Paused"),
        ("pending", True, False, (), "unknown", "No data yet"),
        ("unknown", True, False, (), "unknown", "No data yet"),
    ],
)
def test_a_monitors_public_status(status, enabled, in_maintenance, failing, key, label):
    found = public_status(status, enabled=enabled, in_maintenance=in_maintenance, failing_locations=failing)
    assert (found.key, found.label) == (key, label)


@pytest.mark.parametrize(
    ("statuses", "impacts", "expected"),
    [
        (["operational", "operational"], [], Banner.OPERATIONAL),
        ([], [], Banner.OPERATIONAL),
        (["unknown", "paused"], [], Banner.OPERATIONAL),
        (["operational", "degraded"], [], Banner.PARTIAL),
        (["operational", "operational", "down"], [], Banner.PARTIAL),
        (["operational", "down"], [], Banner.PARTIAL),  # half is not more than half
        (["down", "down", "operational"], [], Banner.MAJOR),
        (["down"], [], Banner.MAJOR),
        (["down", "paused", "unknown"], [], Banner.MAJOR),  # paused and no-data monitors do not dilute it
        (["operational", "maintenance"], [], Banner.MAINTENANCE),
        (["maintenance", "down", "operational"], [], Banner.PARTIAL),  # an outage outranks maintenance
        (["operational"], ["minor"], Banner.OPERATIONAL),
        (["operational"], ["major"], Banner.PARTIAL),
        (["operational"], ["critical"], Banner.MAJOR),
        (["maintenance"], ["none"], Banner.MAINTENANCE),
    ],
)
def test_the_banner(statuses, impacts, expected):
    assert banner(statuses, impacts) is expected


@pytest.mark.parametrize(
    ("age", "invalidated", "expected"),
    [
        (0.0, False, Freshness.FRESH),
        (9.9, False, Freshness.FRESH),
        (10.0, False, Freshness.STALE),
        (39.9, False, Freshness.STALE),
        (40.0, False, Freshness.EXPIRED),
        (1.0, True, Freshness.FRESH),  # a status change right after a render waits for the minimum interval
        (2.0, True, Freshness.STALE),
        (45.0, True, Freshness.EXPIRED),
    ],
)
def test_when_a_cached_copy_is_fresh(age, invalidated, expected):
    decision = freshness(
        age, invalidated=invalidated, fresh_seconds=10, stale_seconds=30, min_render_interval_seconds=2
    )
    assert decision is expected


NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ({"starts_at": NOW - timedelta(hours=1), "ends_at": NOW + timedelta(hours=1)}, [(-60, 60)]),
        ({"starts_at": NOW + timedelta(days=1), "ends_at": NOW + timedelta(days=1, hours=2)}, [(1440, 1560)]),
        ({"starts_at": NOW - timedelta(hours=2), "ends_at": NOW - timedelta(hours=1)}, []),  # over
        (
            {"starts_at": NOW + timedelta(days=30), "ends_at": NOW + timedelta(days=31)},
            [],
        ),  # beyond the horizon
        # every day at 09:30 UTC for an hour: running now (since 09:30), then tomorrow's and the next
        ({"cron": "30 9 * * *", "duration_minutes": 60}, [(-30, 30), (1410, 1470), (2850, 2910)]),
        # every day at 11:00 in Berlin (10:00 UTC in December): starts right now
        (
            {"cron": "0 11 * * *", "duration_minutes": 30, "timezone": "Europe/Berlin"},
            [(0, 30), (1440, 1470), (2880, 2910)],
        ),
        ({"cron": "not a cron", "duration_minutes": 30}, []),
        ({"cron": "0 11 * * *", "duration_minutes": 30, "timezone": "Mars/Olympus"}, []),
    ],
)
def test_maintenance_occurrences(window, expected):
    values = {
        "starts_at": None,
        "ends_at": None,
        "cron": None,
        "duration_minutes": None,
        "timezone": "UTC",
        **window,
    }
    found = occurrences("w", "db upgrade", now=NOW, horizon=timedelta(days=14), **values)
    minutes = [
        ((o.starts_at - NOW) // timedelta(minutes=1), (o.ends_at - NOW) // timedelta(minutes=1))
        for o in found
    ]
    assert minutes == expected


@pytest.mark.parametrize(
    ("text", "hours"),
    [("24h", 24), ("1d", 24), ("7d", 168), ("30d", 720), ("90d", 2160), ("1h", 1), ("48", 48), ("2d", 48)],
)
def test_badge_durations(text, hours):
    assert duration_hours(text) == hours


@pytest.mark.parametrize("text", ["", "0", "91d", "3000h", "1w", "-1h", "24 h", "७d"])
def test_badge_durations_refused(text):
    assert duration_hours(text) is None


@pytest.mark.parametrize(
    ("percent", "text", "colour"),
    [
        (100.0, "100%", "green"),
        (99.999, "99.99%", "green"),
        (99.95, "99.95%", "green"),
        (99.5, "99.5%", "yellowgreen"),
        (97.0, "97%", "yellow"),
        (90.123, "90.12%", "orange"),
        (12.0, "12%", "red"),
        (None, "N/A", "grey"),
    ],
)
def test_uptime_badge_text_and_colour(percent, text, colour):
    assert (badges.uptime_text(percent), badges.uptime_colour(percent)) == (text, colour)


@pytest.mark.parametrize(
    ("ms", "colour"),
    [(10, "green"), (50, "yellowgreen"), (250, "yellow"), (400, "orange"), (900, "red"), (None, "grey")],
)
def test_response_time_colours(ms, colour):
    assert badges.response_time_colour(ms) == colour


@pytest.mark.parametrize(
    "badge",
    [
        badges.Badge("status", "Operational", "green"),
        badges.Badge("uptime 30d", "99.95%", "green"),
        badges.Badge("status", "Degraded in eu-central", "yellow"),
        badges.Badge('a <label> & "quotes"', "<script>alert(1)</script>", "red"),
        badges.not_available("status"),
    ],
)
def test_a_badge_is_valid_svg_with_its_label_and_message(badge):
    svg = ElementTree.fromstring(badges.badge_svg(badge))
    assert svg.tag == f"{SVG}svg"
    assert svg.get("aria-label") == f"{badge.label}: {badge.message}"
    texts = [text.text for text in svg.iter(f"{SVG}text")]
    assert texts == [badge.label, badge.label, badge.message, badge.message]
    assert svg.find(f"{SVG}title").text == f"{badge.label}: {badge.message}"
    width = int(svg.get("width"))
    rects = [rect for rect in svg.iter(f"{SVG}rect") if rect.get("fill") == badge.fill]
    assert rects and int(rects[0].get("x")) + int(rects[0].get("width")) == width
    assert not list(svg.iter("script")) and not list(svg.iter(f"{SVG}script"))


def test_a_longer_message_makes_a_wider_badge():
    short = ElementTree.fromstring(badges.badge_svg(badges.Badge("status", "Up", "green")))
    long = ElementTree.fromstring(
        badges.badge_svg(badges.Badge("status", "Degraded in asia-pacific", "yellow"))
    )
    assert int(long.get("width")) > int(short.get("width")) + 100


def test_the_shields_endpoint_json_follows_its_schema():
    assert badges.shields_endpoint(badges.Badge("status", "Down", "red")) == {
        "schemaVersion": 1,
        "label": "status",
        "message": "Down",
        "color": "red",
    }


# ------------------------------------------------------------------------------------------------ feeds


def a_feed():
    from shared.rules.status_page import Occurrence
    from shared.status.public import FeedContent, IncidentUpdate, PublicIncident

    incident = PublicIncident(
        id=uuid.UUID(int=1),
        title="Checkout errors; payments, & <slow>",
        status="identified",
        impact="major",
        created_at=NOW - timedelta(hours=2),
        updated_at=NOW - timedelta(hours=1),
        published_at=NOW - timedelta(hours=2),
        resolved_at=None,
        monitor_names=["Checkout"],
        updates=[IncidentUpdate("identified", "The **database** failed over.", NOW - timedelta(hours=1))],
    )
    maintenance = Occurrence(
        "w1",
        "Database upgrade, part 2; with a long name that needs folding in iCalendar",
        NOW + timedelta(days=1),
        NOW + timedelta(days=1, hours=2),
    )
    return FeedContent("acme", "Acme", None, NOW, [incident], [maintenance])


def test_the_atom_feed_is_valid_xml_with_an_entry_per_incident_and_maintenance():
    from shared.status import feeds

    root = ElementTree.fromstring(
        feeds.atom(a_feed(), "https://s.example/acme", "https://s.example/acme/feed.atom")
    )
    atom = "{http://www.w3.org/2005/Atom}"
    entries = root.findall(f"{atom}entry")
    titles = [entry.find(f"{atom}title").text for entry in entries]
    assert titles == [
        "[Maintenance] Database upgrade, part 2; with a long name that needs folding in iCalendar",
        "[Identified] Checkout errors; payments, & <slow>",
    ]
    assert "<strong>database</strong>" in entries[1].find(f"{atom}content").text
    assert root.find(f"{atom}updated").text == "2026-12-03T10:00:00Z"


def test_the_json_feed_names_its_version_and_items():
    from shared.status import feeds

    document = json.loads(
        feeds.json_feed(a_feed(), "https://s.example/acme", "https://s.example/acme/feed.json")
    )
    assert document["version"] == "https://jsonfeed.org/version/1.1"
    assert [item["tags"][0] for item in document["items"]] == ["maintenance", "incident"]
    assert document["items"][1]["url"] == f"https://s.example/acme#incident-{uuid.UUID(int=1)}"


def test_the_icalendar_escapes_folds_and_holds_one_event_per_occurrence():
    from shared.status import feeds

    text = feeds.icalendar(a_feed(), "https://s.example/acme", NOW).decode()
    assert text.startswith("BEGIN:VCALENDAR\r\n") and text.endswith("END:VCALENDAR\r\n")
    physical = text.split("\r\n")
    assert all(len(line.encode()) <= 75 for line in physical)
    unfolded = text.replace("\r\n ", "")
    assert (
        "SUMMARY:Maintenance: Database upgrade\\, part 2\\; with a long name that needs folding in iCalendar"
        in unfolded
    )
    assert "DTSTART:20261204T100000Z" in unfolded and "DTEND:20261204T120000Z" in unfolded
    assert unfolded.count("BEGIN:VEVENT") == 1
