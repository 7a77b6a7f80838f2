"""Every function's JSON bodies: text PostgreSQL cannot store (NUL, lone surrogates) is refused with its field
named, and the shortcut that skips looking for it (may_carry_unstorable_text) never skips a body that has it."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.requests import Request

from shared.errors import ApiError
from shared.handlers import may_carry_unstorable_text, read_json


def _request(body: bytes) -> Request:
    sent = False

    async def receive():
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "headers": [], "path": "/"}, receive)


def _read(body: bytes):
    return asyncio.run(read_json(_request(body)))


STORABLE = "storable"
BODY = None  # refused, and the error names no field: the body itself

# (body, the field the error names, BODY, or STORABLE)
BODIES = [
    (b'{"name": "plain", "n": 1, "list": ["a", {"b": "c"}]}', STORABLE),
    (b'{"name": "nul \\u0000 inside"}', "name"),
    (b'{"outer": {"list": ["ok", "\\u0000"]}}', "outer.list.1"),
    (b'{"\\u0000key": 1}', BODY),  # a key's path is its parent's
    (b'{"high": "\\ud800"}', "high"),
    (b'{"low": "\\uDFFF alone"}', "low"),
    (b'{"raw": "\xed\xa0\x80"}', "raw"),  # a surrogate encoded as UTF-8, which json.loads lets through
    ('{"wide": "\ud800"}'.encode("utf-16-le", "surrogatepass"), "wide"),
    ('{"wider": "\udc00"}'.encode("utf-32-be", "surrogatepass"), "wider"),
    (b'{"emoji": "\\ud83d\\ude00", "text": "\xf0\x9f\x98\x80"}', STORABLE),  # a pair is one character
    (b'{"literal": "\\\\u0000 is six characters here"}', STORABLE),
    ('{"accents": "é ü ß — ✓"}'.encode(), STORABLE),
]


@pytest.mark.parametrize(("body", "field"), BODIES)
def test_unstorable_text_is_refused_with_its_field(body, field):
    if field == STORABLE:
        assert _read(body) == json.loads(body)
        return
    with pytest.raises(ApiError) as raised:
        _read(body)
    assert raised.value.status == 400
    assert raised.value.field == field
    assert "NUL character or an unpaired surrogate" in raised.value.message


@pytest.mark.parametrize(("body", "field"), BODIES)
def test_the_shortcut_never_skips_a_body_with_unstorable_text(body, field):
    parsed = json.loads(body)
    has_unstorable = any(
        "\x00" in text or any(0xD800 <= ord(char) <= 0xDFFF for char in text) for text in _texts(parsed)
    )
    if has_unstorable:
        assert may_carry_unstorable_text(body)


def test_the_shortcut_skips_ordinary_bodies():
    assert not may_carry_unstorable_text(BODIES[0][0])
    assert not may_carry_unstorable_text(BODIES[-1][0])
    assert not may_carry_unstorable_text(
        json.dumps({"messages": [{"id": "1-0", "data": {"x": "é"}}]}).encode()
    )


def _texts(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
