"""Validated shapes for synthetic tests and project variables, and the script rules they enforce."""

from __future__ import annotations

import ast
import base64
import binascii
import re
import uuid
from datetime import datetime

from pydantic import Field, field_validator, model_validator

from shared.models import ApiModel

MAX_SCRIPT_BYTES = 256 * 1024
MAX_VARIABLE_BYTES = 10 * 1024
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
RUN_SIGNATURE = "async def run(page, context, variables)"


def decode_base64_script(encoded: str) -> str:
    try:
        raw = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("does not decode to UTF-8 text") from None


def script_problem(script: str) -> str | None:
    """Why a script cannot run, or None: it must parse and define `async def run(page, context, variables)`."""
    if len(script.encode()) > MAX_SCRIPT_BYTES:
        return f"is larger than {MAX_SCRIPT_BYTES // 1024} KiB"
    try:
        tree = ast.parse(script, filename="<synthetic test>")
    except SyntaxError as error:
        return f"line {error.lineno}: {error.msg}"
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name == "run":
            positional = len(node.args.posonlyargs) + len(node.args.args)
            if positional >= 3 or node.args.vararg:
                return None
            return f"run() must take three arguments: {RUN_SIGNATURE}"
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            return f"run() must be async: {RUN_SIGNATURE}"
    return f"must define {RUN_SIGNATURE} at the top level"


class _ScriptInput(ApiModel):
    """`script` as Python text, or `scriptBase64`; at most one of them."""

    script: str | None = None
    script_base64: str | None = Field(default=None, max_length=MAX_SCRIPT_BYTES * 2)

    @field_validator("script_base64")
    @classmethod
    def _decodes(cls, encoded: str | None) -> str | None:
        if encoded is None:
            return None
        script = decode_base64_script(encoded)
        if problem := script_problem(script):
            raise ValueError(f"decoded script {problem}")
        return script

    @model_validator(mode="after")
    def _one_script(self):
        if self.script is not None and self.script_base64 is not None:
            raise ValueError("give either script or scriptBase64, not both")
        if self.script_base64 is not None:
            self.script, self.script_base64 = self.script_base64, None
        return self

    @field_validator("script")
    @classmethod
    def _runnable(cls, script: str | None) -> str | None:
        if script is not None and (problem := script_problem(script)):
            raise ValueError(problem)
        return script


class SyntheticTestCreate(_ScriptInput):
    title: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _script_required(self) -> SyntheticTestCreate:
        if self.script is None:
            raise ValueError("script (or scriptBase64) is required")
        return self


class SyntheticTestUpdate(_ScriptInput):
    title: str | None = Field(default=None, min_length=1, max_length=200)


class SyntheticTestOut(ApiModel):
    id: uuid.UUID
    project_id: uuid.UUID
    title: str
    script: str
    created_at: datetime
    updated_at: datetime


class ProjectVariableCreate(ApiModel):
    name: str
    value: str = Field(max_length=MAX_VARIABLE_BYTES)
    is_secret: bool = False

    @field_validator("name")
    @classmethod
    def _identifier(cls, name: str) -> str:
        if not VARIABLE_NAME.match(name):
            raise ValueError(
                "must start with a letter or underscore and hold only letters, digits, underscores (max 64)"
            )
        return name


class ProjectVariableUpdate(ApiModel):
    value: str | None = Field(default=None, max_length=MAX_VARIABLE_BYTES)
    is_secret: bool | None = None


class ProjectVariableOut(ApiModel):
    """A secret's value is shown masked, never in plaintext."""

    name: str
    value: str
    is_secret: bool
    created_at: datetime
    updated_at: datetime
