"""A page's incidents and maintenance as feeds: Atom (RFC 4287), JSON Feed 1.1 and iCalendar (RFC 5545, maintenance
only). Pure given a FeedContent. Atom is built with ElementTree, so escaping is the XML library's; iCalendar is
written by hand: it needs escaping, line folding and one VEVENT per occurrence, which is shorter than a dependency."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree

from shared.rules.status_page import Occurrence
from shared.status.public import FeedContent, PublicIncident
from shared.status.render import INCIDENT_STATUS_LABELS, markdown_html

ATOM_NS = "http://www.w3.org/2005/Atom"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _incident_html(incident: PublicIncident) -> str:
    parts = [f"<p><strong>{INCIDENT_STATUS_LABELS[incident.status]}</strong> · {incident.impact} impact</p>"]
    for update in incident.updates:
        parts.append(f"<h4>{INCIDENT_STATUS_LABELS[update.status]}, {_when(update.created_at)}</h4>")
        if update.message:
            parts.append(str(markdown_html(update.message)))
    return "".join(parts)


def _maintenance_text(occurrence: Occurrence) -> str:
    return f"Maintenance from {_when(occurrence.starts_at)} to {_when(occurrence.ends_at)}"


def _entries(feed: FeedContent, page_url: str) -> list[dict]:
    """Incidents and maintenance occurrences, newest first, in one shape for both feed formats."""
    entries = [
        {
            "id": f"urn:uuid:{incident.id}",
            "title": f"[{INCIDENT_STATUS_LABELS[incident.status]}] {incident.title}",
            "url": f"{page_url}#incident-{incident.id}",
            "published": incident.published_at,
            "updated": incident.updated_at,
            "html": _incident_html(incident),
            "tags": ["incident", incident.impact],
        }
        for incident in feed.incidents
    ]
    entries += [
        {
            "id": f"urn:uuid:{occurrence.window_id}:{_iso(occurrence.starts_at)}",
            "title": f"[Maintenance] {occurrence.name}",
            "url": page_url,
            "published": occurrence.starts_at,
            "updated": occurrence.starts_at,
            "html": f"<p>{_maintenance_text(occurrence)}</p>",
            "tags": ["maintenance"],
        }
        for occurrence in feed.maintenance
    ]
    return sorted(entries, key=lambda entry: entry["updated"], reverse=True)


def atom(feed: FeedContent, page_url: str, feed_url: str) -> bytes:
    ElementTree.register_namespace("", ATOM_NS)

    def sub(parent, tag: str, text: str | None = None, **attributes) -> ElementTree.Element:
        element = ElementTree.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attributes)
        if text is not None:
            element.text = text
        return element

    root = ElementTree.Element(f"{{{ATOM_NS}}}feed")
    sub(root, "id", feed_url)
    sub(root, "title", f"{feed.title}: incidents and maintenance")
    sub(root, "updated", _iso(feed.updated_at))
    sub(root, "link", href=feed_url, rel="self", type="application/atom+xml")
    sub(root, "link", href=page_url, rel="alternate", type="text/html")
    sub(sub(root, "author"), "name", feed.title)
    for entry in _entries(feed, page_url):
        item = sub(root, "entry")
        sub(item, "id", entry["id"])
        sub(item, "title", entry["title"])
        sub(item, "link", href=entry["url"], rel="alternate", type="text/html")
        sub(item, "published", _iso(entry["published"]))
        sub(item, "updated", _iso(entry["updated"]))
        for tag in entry["tags"]:
            sub(item, "category", term=tag)
        sub(item, "content", entry["html"], type="html")
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def json_feed(feed: FeedContent, page_url: str, feed_url: str) -> bytes:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{feed.title}: incidents and maintenance",
        "home_page_url": page_url,
        "feed_url": feed_url,
        "items": [
            {
                "id": entry["id"],
                "url": entry["url"],
                "title": entry["title"],
                "content_html": entry["html"],
                "date_published": _iso(entry["published"]),
                "date_modified": _iso(entry["updated"]),
                "tags": entry["tags"],
            }
            for entry in _entries(feed, page_url)
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


def _ical_text(value: str) -> str:
    """RFC 5545 3.3.11: backslash, semicolon, comma and newline escaped."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines of at most 75 octets, continued after CRLF and a space, never inside a character."""
    encoded = line.encode()
    if len(encoded) <= 75:
        return line
    pieces, current = [], b""
    for char in line:
        octets = char.encode()
        if len(current) + len(octets) > (75 if not pieces else 74):
            pieces.append(current.decode())
            current = b""
        current += octets
    pieces.append(current.decode())
    return "\r\n ".join(pieces)


def _ical_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def icalendar(feed: FeedContent, page_url: str, now: datetime) -> bytes:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//supercheck-faas//status page//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ical_text(feed.title + ': maintenance')}",
    ]
    for occurrence in feed.maintenance:
        lines += [
            "BEGIN:VEVENT",
            f"UID:{occurrence.window_id}-{_ical_time(occurrence.starts_at)}@{_ical_text(feed.slug)}",
            f"DTSTAMP:{_ical_time(now)}",
            f"DTSTART:{_ical_time(occurrence.starts_at)}",
            f"DTEND:{_ical_time(occurrence.ends_at)}",
            f"SUMMARY:{_ical_text('Maintenance: ' + occurrence.name)}",
            f"URL:{page_url}",
            "TRANSP:TRANSPARENT",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode()
