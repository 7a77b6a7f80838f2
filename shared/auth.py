"""API keys: random tokens shown once, stored only as hashes, scoped to one project.
Used by the API (shared/api/framework.py authenticates every request), the functions that take parameters
(shared/handlers.py) and `python -m shared.auth bootstrap`."""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass

from psycopg import AsyncConnection

from shared.errors import ApiError
from shared.settings import get_settings

KEY_PREFIX = "sck_"
_KEY_BYTES = 32
_PREFIX_CHARS = 8


@dataclass(frozen=True)
class Principal:
    project_id: uuid.UUID
    api_key_id: uuid.UUID | None  # None: the anonymous local-development principal


def new_key() -> str:
    return KEY_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(_KEY_BYTES)).decode().rstrip("=")


def key_hash(key: str) -> bytes:
    # The key carries 256 random bits, so a fast hash is enough; a password KDF would only slow every request.
    return hashlib.sha256(key.encode()).digest()


def key_prefix(key: str) -> str:
    return key[: len(KEY_PREFIX) + _PREFIX_CHARS]


async def store_key(
    conn: AsyncConnection, project_id: uuid.UUID, name: str, key: str | None = None
) -> tuple[dict, str]:
    key = key or new_key()
    row = await (
        await conn.execute(
            """insert into api_keys (project_id, name, prefix, key_hash) values (%s, %s, %s, %s)
               on conflict (key_hash) do update set revoked_at = null
               returning id, project_id, name, prefix, created_at, last_used_at, revoked_at""",
            (project_id, name, key_prefix(key), key_hash(key)),
        )
    ).fetchone()
    return row, key


async def principal_for(conn: AsyncConnection, key: str) -> Principal | None:
    row = await (
        await conn.execute(
            """update api_keys set last_used_at = now()
               where key_hash = %s and revoked_at is null returning id, project_id""",
            (key_hash(key),),
        )
    ).fetchone()
    return Principal(row["project_id"], row["id"]) if row else None


async def principal_of_key_id(conn: AsyncConnection, api_key_id: uuid.UUID) -> Principal | None:
    """The principal of a key named by id (a dashboard session), while the key is unrevoked."""
    row = await (
        await conn.execute(
            "select id, project_id from api_keys where id = %s and revoked_at is null", (api_key_id,)
        )
    ).fetchone()
    return Principal(row["project_id"], row["id"]) if row else None


async def authenticate(authorization: str) -> Principal:
    """The principal of an Authorization header's value ("Bearer <api key>"), for the API and every function
    that takes parameters. Without a header, only the local anonymous mode (SC_ALLOW_ANONYMOUS_LOCAL, which
    `make run` sets so the seed's curl examples work) acts, in the default project."""
    from shared import db

    scheme, _, key = authorization.partition(" ")
    if not authorization:
        if get_settings().allow_anonymous_local:
            async with db.transaction() as conn:
                row = await (await conn.execute("select id from projects where is_default")).fetchone()
            return Principal(row["id"], None)
        raise ApiError(401, "unauthorized", "missing Authorization: Bearer <api key> header")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(401, "unauthorized", "Authorization header must be 'Bearer <api key>'")
    async with db.transaction() as conn:
        principal = await principal_for(conn, key.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "API key is not valid or has been revoked")
    return principal


async def bootstrap(conn: AsyncConnection) -> str | None:
    """First start: give the default project a key. SC_BOOTSTRAP_API_KEY pins it (scripts, CI).

    Returns the key when one was created now, so the caller can print it once.
    """
    project = await (await conn.execute("select id from projects where is_default")).fetchone()
    pinned = get_settings().bootstrap_api_key
    if pinned:
        if len(pinned) < 32:
            raise ValueError("SC_BOOTSTRAP_API_KEY must be at least 32 characters")
        exists = await (
            await conn.execute("select 1 from api_keys where key_hash = %s", (key_hash(pinned),))
        ).fetchone()
        if exists:
            return None
        await store_key(conn, project["id"], "bootstrap", pinned)
        return pinned
    has_key = await (
        await conn.execute("select 1 from api_keys where project_id = %s limit 1", (project["id"],))
    ).fetchone()
    if has_key:
        return None
    _, key = await store_key(conn, project["id"], "bootstrap")
    return key


def main() -> None:
    """`python -m shared.auth bootstrap`: the first API key of a deployment's default project, printed once."""
    import asyncio
    import sys

    from shared import db

    if sys.argv[1:] != ["bootstrap"]:
        print("usage: python -m shared.auth bootstrap", file=sys.stderr)
        raise SystemExit(2)

    async def run() -> str | None:
        try:
            async with db.transaction() as conn:
                return await bootstrap(conn)
        finally:
            await db.close_pool()

    key = asyncio.run(run())
    if key:
        print(key)
    else:
        print(
            "the default project already has a key; create more with POST /function/api/api-keys",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
