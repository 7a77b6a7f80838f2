"""The dashboard as one Starlette router: sign-in and sign-out, static files, the browser's door to the API, and
the pages of shared/dashboard/pages/. functions/dashboard hands each request to it."""

from __future__ import annotations

import secrets
from functools import lru_cache
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route, Router

from shared.dashboard import assets, pages  # noqa: F401  (pages registers the page table)
from shared.dashboard.bridge import ForwardedResponse
from shared.dashboard.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    cookie_is_secure,
    encode,
    new_session,
    tokens_match,
)
from shared.dashboard.web import BASE_PATH, PAGE_HEADERS, PAGES, Page, render_public, run_page, signed_in
from shared.errors import ApiError, describe_error
from shared.handlers import error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_LIMIT = 16 * 1024


class SignInForm(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    api_key: str = Field(min_length=1, max_length=200)
    csrf: str = Field(default="", max_length=200)
    next: str = Field(default="", max_length=2000)

    @field_validator("next")
    @classmethod
    def _only_our_pages(cls, value: str) -> str:
        # an absolute or protocol-relative address would make sign-in an open redirect
        inside = value.startswith(BASE_PATH + "/") and "//" not in value and "\\" not in value
        return value if inside else ""


def _cookie_options(request: Request) -> dict:
    scheme = request.headers.get("x-forwarded-proto", request.url.scheme)
    host = request.headers.get("x-forwarded-host", request.headers.get("host", ""))
    return {
        "httponly": True,
        "samesite": "strict",
        "secure": cookie_is_secure(scheme, host),
        "path": BASE_PATH,
    }


async def _form(request: Request) -> dict[str, str]:
    raw = await request.body()
    if len(raw) > _FORM_LIMIT:
        raise ApiError(413, "payload_too_large", "the form is larger than 16 KB")
    parsed = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


def _sign_in_page(request: Request, *, error: str = "", next_page: str = "", status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render_public(
        "login.html", status=status, csrf_token=token, error=error, next_page=next_page, signed_in=False
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_options(request))
    return response


async def sign_in(request: Request) -> Response:
    if request.method == "GET":
        return _sign_in_page(request, next_page=request.query_params.get("next", ""))
    fields = await _form(request)
    try:
        form = SignInForm.model_validate(fields)
    except ValidationError as invalid:
        first = invalid.errors()[0]
        return _sign_in_page(request, error=f"API key: {describe_error(first)}", status=400)
    if not tokens_match(form.csrf, request.cookies.get(LOGIN_CSRF_COOKIE, "")):
        return _sign_in_page(request, error="The form expired; sign in again.", status=403)
    from shared import auth

    try:
        principal = await auth.authenticate(f"Bearer {form.api_key}")
    except ApiError as refused:
        return _sign_in_page(request, error=refused.message, next_page=form.next, status=401)
    if principal.api_key_id is None:  # cannot happen with a Bearer header; a session must name a key
        return _sign_in_page(request, error="sign in with an API key", status=401)
    session = new_session(principal.api_key_id, principal.project_id)
    response = RedirectResponse(form.next or f"{BASE_PATH}/", status_code=303, headers=PAGE_HEADERS)
    response.set_cookie(SESSION_COOKIE, encode(session), max_age=SESSION_SECONDS, **_cookie_options(request))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=BASE_PATH)
    return response


async def sign_out(request: Request) -> Response:
    found = await signed_in(request)
    fields = await _form(request)
    if found is not None and not tokens_match(fields.get("csrf"), found[0].csrf_token):
        return error_response(ApiError(403, "csrf_refused", "the form's CSRF token is missing or wrong"))
    response = RedirectResponse(f"{BASE_PATH}/login", status_code=303, headers=PAGE_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path=BASE_PATH)
    return response


async def static_file(request: Request) -> Response:
    asset = assets.by_hashed_name(request.path_params["name"])
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(
        asset.content,
        media_type=asset.media_type,
        headers={"Cache-Control": assets.LONG_CACHE, "X-Content-Type-Options": "nosniff"},
    )


async def api_door(request: Request) -> Response:
    """The browser's scripts call the API here with the session, and a CSRF header on every change."""
    found = await signed_in(request)
    if found is None:
        return error_response(ApiError(401, "unauthorized", "sign in to the dashboard again"))
    session, principal = found
    if request.method not in SAFE_METHODS and not tokens_match(
        request.headers.get("x-csrf-token"), session.csrf_token
    ):
        return error_response(ApiError(403, "csrf_refused", "the X-CSRF-Token header is missing or wrong"))
    return ForwardedResponse(request, "/" + request.path_params["path"], principal)


def _page_route(spec: Page) -> Route:
    async def run(request: Request) -> Response:
        return await run_page(spec, request)

    return Route(spec.path, run, methods=list(spec.methods))


@lru_cache(maxsize=1)
def router() -> Router:
    async def not_found(scope, receive, send):
        response = render_public(
            "error.html", status=404, error=ApiError(404, "not_found", "no such page"), signed_in=False
        )
        await response(scope, receive, send)

    routes = [
        Route("/login", sign_in, methods=["GET", "POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/static/{name}", static_file, methods=["GET"]),
        Route("/api/{path:path}", api_door, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        *[_page_route(spec) for spec in PAGES],
    ]
    return Router(routes=routes, default=not_found)


class DashboardResponse(Response):
    """Hands the untouched ASGI request to the router (streaming included), the prefix stripped when the
    function is called directly rather than through a gateway that strips it."""

    def __init__(self, request: Request):
        self.scope = {**request.scope, "path_params": {}}
        path = self.scope["path"]
        if path.startswith(BASE_PATH):
            self.scope["path"] = path.removeprefix(BASE_PATH) or "/"
        self.receive = request.receive

    async def __call__(self, scope, receive, send) -> None:
        await router()(self.scope, self.receive, send)
