"""Pings written together (group commit, shared/heartbeats/ping.py): many concurrent pings of several tokens go
out in one batch, each applied in arrival order and answered with its own outcome, against real Postgres and
Redis."""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit

import pytest

from shared import streams
from shared.heartbeats.group_commit import GroupCommit, group_commit_for
from shared.heartbeats.ping import (
    PingReceipt,
    PingRefused,
    _take_batch,
    finalized_in_background,
    parse_ping,
    receive_ping,
)
from shared.heartbeats.tokens import token_hash
from tests.factories import default_project


def create_heartbeat(aio, infra, name: str, enabled: bool = True) -> tuple[str, str]:
    """A heartbeat made through the API's service: its monitor id and its token."""
    from shared.api.requests import MonitorCreate
    from shared.api.services import monitors

    async def create():
        spec = MonitorCreate.model_validate(
            {
                "name": name,
                "type": "heartbeat",
                "enabled": enabled,
                "config": {"periodSeconds": 3600, "graceSeconds": 60},
            }
        )
        row = await monitors.create_monitor(default_project(infra), None, spec)
        shown = monitors.monitor_out(await monitors.get_monitor(default_project(infra), row["id"]))
        return str(row["id"]), urlsplit(shown.ping_url).path.rsplit("/", 1)[1]

    return aio.run(create())


def ping(token: str, suffix: str = "", query: dict | None = None, headers: dict | None = None, body=b""):
    return parse_ping(f"/{token}{suffix}", query or {}, headers or {}, body)


async def in_one_batch(pings) -> tuple[list, int]:
    """The pings submitted at once, as concurrent requests are: their outcomes and how many batches took them."""
    group = group_commit_for(_take_batch)
    before = group.batches
    outcomes = await asyncio.gather(*(receive_ping(p) for p in pings), return_exceptions=True)
    return outcomes, group.batches - before


def stored_pings(infra, monitor_id: str) -> list[tuple]:
    return infra.sql(
        "select kind, rid, run_id is not null from heartbeat_pings where monitor_id = %s order by id",
        (monitor_id,),
    )


def stored_results(infra, monitor_id: str) -> list[tuple]:
    return infra.sql(
        """select r.status, r.response_time_ms, r.is_status_change from monitor_results r
           where r.monitor_id = %s order by r.checked_at""",
        (monitor_id,),
    )


def test_concurrent_pings_of_several_tokens_are_one_batch_each_counted_right(aio, infra, clean):
    nightly_id, nightly = create_heartbeat(aio, infra, "nightly")
    backup_id, backup = create_heartbeat(aio, infra, "backup")
    paused_id, paused = create_heartbeat(aio, infra, "paused", enabled=False)
    limited_id, limited = create_heartbeat(aio, infra, "limited")
    rid = str(uuid.uuid4())
    # the limited token has used its minute already
    minute = int(time.time() // 60)
    for m in (minute, minute + 1):
        infra.redis().set(streams.ping_rate_key(token_hash(limited).hex(), m), 60)

    pings = [
        ping(nightly),
        ping(backup, "/start", {"rid": rid}),
        ping(nightly, "/fail"),
        ping(backup, "/log", body=b"halfway"),
        ping(backup, "", {"rid": rid}),
        ping(backup, "", {"rid": rid}),  # a retry of the end, in the same batch
        ping(nightly, "/fail", headers={"idempotency-key": "job-7"}),
        ping(nightly, "/fail", headers={"idempotency-key": "job-7"}),  # a retry, in the same batch
        ping(paused),
        ping(uuid.uuid4().hex),  # no heartbeat has it
        ping(limited),
        ping(nightly),
    ]
    outcomes, batches = aio.run(in_one_batch(pings))

    assert batches == 1, "submitted together, written together"
    answers = [
        o.status if isinstance(o, PingRefused) else ("counted" if o.counted else "retry") for o in outcomes
    ]
    assert answers == ["counted"] * 5 + ["retry", "counted", "retry", "counted", 404, 429, "counted"]
    assert stored_pings(infra, nightly_id) == [
        ("success", None, True),
        ("fail", None, True),
        ("fail", None, True),
        ("success", None, True),
    ]
    assert [(s, change) for s, _, change in stored_results(infra, nightly_id)] == [
        ("up", True),
        ("down", True),
        ("down", False),
        ("up", True),
    ], "each result's status change against the one before it in the batch"
    assert stored_pings(infra, backup_id) == [
        ("start", rid, False),
        ("log", None, False),
        ("success", rid, True),
    ]
    ((status, duration, _),) = stored_results(infra, backup_id)
    assert status == "up" and duration is not None and duration >= 0, "the end is timed from its start"
    assert infra.sql("select open_start_at from heartbeats where monitor_id = %s", (backup_id,)) == [(None,)]
    assert stored_pings(infra, paused_id) == [("success", None, False)], "paused: the ping, no run"
    assert stored_pings(infra, limited_id) == []

    # every run finalized by the ping function itself, in the order of the pings, none left for aggregate
    run_ids = [o.run_id for o in outcomes if isinstance(o, PingReceipt) and o.run_id]
    assert len(run_ids) == 5
    aio.run(finalized_in_background())
    finalized = infra.sql(
        "select id, status from runs where finalized_at is not null and id = any(%s) order by scheduled_at",
        (run_ids,),
    )
    assert [run_id for run_id, _ in finalized] == run_ids
    assert infra.sql("select status from monitors where id = %s", (nightly_id,)) == [("up",)]  # its last ping
    assert infra.sql("select status from monitors where id = %s", (backup_id,)) == [("up",)]
    assert infra.redis().xlen(streams.RESULTS_STREAM) == 0
    last_completed = infra.sql(
        "select max(received_at) from heartbeat_pings where monitor_id = %s and kind <> 'log'", (nightly_id,)
    )[0][0]
    assert infra.sql("select last_completed_at from heartbeats where monitor_id = %s", (nightly_id,)) == [
        (last_completed,)
    ]


def test_runs_the_function_cannot_finalize_are_announced_for_aggregate(aio, infra, clean, monkeypatch):
    from shared.pipeline import aggregate

    async def unreachable(run_ids, now=None):
        raise ConnectionError("Postgres went away after the pings committed")

    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    monkeypatch.setattr(aggregate, "finalize_runs", unreachable)
    (receipt,), _ = aio.run(in_one_batch([ping(token)]))
    aio.run(finalized_in_background())
    assert infra.sql("select count(*) from runs where finalized_at is null") == [(1,)]
    announced = [streams.decode(f)["run_id"] for _, f in infra.redis().xrange(streams.RESULTS_STREAM)]
    assert announced == [str(receipt.run_id)]  # aggregate finalizes it from sc:results


def test_a_retry_in_a_later_batch_is_still_counted_once(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    rid = str(uuid.uuid4())
    first, _ = aio.run(in_one_batch([ping(token, "", {"rid": rid})]))
    again, _ = aio.run(in_one_batch([ping(token, "", {"rid": rid}), ping(token, "/log")]))
    assert [o.counted for o in first + again] == [True, False, True]
    assert [kind for kind, _, _ in stored_pings(infra, monitor_id)] == ["success", "log"]


def test_a_ping_the_database_refuses_fails_alone_not_its_batch(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    good = ping(token, "/log", body=b"fine")
    # past validation, a text Postgres cannot hold (parse_ping keeps NUL out; this one skips it)
    bad = good.model_copy(update={"message": "nul \x00 inside"})
    outcomes, _ = aio.run(in_one_batch([good, bad, ping(token, "/log")]))
    assert isinstance(outcomes[0], PingReceipt) and isinstance(outcomes[2], PingReceipt)
    assert isinstance(outcomes[1], Exception) and not isinstance(outcomes[1], PingRefused)
    assert len(stored_pings(infra, monitor_id)) == 2


@pytest.mark.parametrize("size", [1, 3])
def test_a_group_commit_answers_each_submitter_with_its_own_outcome(aio, size):
    batches: list[list[int]] = []

    async def write(items):
        batches.append(items)
        return [ValueError(item) if item % 2 else item * 10 for item in items]

    async def submit_all():
        group = GroupCommit(write, max_batch=size)
        return await asyncio.gather(*(group.submit(n) for n in range(6)), return_exceptions=True)

    outcomes = aio.run(submit_all())
    assert [o if isinstance(o, int) else f"error {o}" for o in outcomes] == [
        0,
        "error 1",
        20,
        "error 3",
        40,
        "error 5",
    ]
    assert batches == [list(range(6))[i : i + size] for i in range(0, 6, size)]
