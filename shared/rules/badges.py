"""Badges (pure): a Shields-style "label | message" SVG, the colour of a status, an uptime or a response time, and
the Shields endpoint JSON. Widths are estimated from Verdana's advance widths, since there are no font metrics on
the server; the text carries textLength so a different font still fits its box."""

from __future__ import annotations

from dataclasses import dataclass

from markupsafe import escape

COLOURS = {
    "green": "#4c1",
    "yellowgreen": "#a4a61d",
    "yellow": "#dfb317",
    "orange": "#fe7d37",
    "red": "#e05d44",
    "blue": "#007ec6",
    "grey": "#9f9f9f",
    "label": "#555",
}
NOT_AVAILABLE = "N/A"

# Verdana 11 px advance widths, in px, for the characters badges show; anything else counts as 7.
_NARROW = set("fijlrtI!.,:;'|()[] ")
_WIDE = set("mwMW%@")


def text_width(text: str) -> float:
    return sum(3.9 if ch in _NARROW else 10.0 if ch in _WIDE else 7.0 for ch in text)


@dataclass(frozen=True)
class Badge:
    label: str
    message: str
    colour: str  # a key of COLOURS

    @property
    def fill(self) -> str:
        return COLOURS.get(self.colour, COLOURS["grey"])


def not_available(label: str) -> Badge:
    """What a monitor answers that is on no published page (or does not exist): the same either way, so a
    badge URL does not reveal whether an id exists."""
    return Badge(label, NOT_AVAILABLE, "grey")


def status_colour(status_key: str) -> str:
    return {
        "operational": "green",
        "degraded": "yellow",
        "maintenance": "blue",
        "down": "red",
    }.get(status_key, "grey")


def uptime_colour(percent: float | None) -> str:
    """Gatus' and Kuma's thresholds: green from 99.9 %, then yellow-green, yellow, orange, red below 80 %."""
    if percent is None:
        return "grey"
    for bound, colour in ((99.9, "green"), (99.0, "yellowgreen"), (95.0, "yellow"), (80.0, "orange")):
        if percent >= bound:
            return colour
    return "red"


def response_time_colour(ms: float | None) -> str:
    """Gatus' default thresholds: green under 50 ms, then 200, 300, 500 ms, red from there."""
    if ms is None:
        return "grey"
    for bound, colour in ((50, "green"), (200, "yellowgreen"), (300, "yellow"), (500, "orange")):
        if ms < bound:
            return colour
    return "red"


def uptime_text(percent: float | None) -> str:
    """99.95 % to two decimals rounded down (any downtime never reads 100%), trailing zeros dropped."""
    if percent is None:
        return NOT_AVAILABLE
    hundredths = int(percent * 100 + 1e-9)
    whole, part = divmod(hundredths, 100)
    return f"{whole}%" if part == 0 else f"{whole}.{part:02d}".rstrip("0") + "%"


def badge_svg(badge: Badge) -> str:
    """A flat badge, 20 px high: the label on grey, the message on its colour, both with a text shadow."""
    label_width = round(text_width(badge.label) + 10)
    message_width = round(text_width(badge.message) + 10)
    width = label_width + message_width
    label, message = escape(badge.label), escape(badge.message)
    # Text is drawn at 10x and scaled down, as Shields does, so its positions keep one decimal in whole numbers.
    label_x, message_x = label_width * 5, (label_width + message_width / 2) * 10
    label_length, message_length = (label_width - 10) * 10, (message_width - 10) * 10
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
        f'aria-label="{label}: {message}"><title>{label}: {message}</title>'
        '<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#r)"><rect width="{label_width}" height="20" fill="{COLOURS["label"]}"/>'
        f'<rect x="{label_width}" width="{message_width}" height="20" fill="{badge.fill}"/>'
        f'<rect width="{width}" height="20" fill="url(#s)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" '
        'text-rendering="geometricPrecision" font-size="110">'
        f'<text aria-hidden="true" x="{label_x}" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" '
        f'textLength="{label_length}">{label}</text>'
        f'<text x="{label_x}" y="140" transform="scale(.1)" textLength="{label_length}">{label}</text>'
        f'<text aria-hidden="true" x="{message_x:g}" y="150" fill="#010101" fill-opacity=".3" '
        f'transform="scale(.1)" textLength="{message_length}">{message}</text>'
        f'<text x="{message_x:g}" y="140" transform="scale(.1)" textLength="{message_length}">{message}</text>'
        "</g></svg>"
    )


def shields_endpoint(badge: Badge) -> dict:
    """Shields' endpoint badge schema (https://shields.io/badges/endpoint-badge), as Gatus answers it."""
    return {"schemaVersion": 1, "label": badge.label, "message": badge.message, "color": badge.colour}
