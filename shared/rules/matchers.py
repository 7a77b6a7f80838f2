"""Pure matchers over check facts, parsed once when a monitor is saved.
Used by the HTTP checks' configs and verdicts (shared/checks/http.py)."""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as jsonpath_parse

_STATUS_PART = re.compile(r"^(?:(?P<class>[1-5])xx|(?P<low>\d{3})(?:-(?P<high>\d{3}))?)$", re.IGNORECASE)
DEFAULT_STATUS_SPEC = "200-299"


@lru_cache(maxsize=4096)
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


def keyword_verdict(body_text: str, keyword: str, should_be_present: bool = True) -> str | None:
    """None when the keyword rule holds, else the reason it failed. Matching ignores case."""
    found = keyword.casefold() in body_text.casefold()
    if found == should_be_present:
        return None
    if should_be_present:
        return f"Keyword '{keyword}' not found in the response body"
    return f"Keyword '{keyword}' found in the response body, but it should be absent"


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
}
_OPERATORS = ("==", "!=", ">=", "<=", ">", "<")  # two-character operators first
_LENGTH_SUFFIX = ".length()"


def _split_assertion(text: str) -> tuple[str, str | None, str | None]:
    """(path, operator, expected) with the operator found outside brackets and quotes, so filters may compare."""
    depth, quote = 0, ""
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[index - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif depth == 0:
            for op in _OPERATORS:
                if text.startswith(op, index):
                    return text[:index].strip(), op, text[index + len(op) :].strip()
    return text.strip(), None, None


@dataclass(frozen=True)
class JsonPathAssertion:
    """'$.status == "ok"', '$.items.length() > 0', or a bare path meaning 'matches something'."""

    text: str
    path: JSONPath
    length: bool
    op: str | None
    expected: Any


@lru_cache(maxsize=4096)
def parse_json_path_assertion(text: str) -> JsonPathAssertion:
    """Parsed once per distinct text (on save, then cached); raises ValueError saying what is wrong."""
    path_text, op, expected_text = _split_assertion(text or "")
    if not path_text.startswith("$"):
        raise ValueError(
            "must start with a JSON path such as $.status, optionally followed by == != > >= < <="
        )
    length = path_text.endswith(_LENGTH_SUFFIX)
    if length:
        path_text = path_text.removesuffix(_LENGTH_SUFFIX)
    try:
        path = jsonpath_parse(path_text)
    except Exception as error:  # jsonpath-ng raises bare Exception subclasses for syntax errors
        raise ValueError(f"'{path_text}' is not a valid JSON path ({error})") from None
    expected = None
    if op:
        try:
            expected = json.loads(expected_text)
        except json.JSONDecodeError:
            raise ValueError(
                f'the value {expected_text} is not a JSON literal (quote strings: "ok")'
            ) from None
    return JsonPathAssertion(text.strip(), path, length, op, expected)


def _compare(actual: Any, op: str, expected: Any) -> bool:
    # JSON's true is not the number 1, though Python's True == 1.
    if isinstance(actual, bool) != isinstance(expected, bool):
        return op == "!="
    try:
        return _COMPARISONS[op](actual, expected)
    except TypeError:  # "abc" > 3: a comparison JSON cannot make does not hold
        return False


def json_path_verdict(body_text: str, assertion: JsonPathAssertion) -> str | None:
    """None when the assertion holds on the JSON body, else a message a person understands."""
    try:
        document = json.loads(body_text)
    except (json.JSONDecodeError, RecursionError):
        return f"Response body is not JSON, so the JSON path assertion {assertion.text} cannot be evaluated"
    values = [found.value for found in assertion.path.find(document)]
    if not values:
        return f"JSON path {assertion.path} matched nothing"
    actual: Any = values[0] if len(values) == 1 else values
    if assertion.length:
        if not isinstance(actual, list | str | dict):
            return f"JSON path {assertion.path} is {json.dumps(actual)}, which has no length"
        actual = len(actual)
    if assertion.op is None:
        return None
    if _compare(actual, assertion.op, assertion.expected):
        return None
    subject = f"{assertion.path}.length()" if assertion.length else str(assertion.path)
    shown = json.dumps(actual)[:200]
    return f"JSON path assertion failed: {subject} is {shown}, expected {assertion.op} {json.dumps(assertion.expected)}"
