"""Re-encrypts every stored credential under the newest key: `python -m shared.rekey` after adding a key."""

from __future__ import annotations

import asyncio
import sys

from psycopg.types.json import Jsonb

from shared import db
from shared.security import KeyRing, is_encrypted, key_ring


def reencrypt_value(value: object, ring: KeyRing) -> tuple[object, int]:
    """Returns the value with every ciphertext not under the primary key re-encrypted, and how many changed."""
    if isinstance(value, dict):
        changed = 0
        out = {}
        for key, item in value.items():
            out[key], count = reencrypt_value(item, ring)
            changed += count
        return out, changed
    if isinstance(value, list):
        pairs = [reencrypt_value(item, ring) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    if is_encrypted(value) and ring.needs_reencryption(value):
        return ring.encrypt(ring.decrypt(value)), 1
    return value, 0


async def _existing_tables(conn) -> set[str]:
    rows = await (
        await conn.execute("select tablename from pg_tables where schemaname = 'public'")
    ).fetchall()
    return {row["tablename"] for row in rows}


async def reencrypt_all() -> dict[str, int]:
    ring = key_ring()
    counts = {"notification_providers": 0, "monitors": 0, "project_variables": 0}
    async with db.transaction() as conn:
        tables = await _existing_tables(conn)
        rows = await (
            await conn.execute("select id, config_encrypted from notification_providers for update")
        ).fetchall()
        for row in rows:
            if ring.needs_reencryption(row["config_encrypted"]):
                await conn.execute(
                    "update notification_providers set config_encrypted = %s where id = %s",
                    (ring.encrypt(ring.decrypt(row["config_encrypted"])), row["id"]),
                )
                counts["notification_providers"] += 1
        for row in await (await conn.execute("select id, config from monitors for update")).fetchall():
            config, changed = reencrypt_value(row["config"], ring)
            if changed:
                await conn.execute(
                    "update monitors set config = %s where id = %s", (Jsonb(config), row["id"])
                )
                counts["monitors"] += changed
        if "project_variables" in tables:
            columns = {
                row["column_name"]
                for row in await (
                    await conn.execute(
                        "select column_name from information_schema.columns where table_name = 'project_variables'"
                    )
                ).fetchall()
            }
            column = "value_encrypted" if "value_encrypted" in columns else "value"
            for row in await (
                await conn.execute(
                    f"select ctid::text as ref, {column} as value from project_variables for update"
                )
            ).fetchall():
                if is_encrypted(row["value"]) and ring.needs_reencryption(row["value"]):
                    await conn.execute(
                        f"update project_variables set {column} = %s where ctid = %s::tid",
                        (ring.encrypt(ring.decrypt(row["value"])), row["ref"]),
                    )
                    counts["project_variables"] += 1
    return counts


def main() -> None:
    async def run():
        try:
            return await reencrypt_all()
        finally:
            await db.close_pool()

    counts = asyncio.run(run())
    print(f"re-encrypted under key '{key_ring().primary_id}': {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
