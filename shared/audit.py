"""The audit log: who changed what, written in the same transaction as the change, secrets masked.
Used by the API's services and the synthetic store, inside their transactions."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from shared.security import mask_secrets


async def record(
    conn: AsyncConnection,
    project_id: uuid.UUID,
    api_key_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: Any,
    changes: dict | None = None,
) -> None:
    await conn.execute(
        """insert into audit_log (project_id, api_key_id, action, object_type, object_id, changes)
           values (%s, %s, %s, %s, %s, %s)""",
        (
            project_id,
            api_key_id,
            action,
            object_type,
            str(object_id) if object_id else None,
            Jsonb(mask_secrets(changes or {}, project_id)),
        ),
    )
