"""The HTTP edge every function shares: who is calling, JSON bodies parsed and vetted, models validated, errors
in one shape. Used by every functions/<name>/main.py."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from shared import internal_auth
from shared.errors import ApiError, validation_error_to_api_error

log = logging.getLogger("supercheck")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Caller:
    """Who called a function: a signed internal call (connector, api), the cron-connector's empty-bodied call,
    or an API key's holder, who acts in that key's project only."""

    kind: Literal["internal", "cron", "key"]
    project_id: uuid.UUID | None = None  # a key's project; None for internal and cron calls


async def identify_caller(request: Request, *, cron: bool = False, keys: bool = True) -> Caller:
    """Decides who calls before a byte of the body is parsed (a refused call is 401 whatever its body).

    A call carrying signature headers must verify. An unsigned call with an empty body and no Authorization is
    the cron-connector's, where the function has cron work (cron=True). Anything else needs an API key (or the
    local anonymous mode), where the function takes parameters from outside (keys=True).
    """
    raw = await request.body()
    if internal_auth.is_signed(request.headers):
        try:
            internal_auth.verify(request.headers, raw)
        except internal_auth.SignatureRefused as refused:
            raise ApiError(401, "unauthorized", f"signed call refused: {refused}") from None
        return Caller("internal")
    if cron and not raw.strip() and "authorization" not in request.headers:
        return Caller("cron")
    if not keys:
        raise ApiError(401, "unauthorized", "this function accepts only signed deliveries from the connector")
    from shared import auth  # the database driver loads with the first keyed call

    return Caller("key", (await auth.authenticate(request.headers.get("authorization", ""))).project_id)


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


async def read_json(request: Request, allow_empty: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise ApiError(400, "invalid_json", "request body is empty; expected a JSON object")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {error}") from None
    if may_carry_unstorable_text(raw):
        reject_unstorable_text(data, ())
    return data


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # NUL, and lone surrogates json.loads lets through

# What in a JSON document's bytes can parse into NUL or a lone surrogate: a \u escape of either, a surrogate
# encoded as UTF-8 (json.loads decodes bytes with surrogatepass), or any NUL byte (a UTF-16 or UTF-32 body,
# which json.loads detects by its NUL bytes, can carry surrogates raw). A false alarm only costs the walk.
_MAYBE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]|\x00")


def may_carry_unstorable_text(raw: bytes) -> bool:
    """False when parsing `raw` cannot have produced unstorable text, so its values need no walk: the walk was
    a twentieth of aggregate's CPU on batches of heartbeat pings (py-spy), and almost no body needs it."""
    return _MAYBE_UNSTORABLE.search(raw) is not None


def reject_unstorable_text(value: Any, path: tuple) -> None:
    """JSON may carry NUL characters and lone surrogates; PostgreSQL text and UTF-8 cannot, so refuse them here."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            field = ".".join(str(part) for part in path) or None
            where = f"{field}: " if field else ""
            raise ApiError(
                400, "validation_error", f"{where}contains a NUL character or an unpaired surrogate", field
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_unstorable_text(key, path)
            reject_unstorable_text(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            reject_unstorable_text(item, (*path, index))


def parse(model: type[M], data: Any, context: dict | None = None) -> M:
    """context: pydantic's validation context, e.g. the Sealing that encrypts a check config's secrets."""
    if not isinstance(data, dict):
        raise ApiError(400, "validation_error", "request body must be a JSON object")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise validation_error_to_api_error(error) from None


def parse_each(model: type[M], data: list, context: dict | None = None, most: int = 1000) -> list[M]:
    """Each item of an array body, validated as `model`; the first error names its item: `[12].config.x`."""
    if not data:
        raise ApiError(400, "validation_error", "request body: an array needs at least one item")
    if len(data) > most:
        raise ApiError(400, "validation_error", f"request body: at most {most} items in one request")
    parsed = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise ApiError(400, "validation_error", f"[{index}]: must be a JSON object", f"[{index}]")
        try:
            parsed.append(parse(model, item, context))
        except ApiError as error:
            raise item_error(index, error) from None
    return parsed


def item_error(index: int, error: ApiError) -> ApiError:
    """An item's error, its field (or the item itself) prefixed by its index in the array."""
    field = f"[{index}].{error.field}" if error.field else f"[{index}]"
    message = error.message.removeprefix(f"{error.field}: ") if error.field else error.message
    return ApiError(error.status, error.code, f"{field}: {message}", field)


def json_endpoint(
    handler: Callable[[Request], Awaitable[Any]],
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Wraps a function's handler: ApiError becomes its JSON shape, anything else a 500 without internals."""

    async def wrapped(request: Request) -> JSONResponse:
        try:
            result = await handler(request)
        except ApiError as error:
            return error_response(error)
        except Exception:
            log.exception("unhandled error in %s", handler.__module__)
            return error_response(ApiError(500, "internal_error", "internal error; see the function's log"))
        if isinstance(result, JSONResponse):
            return result
        return JSONResponse(result)

    wrapped.__name__ = handler.__name__
    return wrapped
