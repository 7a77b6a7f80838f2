"""Pings taken in and written in batches, against real Postgres and Redis: the ping function's part
(shared/heartbeats/intake.py: concurrent pings in one Redis script run, each answered with its own outcome, put on
sc:pings) and aggregate's (shared/heartbeats/record.py: the entries written in order, each once, their runs
finalized), and the sweep holding alarms back while pings are queued."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from shared import streams
from shared.heartbeats import intake
from shared.heartbeats.group_commit import GroupCommit, group_commit_for
from shared.heartbeats.ping import PingEnvelope, PingRefused, parse_ping
from shared.heartbeats.record import PingSkipped, PingWritten, record_ping_batch, record_pings
from shared.heartbeats.sweep import pings_written_until, sweep_overdue_heartbeats
from shared.heartbeats.tokens import token_hash
from tests.factories import default_project


def create_heartbeat(aio, infra, name: str, enabled: bool = True, grace: int = 60) -> tuple[str, str]:
    """A heartbeat made through the API's service: its monitor id and its token."""
    from shared.api.requests import MonitorCreate
    from shared.api.services import monitors

    async def create():
        spec = MonitorCreate.model_validate(
            {
                "name": name,
                "type": "heartbeat",
                "enabled": enabled,
                "config": {"periodSeconds": 3600, "graceSeconds": grace},
            }
        )
        row = await monitors.create_monitor(default_project(infra), None, spec)
        shown = monitors.monitor_out(await monitors.get_monitor(default_project(infra), row["id"]))
        return str(row["id"]), urlsplit(shown.ping_url).path.rsplit("/", 1)[1]

    return aio.run(create())


def ping(token: str, suffix: str = "", query: dict | None = None, headers: dict | None = None, body=b""):
    return parse_ping(f"/{token}{suffix}", query or {}, headers or {}, body)


async def in_one_batch(pings) -> tuple[list, int]:
    """The pings submitted at once, as concurrent requests are: their answers and how many batches took them."""
    group = group_commit_for(intake._accept_batch)
    before = group.batches
    outcomes = await asyncio.gather(*(intake.receive_ping(p) for p in pings), return_exceptions=True)
    return outcomes, group.batches - before


def queued(infra) -> list[tuple[str, dict]]:
    """sc:pings as the connector would read it: (entry id, decoded payload)."""
    return [
        (entry_id, streams.decode(fields)) for entry_id, fields in infra.redis().xrange(streams.PINGS_STREAM)
    ]


def delivered(entries: list[tuple[str, dict]]) -> dict:
    """The connector's POST body for these entries."""
    return {
        "messages": [
            {"id": entry_id, "stream": streams.PINGS_STREAM, "deliveries": 1, "data": data}
            for entry_id, data in entries
        ]
    }


def write_queued(aio, infra) -> list:
    """What aggregate does with the queued pings, in one batch: each one's outcome."""
    return aio.run(record_pings([PingEnvelope.model_validate(data) for _, data in queued(infra)]))


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


def test_concurrent_pings_are_taken_in_one_script_run_then_written_in_order(aio, infra, clean):
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

    assert batches == 1, "submitted together, taken in together"
    answers = [
        o.status if isinstance(o, PingRefused) else ("counted" if o.counted else "retry") for o in outcomes
    ]
    assert answers == ["counted"] * 5 + ["retry", "counted", "retry", "counted", 404, 429, "counted"]
    entries = queued(infra)
    assert [data["ping_kind"] for _, data in entries] == [
        "success",
        "start",
        "fail",
        "log",
        "success",
        "fail",
        "success",
        "success",
    ], "in arrival order, retries and refusals left out"
    for token in (nightly, backup, paused):
        assert not [e for e in infra.redis().xrange(streams.PINGS_STREAM) if token in str(e)], "hashes only"
    assert stored_pings(infra, nightly_id) == [], "nothing written before aggregate takes the batch"

    reply = json.loads(aio.run(record_ping_batch(delivered(entries))).body)
    assert reply["processed"] == [entry_id for entry_id, _ in entries] and reply["written"] == len(entries)
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

    # every run finalized by aggregate at once, in the order of the pings
    finalized = infra.sql(
        """select r.monitor_id::text from runs r where r.finalized_at is not null order by r.scheduled_at"""
    )
    assert [m for (m,) in finalized] == [nightly_id, nightly_id, backup_id, nightly_id, nightly_id]
    assert infra.sql("select status from monitors where id = %s", (nightly_id,)) == [("up",)]  # its last ping
    assert infra.sql("select status from monitors where id = %s", (backup_id,)) == [("up",)]
    last_completed = infra.sql(
        "select max(received_at) from heartbeat_pings where monitor_id = %s and kind <> 'log'", (nightly_id,)
    )[0][0]
    assert infra.sql("select last_completed_at from heartbeats where monitor_id = %s", (nightly_id,)) == [
        (last_completed,)
    ]


def test_an_entry_delivered_again_is_written_once(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    aio.run(in_one_batch([ping(token), ping(token, "/log")]))
    first = write_queued(aio, infra)
    again = write_queued(aio, infra)  # the connector's redelivery after aggregate's answer was lost
    assert [type(o) for o in first] == [PingWritten, PingWritten]
    assert again == [PingSkipped("already counted")] * 2
    assert [kind for kind, _, _ in stored_pings(infra, monitor_id)] == ["success", "log"]
    assert infra.sql("select count(*) from runs where monitor_id = %s", (monitor_id,)) == [(1,)]


def test_a_retry_in_a_later_batch_is_still_counted_once(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    rid = str(uuid.uuid4())
    first, _ = aio.run(in_one_batch([ping(token, "", {"rid": rid})]))
    again, _ = aio.run(in_one_batch([ping(token, "", {"rid": rid}), ping(token, "/log")]))
    assert [o.counted for o in first + again] == [True, False, True]
    write_queued(aio, infra)
    assert [kind for kind, _, _ in stored_pings(infra, monitor_id)] == ["success", "log"]
    # the mark in Redis expires; the database's key still tells the retry apart
    infra.redis().delete(*infra.redis().keys(streams.PING_SEEN_PREFIX + "*"))
    infra.redis().delete(streams.PINGS_STREAM)
    (late_retry,), _ = aio.run(in_one_batch([ping(token, "", {"rid": rid})]))
    assert late_retry.counted  # the ping function cannot tell any more
    assert write_queued(aio, infra) == [PingSkipped("already counted")]
    assert [kind for kind, _, _ in stored_pings(infra, monitor_id)] == ["success", "log"]


def test_a_ping_the_database_refuses_is_dead_lettered_alone_not_its_batch(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    aio.run(in_one_batch([ping(token, "/log", body=b"fine"), ping(token, "/log"), ping(token, "/log")]))
    entries = queued(infra)
    # past validation, a text Postgres cannot hold (parse_ping keeps NUL out; this entry skips it)
    entries[1][1]["message"] = "nul \x00 inside"
    reply = json.loads(aio.run(record_ping_batch(delivered(entries))).body)
    assert reply["processed"] == [entries[0][0], entries[2][0]]
    assert reply["rejected"] == [
        {"id": entries[1][0], "error": "the database refused the ping (UntranslatableCharacter)"}
    ]
    assert len(stored_pings(infra, monitor_id)) == 2


def test_an_entry_that_is_not_a_ping_is_rejected_naming_the_field(aio, infra, clean):
    reply = json.loads(
        aio.run(record_ping_batch(delivered([("1-0", {"kind": "ping", "ping_id": "not-a-uuid"})]))).body
    )
    assert reply["processed"] == []
    assert reply["rejected"][0]["id"] == "1-0" and "ping_id" in reply["rejected"][0]["error"]


def test_a_rotated_token_is_refused_at_once_and_its_queued_pings_still_count(aio, infra, clean):
    from shared.api.services import monitors

    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    (before,), _ = aio.run(in_one_batch([ping(token)]))  # cached as known
    assert before.counted
    aio.run(monitors.rotate_ping_token(default_project(infra), None, uuid.UUID(monitor_id)))
    (after,), _ = aio.run(in_one_batch([ping(token)]))
    assert isinstance(after, PingRefused) and after.status == 404, "the epoch moved: the cache was dropped"

    # the ping queued before the rotation counts; one let in after it (a missed epoch bump) does not
    ((entry_id, data),) = queued(infra)
    stale = {**data, "ping_id": str(uuid.uuid4()), "received_at": datetime.now(UTC).isoformat()}
    outcomes = aio.run(record_pings([PingEnvelope.model_validate(d) for d in (data, stale)]))
    assert type(outcomes[0]) is PingWritten
    assert outcomes[1] == PingSkipped("it came after its token was rotated")
    assert len(stored_pings(infra, monitor_id)) == 1


def test_a_deleted_heartbeat_s_url_is_refused_at_once_and_its_queued_pings_are_dropped(aio, infra, clean):
    from shared.api.services import monitors

    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    (before,), _ = aio.run(in_one_batch([ping(token)]))
    assert before.counted
    aio.run(monitors.delete_monitor(default_project(infra), None, uuid.UUID(monitor_id)))
    (after,), _ = aio.run(in_one_batch([ping(token)]))
    assert isinstance(after, PingRefused) and after.status == 404
    assert write_queued(aio, infra) == [PingSkipped("its monitor is no longer a heartbeat")]


def test_a_ping_delivered_long_after_later_ones_is_kept_but_moves_nothing(aio, infra, clean):
    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    aio.run(in_one_batch([ping(token, "/start")]))
    ((_, start),) = queued(infra)
    infra.redis().delete(streams.PINGS_STREAM)
    aio.run(in_one_batch([ping(token)]))
    ((_, end),) = queued(infra)
    # the start's POST failed and the connector reclaimed it after the end was written
    written = aio.run(record_pings([PingEnvelope.model_validate(end)]))
    late_start = {**start, "received_at": (datetime.now(UTC) - timedelta(minutes=2)).isoformat()}
    late = aio.run(record_pings([PingEnvelope.model_validate(late_start)]))
    assert type(written[0]) is PingWritten and late[0].run_id is None
    assert [kind for kind, _, _ in stored_pings(infra, monitor_id)] == ["success", "start"]
    assert infra.sql("select open_start_at from heartbeats where monitor_id = %s", (monitor_id,)) == [(None,)]


def test_a_ping_its_run_and_its_monitor_s_state_commit_together(aio, infra, clean, monkeypatch):
    from shared.pipeline import aggregate

    async def unreachable(*args):
        raise ConnectionError("the monitor could not be advanced")

    monitor_id, token = create_heartbeat(aio, infra, "nightly")
    aio.run(in_one_batch([ping(token)]))
    with monkeypatch.context() as patched:
        patched.setattr(aggregate, "_advance_monitors", unreachable)
        (failed,) = write_queued(aio, infra)
    assert isinstance(failed, ConnectionError), "dead-lettered, to be replayed"
    assert stored_pings(infra, monitor_id) == [] and infra.sql("select count(*) from runs") == [(0,)]
    (written,) = write_queued(aio, infra)  # the dead letter replayed
    assert infra.sql("select status, finalized_at is not null from runs") == [("up", True)]
    assert infra.sql("select status, last_run_id from monitors where id = %s", (monitor_id,)) == [
        ("up", written.run_id)
    ]


def test_the_sweep_raises_no_alarm_past_a_ping_still_queued(aio, infra, clean):
    silent_id, _ = create_heartbeat(aio, infra, "silent", grace=0)
    pinging_id, token = create_heartbeat(aio, infra, "pinging", grace=0)
    assert aio.run(pings_written_until()) == datetime.max.replace(tzinfo=UTC), "nothing queued"
    aio.run(in_one_batch([ping(token)]))
    ((_, data),) = queued(infra)
    arrived = datetime.fromisoformat(data["received_at"])
    assert aio.run(pings_written_until()) == arrived - timedelta(seconds=1)
    # both alarms passed: the silent one's before the queued ping arrived, the pinging one's just after
    infra.sql(
        "update heartbeats set alarm_at = %s where monitor_id = %s",
        (arrived - timedelta(minutes=5), silent_id),
    )
    infra.sql("update heartbeats set alarm_at = %s where monitor_id = %s", (arrived, pinging_id))
    assert aio.run(sweep_overdue_heartbeats()) == 1
    assert infra.sql("select monitor_id::text from runs") == [(silent_id,)]
    write_queued(aio, infra)
    infra.redis().delete(streams.PINGS_STREAM)  # as the connector's acknowledgement leaves it
    assert aio.run(sweep_overdue_heartbeats()) == 0, "its ping came: its next alarm is an hour away"


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
