"""Postgres connections: one async pool per event loop, so functions, the connector and tests share one path.
Used by every function except the connector."""

from __future__ import annotations

import asyncio
import select
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from shared.settings import get_settings

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
    weakref.WeakKeyDictionary()
)


async def get_pool() -> AsyncConnectionPool:
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        # The driver loads with the first connection: a module that only names db (a request that never
        # reaches the database) does not pay for it.
        from psycopg.rows import dict_row
        from psycopg_pool import AsyncConnectionPool

        pool = AsyncConnectionPool(
            get_settings().require_database_url(),
            min_size=1,
            max_size=10,
            kwargs={
                "row_factory": dict_row,
                "autocommit": False,
                "application_name": get_settings().function_name,
            },
            open=False,
            # A restarted Postgres leaves dead sockets in the pool; check before handing one out.
            check=check_unless_quiet,
        )
        await pool.open(wait=True, timeout=30)
        _pools[loop] = pool
    return pool


async def check_unless_quiet(conn: AsyncConnection) -> None:
    """The pool's check, asked only when the idle connection's socket has something to read.

    An idle connection is sent nothing unless it is going away: a Postgres stopping or restarted, or a backend
    terminated, sends its FATAL notice or closes the socket, and either makes it readable. A quiet socket is
    handed out as it is; one with something waiting gets psycopg's round trip, which raises if it is dead. The
    round trip on every checkout was 9 % of aggregate's CPU and one more statement per transaction for Postgres
    (py-spy, bench/ping_ingest.py). A connection cut without a word (a network partition) fails its first
    statement either way, as it did with the round trip."""
    if conn.closed or conn.broken:
        raise ConnectionError("connection closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        from psycopg_pool import AsyncConnectionPool

        await AsyncConnectionPool.check_connection(conn)


@asynccontextmanager
async def transaction() -> AsyncIterator[AsyncConnection]:
    """A connection inside one transaction: committed on success, rolled back on any error."""
    pool = await get_pool()
    async with pool.connection() as conn:
        async with conn.transaction():
            yield conn


async def close_pool() -> None:
    loop = asyncio.get_running_loop()
    pool = _pools.pop(loop, None)
    if pool is not None:
        await pool.close()
