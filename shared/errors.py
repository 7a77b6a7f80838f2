"""Errors that reach a caller: one JSON shape ({error: {code, message, field?}}), each naming its field.
Used by every function's HTTP edge (shared/handlers.py) and the API."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ApiError(Exception):
    """An error that maps to one JSON shape: {error: {code, message, field?}}."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def describe_error(error: dict[str, Any]) -> str:
    """Pydantic's message for one error, phrased for a person reading an API response."""
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field"
    message = error["msg"]
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validation_error_to_api_error(error: ValidationError) -> ApiError:
    first = error.errors()[0]
    context_error = (first.get("ctx") or {}).get("error")
    if isinstance(context_error, PrefixedValidationError):
        return ApiError(400, "validation_error", str(context_error), context_error.field)
    field = ".".join(str(part) for part in first["loc"]) or None
    message = describe_error(first)
    return ApiError(400, "validation_error", f"{field}: {message}" if field else message, field)


class PrefixedValidationError(ValueError):
    """Carries a nested model's first error out with its location, so messages name the exact field."""

    def __init__(self, error: ValidationError, prefix: tuple[str, ...]):
        first = error.errors()[0]
        location = first["loc"]
        nested = (first.get("ctx") or {}).get("error")
        if location and location[0] == "target":
            self.field = "target"
        elif isinstance(nested, PrefixedValidationError):  # a nested model's cross-field rule names its field
            self.field = ".".join(str(p) for p in (*prefix, *location, nested.field))
            ValueError.__init__(self, f"{self.field}: {str(nested).split(': ', 1)[-1]}")
            return
        else:
            self.field = ".".join(str(p) for p in (*prefix, *location))
        super().__init__(f"{self.field}: {describe_error(first)}")


class FieldError(PrefixedValidationError):
    """A cross-field rule's error that still names one field in the API answer."""

    def __init__(self, field: str, message: str):
        self.field = field
        ValueError.__init__(self, f"{field}: {message}")
