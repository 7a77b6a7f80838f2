"""Re-encrypts every stored credential under the newest key and the newest format: `python -m shared.rekey`
after adding a key, and once after upgrading to bound ciphertexts (enc:v2, bound to their project and field).

Safe to run while the system runs, and again: each table's rows are locked while they are rewritten, and a row
already under the primary key in the newest format is left as it is."""

from __future__ import annotations

import asyncio
import sys
import uuid

from psycopg.types.json import Jsonb

from shared import db
from shared.security import Binding, KeyRing, is_encrypted, key_ring, provider_binding
from shared.synthetic.store import variable_binding


def reencrypt_value(
    value: object, ring: KeyRing, project_id: uuid.UUID, path: tuple[str, ...] = ()
) -> tuple[object, int]:
    """Returns the value with every ciphertext not current re-encrypted, and how many changed.

    path: where value sits in its row (('config',) for a monitor's config): it names each ciphertext's field.
    """
    if isinstance(value, dict):
        changed = 0
        out = {}
        for key, item in value.items():
            out[key], count = reencrypt_value(item, ring, project_id, (*path, str(key)))
            changed += count
        return out, changed
    if isinstance(value, list):
        pairs = [reencrypt_value(item, ring, project_id, path) for item in value]
        return [item for item, _ in pairs], sum(count for _, count in pairs)
    if is_encrypted(value) and ring.needs_reencryption(value):
        binding = Binding(project_id, ".".join(path))
        return ring.encrypt(ring.decrypt(value, binding), binding), 1
    return value, 0


async def _providers(conn, ring: KeyRing) -> int:
    changed = 0
    rows = await (
        await conn.execute("select id, project_id, config_encrypted from notification_providers for update")
    ).fetchall()
    for row in rows:
        if ring.needs_reencryption(row["config_encrypted"]):
            binding = provider_binding(row["project_id"])
            await conn.execute(
                "update notification_providers set config_encrypted = %s where id = %s",
                (ring.encrypt(ring.decrypt(row["config_encrypted"], binding), binding), row["id"]),
            )
            changed += 1
    return changed


async def _monitors(conn, ring: KeyRing) -> int:
    changed = 0
    rows = await (await conn.execute("select id, project_id, config from monitors for update")).fetchall()
    for row in rows:
        config, count = reencrypt_value(row["config"], ring, row["project_id"], ("config",))
        if count:
            await conn.execute("update monitors set config = %s where id = %s", (Jsonb(config), row["id"]))
            changed += count
    return changed


async def _variables(conn, ring: KeyRing) -> int:
    changed = 0
    rows = await (
        await conn.execute("select project_id, name, value from project_variables where is_secret for update")
    ).fetchall()
    for row in rows:
        if is_encrypted(row["value"]) and ring.needs_reencryption(row["value"]):
            binding = variable_binding(row["project_id"], row["name"])
            await conn.execute(
                "update project_variables set value = %s where project_id = %s and name = %s",
                (ring.encrypt(ring.decrypt(row["value"], binding), binding), row["project_id"], row["name"]),
            )
            changed += 1
    return changed


async def reencrypt_all() -> dict[str, int]:
    ring = key_ring()
    async with db.transaction() as conn:
        return {
            "notification_providers": await _providers(conn, ring),
            "monitors": await _monitors(conn, ring),
            "project_variables": await _variables(conn, ring),
        }


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
