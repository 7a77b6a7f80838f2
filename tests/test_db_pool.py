"""The pool's checkout check: a quiet idle connection is handed out without a round trip, and one whose backend
went away (terminated, as a Postgres restart does) is dropped and replaced, so the caller's transaction works."""

from __future__ import annotations

from psycopg_pool import AsyncConnectionPool

from shared import db


async def _backend_pid() -> int:
    async with db.transaction() as conn:
        return (await (await conn.execute("select pg_backend_pid() as pid")).fetchone())["pid"]


def test_a_quiet_connection_is_handed_out_without_asking_postgres(aio, monkeypatch):
    asked = []
    check = AsyncConnectionPool.check_connection

    async def counted(conn):
        asked.append(conn)
        await check(conn)

    monkeypatch.setattr(AsyncConnectionPool, "check_connection", staticmethod(counted))
    aio.run(db.close_pool())  # a pool of one connection: the loop's may hold several from earlier tests
    first = aio.run(_backend_pid())
    assert [aio.run(_backend_pid()) for _ in range(5)] == [first] * 5  # the same pooled connection each time
    assert asked == []


def test_a_connection_whose_backend_was_terminated_is_replaced_before_it_is_handed_out(aio, infra):
    aio.run(db.close_pool())  # one connection, so the terminated one is the one handed out next
    terminated = aio.run(_backend_pid())
    infra.sql(f"select pg_terminate_backend({terminated}, 10000)")  # returns once it is gone
    replaced = aio.run(_backend_pid())  # would raise "terminating connection" if the dead one were handed out
    assert replaced != terminated
