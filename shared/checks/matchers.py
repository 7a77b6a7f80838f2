"""Pure matchers over check facts, parsed once when a monitor is saved."""

from __future__ import annotations

import re

_STATUS_PART = re.compile(r"^(?:(?P<class>[1-5])xx|(?P<low>\d{3})(?:-(?P<high>\d{3}))?)$", re.IGNORECASE)
DEFAULT_STATUS_SPEC = "200-299"


def parse_status_spec(spec: str | None) -> tuple[tuple[int, int], ...]:
    """'200', '2xx', '200-299,404' -> inclusive ranges. Empty means 200-299. Raises ValueError with the reason."""
    text = (spec or "").strip() or DEFAULT_STATUS_SPEC
    ranges: list[tuple[int, int]] = []
    for raw_part in text.split(","):
        part = raw_part.strip()
        match = _STATUS_PART.match(part)
        if not match:
            raise ValueError(f"'{part}' is not a status code, class (2xx) or range (200-299)")
        if match["class"]:
            base = int(match["class"]) * 100
            ranges.append((base, base + 99))
            continue
        low = int(match["low"])
        high = int(match["high"]) if match["high"] else low
        for code in (low, high):
            if not 100 <= code <= 599:
                raise ValueError(f"status code {code} is outside 100-599")
        if low > high:
            raise ValueError(f"range '{part}' runs backwards")
        ranges.append((low, high))
    return tuple(ranges)


def status_matches(status_code: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(low <= status_code <= high for low, high in ranges)
