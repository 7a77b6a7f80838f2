"""The OpenAPI 3.1 document, generated from the endpoint table and its pydantic models."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, get_args, get_origin

from pydantic.json_schema import models_json_schema

from shared.api.schemas import ErrorBody
from shared.synthetic.models import VARIABLE_NAME

REF_TEMPLATE = "#/components/schemas/{model}"
_ERRORS = {
    "400": "The request is invalid; the message names the field",
    "401": "Missing, malformed or revoked API key",
    "404": "No such object in this project",
    "405": "Method not allowed on this path",
}


def _model_of(annotation: Any) -> type:
    """list[Model] -> Model; Model -> Model."""
    return get_args(annotation)[0] if get_origin(annotation) is list else annotation


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    from shared.api.framework import ENDPOINTS

    wanted = [(ErrorBody, "serialization")]
    for spec in ENDPOINTS:
        if spec.body is not None:
            wanted.append((spec.body, "validation"))
        if spec.response is not None:
            wanted.append((_model_of(spec.response_model), "serialization"))
    # One pass over every model keeps names stable and separates input and output variants where they differ.
    refs, top = models_json_schema(list(dict.fromkeys(wanted)), ref_template=REF_TEMPLATE, by_alias=True)

    def schema_for(annotation: Any, mode: str) -> dict:
        ref = refs[(_model_of(annotation), mode)]
        return {"type": "array", "items": ref} if get_origin(annotation) is list else ref

    def body_schema_for(spec, annotation: Any, mode: str) -> dict:
        return _one_or_batch(spec, schema_for(annotation, mode))

    paths: dict[str, dict] = {}
    for spec in ENDPOINTS:
        operation: dict[str, Any] = {
            "operationId": spec.operation_id,
            "summary": spec.summary,
            "tags": [spec.tag],
            "parameters": _path_parameters(spec.path) + _query_parameters(spec.query),
            "responses": _responses(spec, schema_for, body_schema_for),
        }
        if not spec.authenticated:
            operation["security"] = []
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema_for(spec, spec.body, "validation")}},
            }
        elif spec.method == "PATCH":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        paths.setdefault(spec.path, {})[spec.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "supercheck-faas API",
            "version": "1.0.0",
            "description": "Project-scoped management API. Every request carries `Authorization: Bearer <key>`.",
        },
        "servers": [{"url": "/function/api"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def _one_or_batch(spec, one: dict) -> dict:
    """An endpoint taking a batch takes one body or an array of them, and answers in kind."""
    if not spec.batch_limit:
        return one
    return {"oneOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": spec.batch_limit}]}


def _responses(spec, schema_for, body_schema_for) -> dict:
    if spec.streaming:
        responses: dict[str, Any] = {
            "200": {
                "description": "An event stream",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        }
    elif spec.status == 204:
        responses = {"204": {"description": "Done"}}
    elif 300 <= spec.status < 400:
        responses = {
            str(spec.status): {
                "description": spec.summary,
                "headers": {"Location": {"schema": {"type": "string"}}},
            }
        }
    else:
        responses = {
            str(spec.status): {
                "description": spec.summary,
                "content": {
                    "application/json": {
                        "schema": body_schema_for(spec, spec.response_model, "serialization")
                        if spec.response
                        else {}
                    }
                },
            }
        }
    error = {"content": {"application/json": {"schema": schema_for(ErrorBody, "serialization")}}}
    for code, description in _ERRORS.items():
        if code == "401" and not spec.authenticated:
            continue
        responses[code] = {"description": description, **error}
    if spec.conflict:
        responses["409"] = {"description": spec.conflict, **error}
    return responses


# What a path segment holds: every *_id is a UUID, a variable's name is an identifier. Anything else is 404 (or
# 400 for a NUL); a raw newline never even reaches the API (functions-framework's catch-all route stops at it).


def _path_schema(name: str) -> dict:
    if name.endswith("_id"):
        return {"type": "string", "format": "uuid"}
    if name == "name":
        return {"type": "string", "pattern": VARIABLE_NAME.pattern}
    return {"type": "string"}


def _path_parameters(path: str) -> list[dict]:
    return [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name)}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _query_parameters(model) -> list[dict]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k != "title"},
        }
        for name, prop in schema["properties"].items()
    ]
