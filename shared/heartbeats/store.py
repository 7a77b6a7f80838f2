"""A heartbeat monitor's row beside its monitor: made when the monitor is saved as a heartbeat (with a new
token), its alarm recomputed when its schedule changes, its token rotated. In the API's transactions
(shared/api/services/monitors.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from psycopg import AsyncConnection

from shared.checks import HEARTBEAT_TYPE
from shared.heartbeats.tokens import new_token, seal, token_hash
from shared.rules.heartbeats import HeartbeatSchedule, alarm

_CREATE = """
insert into heartbeats (monitor_id, token_hash, token_encrypted, alarm_at, alarm_due, alarm_reason)
values (%s, %s, %s, %s, %s, %s)
on conflict (monitor_id) do update
set alarm_at = excluded.alarm_at, alarm_due = excluded.alarm_due, alarm_reason = excluded.alarm_reason,
    updated_at = now()
"""


async def after_save(conn: AsyncConnection, monitor: dict) -> None:
    """A monitor saved as a heartbeat has its row (a new one with a token, or its alarm recomputed from its last
    completion under the saved schedule); a monitor saved as another type has none."""
    if monitor["type"] != HEARTBEAT_TYPE:
        await conn.execute("delete from heartbeats where monitor_id = %s", (monitor["id"],))
        return
    current = await (
        await conn.execute(
            "select last_completed_at, open_start_at from heartbeats where monitor_id = %s", (monitor["id"],)
        )
    ).fetchone()
    reference = (current and current["last_completed_at"]) or monitor["created_at"]
    upcoming = alarm(
        HeartbeatSchedule.from_config(monitor["config"]), reference, current and current["open_start_at"]
    )
    token = new_token()  # kept only when the row is new
    await conn.execute(
        _CREATE,
        (
            monitor["id"],
            token_hash(token),
            seal(token, monitor["project_id"]),
            upcoming.at,
            upcoming.due,
            upcoming.reason,
        ),
    )


async def rotate_token(conn: AsyncConnection, monitor_id: uuid.UUID, project_id: uuid.UUID) -> bool:
    """A new token for the heartbeat: the old ping URL answers 404 from now on. False: not a heartbeat."""
    token = new_token()
    rotated = await (
        await conn.execute(
            """update heartbeats set token_hash = %s, token_encrypted = %s, updated_at = %s, token_rotated_at = %s
               where monitor_id = %s returning monitor_id""",
            (token_hash(token), seal(token, project_id), *[datetime.now(UTC)] * 2, monitor_id),
        )
    ).fetchone()
    return rotated is not None
