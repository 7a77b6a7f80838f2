"""Validated shapes for synthetic tests and project variables, and the script rules they enforce.
Used by the API's synthetic test and variable bodies and the synthetic check."""

from __future__ import annotations

import ast
import base64
import binascii
import re

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
