"""A small declarative layer over Starlette: each endpoint states its body, query and response models once,
so validation, authentication, the error shape and the OpenAPI document all come from the same place."""

from __future__ import annotations

import importlib
import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shared.errors import ApiError
from shared.handlers import error_response, parse, parse_each, read_json, reject_unstorable_text

if TYPE_CHECKING:
    from shared import auth

log = logging.getLogger("supercheck.api")


class LazyModule:
    """A module imported on first attribute access: endpoints name the modules they call at the top of the
    routes file, and a cold api function loads only those its first requests reach."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        module: ModuleType = importlib.import_module(self._name)
        return getattr(module, attribute)


@dataclass
class Context:
    request: Request
    principal: auth.Principal | None
    body: Any = None
    query: Any = None

    @property
    def project_id(self) -> uuid.UUID:
        assert self.principal is not None
        return self.principal.project_id

    @property
    def api_key_id(self) -> uuid.UUID | None:
        return self.principal.api_key_id if self.principal else None


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: Any = None
    status: int = 200
    authenticated: bool = True
    streaming: bool = False
    operation_id: str = ""  # the OpenAPI operationId and route name; the handler's name unless given
    conflict: str = ""  # when the endpoint may answer 409, why (documented in the OpenAPI document)
    # > 0: the body may also be an array of up to this many bodies, each validated; the reply is then an array
    batch_limit: int = 0

    def __post_init__(self):
        self.operation_id = self.operation_id or self.handler.__name__

    @property
    def response_model(self) -> Any:
        """The response model; given as a function when its module is heavy and only the OpenAPI document
        needs the model itself (e.g. `lambda: long_range.UptimeReport`)."""
        return self.response() if inspect.isfunction(self.response) else self.response


ENDPOINTS: list[Endpoint] = []


def endpoint(
    method: str,
    path: str,
    *,
    summary: str,
    tag: str,
    body=None,
    query=None,
    response=None,
    status=200,
    authenticated=True,
    streaming=False,
    operation_id="",
    conflict="",
    batch_limit=0,
):
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(
                method,
                path,
                handler,
                summary,
                tag,
                body,
                query,
                response,
                status,
                authenticated,
                streaming,
                operation_id,
                conflict,
                batch_limit,
            )
        )
        return handler

    return register


def as_uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ApiError(404, "not_found", f"{what} not found") from None


# An ASGI scope key an HTTP client cannot set: the dashboard (shared/dashboard/bridge.py) calls the API in
# process for the principal of its signed session, so pages get the API's own validation and errors.
PRINCIPAL_SCOPE_KEY = "supercheck.principal"


async def authenticate(request: Request) -> auth.Principal:
    given = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if given is not None:
        return given
    from shared import auth  # the database driver loads with the first authenticated request

    return await auth.authenticate(request.headers.get("authorization", ""))


def sealing_context(principal: auth.Principal | None) -> dict | None:
    """Secrets in a body are encrypted for the caller's project, and may not arrive already encrypted."""
    from shared.checks.credentials import Sealing

    return Sealing(principal.project_id).context() if principal else None


def render(result: Any, status: int) -> Response:
    if isinstance(result, Response):
        return result
    if isinstance(result, BaseModel):
        result = result.model_dump(mode="json", by_alias=True)
    elif isinstance(result, list):
        result = [
            item.model_dump(mode="json", by_alias=True) if isinstance(item, BaseModel) else item
            for item in result
        ]
    if status == 204:
        return Response(status_code=204)
    return JSONResponse(result, status_code=status)


def _parse_body(spec: Endpoint, data: Any, principal: auth.Principal | None) -> Any:
    """The body as its model, or as a list of them where the endpoint takes a batch and an array came."""
    if spec.batch_limit and isinstance(data, list):
        return parse_each(spec.body, data, sealing_context(principal), spec.batch_limit)
    return parse(spec.body, data, sealing_context(principal))


async def invoke(spec: Endpoint, request: Request) -> Response:
    try:
        principal = await authenticate(request) if spec.authenticated else None
        # a NUL in a query or path value (%00) cannot reach PostgreSQL text: refused naming its parameter
        reject_unstorable_text(dict(request.query_params), ())
        reject_unstorable_text(dict(request.path_params), ())
        query = parse(spec.query, dict(request.query_params)) if spec.query else None
        body = _parse_body(spec, await read_json(request), principal) if spec.body else None
        result = await spec.handler(Context(request, principal, body, query), **request.path_params)
    except ApiError as error:
        return error_response(error)
    except Exception:
        log.exception("unhandled error in %s %s", spec.method, spec.path)
        return error_response(ApiError(500, "internal_error", "internal error; see the api function's log"))
    return render(result, spec.status)
