"""Applies the SQL files in migrations/ in order, once each, under an advisory lock: `python -m shared.migrate`.
Used by `make run`, deployments and the test fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import psycopg

from shared.settings import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 7_340_001  # any constant; keeps two migrators from interleaving


def apply_migrations(database_url: str) -> list[str]:
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(
                "create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())"
            )
            done = {row[0] for row in conn.execute("select name from schema_migrations")}
            for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("insert into schema_migrations (name) values (%s)", (path.name,))
                applied.append(path.name)
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (_LOCK_ID,))
    return applied


def main() -> None:
    applied = apply_migrations(get_settings().require_database_url())
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}", file=sys.stderr)


if __name__ == "__main__":
    main()
