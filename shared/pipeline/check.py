"""What a check function does with jobs and job bundles: run them concurrently, store results once, announce them.
Used by every check function (functions/check_http, check_ping, check_port, check_synthetic)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.requests import Request

from shared import db, streams
from shared.checks import run_check, time_allowed
from shared.checks.credentials import Sealing
from shared.checks.spec import CheckTrial, ProjectTrial
from shared.errors import ApiError
from shared.handlers import Caller, identify_caller, json_endpoint, parse, read_json
from shared.models import CheckJob, CheckOutcome, ResultEnvelope
from shared.pipeline.batch import is_connector_batch, parse_job_batch
from shared.redis import publish, publish_live_events
from shared.rules.batch_deadline import time_to_give
from shared.rules.dns_changes import answer_change, answer_values
from shared.settings import get_settings
from shared.telemetry import Tally

# Only results whose run still exists are stored: a monitor deleted while its check ran took its runs along,
# and its result would fail the foreign key and with it the whole bundle's insert. Returns the results kept
# (inserted now, or already stored by an earlier delivery), each saying which: only a new row is counted.
_INSERT_RESULTS = """
with r as (
    select * from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::text[], %s::timestamptz[], %s::int[],
                         %s::real[], %s::real[], %s::real[], %s::real[], %s::int[], %s::text[], %s::jsonb[])
        as r(run_id, monitor_id, location, status, checked_at, response_time_ms,
             dns_ms, connect_ms, tls_ms, first_byte_ms, status_code, message, details)
),
kept as (
    select r.* from r join runs on runs.id = r.run_id and runs.monitor_id = r.monitor_id
),
inserted as (
    insert into monitor_results (
        run_id, monitor_id, location, status, checked_at, response_time_ms,
        dns_ms, connect_ms, tls_ms, first_byte_ms, status_code, message, details, is_status_change)
    select k.run_id, k.monitor_id, k.location, k.status, k.checked_at, k.response_time_ms,
        k.dns_ms, k.connect_ms, k.tls_ms, k.first_byte_ms, k.status_code, k.message, k.details,
        k.status is distinct from (
            select p.status from monitor_results p
            where p.monitor_id = k.monitor_id and p.location = k.location
            order by p.checked_at desc limit 1)
    from kept k
    on conflict (run_id, location) do nothing
    returning run_id, location
)
select k.run_id, k.location, i.run_id is not null as inserted
from kept k left join inserted i on i.run_id = k.run_id and i.location = k.location
"""

# A deletion committed while the insert ran still fails its foreign key; the next attempt no longer sees the run.
_STORE_ATTEMPTS = 3


# A job never waits longer than this for its slot, whatever a skewed clock says.
MAX_EARLY_START_SECONDS = 30.0
# A batch answers this long before the watchdog's exec_timeout: the last results are stored, the reply written.
REPLY_MARGIN_SECONDS = 5.0

Executed = tuple[CheckJob, CheckOutcome, datetime]

# CHECK_CONCURRENCY bounds the checks running in this process, whatever the number of batches it serves at once:
# a connector keeps several POSTs in flight (jobs dispatched ahead wait there for their slot, and cost nothing
# while they wait), and a limit per batch let 8 x 200 checks share one event loop, each then taking ~1 s of
# loop latency against a target that answers in a millisecond (bench/README.md, issue 23).
_check_slots: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Semaphore] = {}


def running_check_slots() -> asyncio.Semaphore:
    """This event loop's one semaphore of CHECK_CONCURRENCY slots (a test's loop, or a changed setting in a test,
    gets its own)."""
    key = (asyncio.get_running_loop(), get_settings().check_concurrency)
    if key not in _check_slots:
        _check_slots.clear()  # a loop gone (a test's) leaves its semaphore behind
        _check_slots[key] = asyncio.Semaphore(key[1])
    return _check_slots[key]


async def _already_stored(jobs: list[CheckJob]) -> dict[tuple[str, str], str]:
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                """select r.run_id, r.location, r.status from monitor_results r
                   join unnest(%s::uuid[], %s::text[]) as j(run_id, location)
                     on r.run_id = j.run_id and r.location = j.location""",
                ([job.run_id for job in jobs], [job.location for job in jobs]),
            )
        ).fetchall()
    return {(str(row["run_id"]), row["location"]): row["status"] for row in rows}


# Each DNS result's previous answers at its location, through the (monitor_id, location, checked_at) index.
_PREVIOUS_ANSWERS = """
select j.i, p.details
from unnest(%s::uuid[], %s::text[], %s::timestamptz[]) with ordinality as j(monitor_id, location, checked_at, i)
cross join lateral (
    select r.details from monitor_results r
    where r.monitor_id = j.monitor_id and r.location = j.location and r.checked_at < j.checked_at
          and r.details ? 'rcode'
    order by r.checked_at desc limit 1
) p
"""


async def _note_answer_changes(executed: list[Executed]) -> None:
    """A DNS result whose answer set differs from the previous one at its location says so: details.changes and
    its message (aggregate alerts on it where the monitor asks). One read for the whole group."""
    answered = [
        entry for entry in executed if entry[0].type == "dns" and answer_values(entry[1].details) is not None
    ]
    if not answered:
        return
    async with db.transaction() as conn:
        rows = await (
            await conn.execute(
                _PREVIOUS_ANSWERS,
                (
                    [job.monitor_id for job, _, _ in answered],
                    [job.location for job, _, _ in answered],
                    [checked_at for _, _, checked_at in answered],
                ),
            )
        ).fetchall()
    for row in rows:
        _, outcome, _ = answered[row["i"] - 1]
        change = answer_change(answer_values(row["details"]), answer_values(outcome.details))
        if change is not None:
            outcome.details["changes"] = change.to_json()
            outcome.message = f"{outcome.message}; {change.text}" if outcome.message else change.text


async def _store(executed: list[Executed]) -> dict[tuple[str, str], bool]:
    """Stores the results in one statement; returns the (run_id, location) of those whose run still exists, and
    whether this statement inserted it (False: an earlier delivery had)."""
    if not executed:
        return {}
    from psycopg.types.json import Jsonb  # with the first results stored: trials never load psycopg

    await _note_answer_changes(executed)
    columns: list[list] = [[] for _ in range(13)]
    for job, outcome, checked_at in executed:
        values = (
            job.run_id,
            job.monitor_id,
            job.location,
            outcome.status,
            checked_at,
            outcome.response_time_ms,
            outcome.dns_ms,
            outcome.connect_ms,
            outcome.tls_ms,
            outcome.first_byte_ms,
            outcome.status_code,
            outcome.message,
            Jsonb(outcome.details),
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    from psycopg.errors import ForeignKeyViolation

    for _ in range(_STORE_ATTEMPTS - 1):
        try:
            return await _insert(columns)
        except ForeignKeyViolation:
            continue
    return await _insert(columns)


async def _insert(columns: list[list]) -> dict[tuple[str, str], bool]:
    async with db.transaction() as conn:
        rows = await (await conn.execute(_INSERT_RESULTS, columns)).fetchall()
    return {(str(row["run_id"]), row["location"]): row["inserted"] for row in rows}


def _key(job: CheckJob) -> tuple[str, str]:
    return str(job.run_id), job.location


async def _store_and_announce(group: list[Executed], tally: Tally) -> None:
    kept = await _store(group)
    # a result whose monitor was deleted meanwhile is dropped quietly: not stored, not announced
    executed = [entry for entry in group if _key(entry[0]) in kept]
    # only rows this statement inserted, each once (a batch may carry one job twice): a redelivered batch whose
    # results were stored meanwhile counts nothing again
    inserted = {_key(job): (job, outcome) for job, outcome, _ in executed if kept[_key(job)]}
    for job, outcome in inserted.values():
        tally.count(
            "supercheck_monitor_checks",
            monitor_id=job.monitor_id,
            location=job.location,
            result=outcome.status,
        )
    await publish(
        (
            streams.RESULTS_STREAM,
            ResultEnvelope(
                run_id=job.run_id, monitor_id=job.monitor_id, location=job.location, status=outcome.status
            ),
        )
        for job, outcome, _ in executed
    )
    await publish_live_events(
        {
            "type": "result",
            "monitorId": job.monitor_id,
            "runId": job.run_id,
            "location": job.location,
            "status": outcome.status,
            "responseTimeMs": outcome.response_time_ms,
            "checkedAt": checked_at.isoformat(),
        }
        for job, outcome, checked_at in executed
    )


class _Flusher:
    """Stores results as their checks finish, a group at a time: whatever finished while the last group was
    being stored. A batch cut short (the watchdog, a crash) then loses no finished check, and its redelivery
    re-runs none of them."""

    def __init__(self, tally: Tally) -> None:
        self.waiting: list[Executed] = []
        self.lock = asyncio.Lock()
        self.tally = tally

    async def add(self, executed: Executed) -> None:
        self.waiting.append(executed)
        async with self.lock:
            group, self.waiting = self.waiting, []
            if group:
                await _store_and_announce(group, self.tally)


@dataclass(frozen=True)
class BatchClock:
    """When a connector batch must have answered: before the watchdog's exec_timeout, less the reply's margin."""

    window: float
    answer_by: float  # on the monotonic clock

    @classmethod
    def start(cls, window: float | None = None) -> BatchClock:
        window = get_settings().exec_timeout_seconds - REPLY_MARGIN_SECONDS if window is None else window
        return cls(window, time.monotonic() + window)

    def left(self) -> float:
        return self.answer_by - time.monotonic()


async def execute_jobs(
    jobs: list[CheckJob], clock: BatchClock | None = None, tally: Tally | None = None
) -> tuple[int, list[int]]:
    """Runs each job not yet stored, storing and announcing results as they finish.

    Redelivered jobs are not re-run; their stored result is announced again, which aggregate ignores if seen.
    A job that could not finish before the clock's deadline is not started: it is left for the next delivery.
    What ran goes into `tally` (the caller flushes it); without one, this call flushes its own at the end.
    Returns how many checks ran, and the positions of the jobs left.
    """
    if tally is not None:
        return await _execute_jobs(jobs, clock or BatchClock.start(), tally)
    tally = Tally()
    try:
        return await _execute_jobs(jobs, clock or BatchClock.start(), tally)
    finally:
        await tally.flush()  # after every store committed, including those of a batch cut short by an error


async def _execute_jobs(jobs: list[CheckJob], clock: BatchClock, tally: Tally) -> tuple[int, list[int]]:
    stored = await _already_stored(jobs)
    await publish(
        (
            streams.RESULTS_STREAM,
            ResultEnvelope(
                run_id=job.run_id, monitor_id=job.monitor_id, location=job.location, status=stored[_key(job)]
            ),
        )
        for job in jobs
        if _key(job) in stored
    )
    limit = running_check_slots()
    flusher = _Flusher(tally)

    async def one(job: CheckJob) -> bool:
        early = min(max(0.0, (job.scheduled_at - datetime.now(UTC)).total_seconds()), MAX_EARLY_START_SECONDS)
        if time_to_give(time_allowed(job), clock.left() - early, clock.window) is None:
            return False  # not worth waiting for its slot
        if early > 0:  # dispatched ahead of its slot (SCHEDULE_LOOKAHEAD_SECONDS): start on the slot
            await asyncio.sleep(early)
        async with limit:
            given = time_to_give(time_allowed(job), clock.left(), clock.window)
            if given is None:  # queued behind the others for too long
                return False
            checked_at = datetime.now(UTC)
            started = time.perf_counter()
            outcome = await run_check(job, limit=given)
        _observe(tally, job, checked_at, time.perf_counter() - started)
        await flusher.add((job, outcome, checked_at))
        return True

    pending = [position for position, job in enumerate(jobs) if _key(job) not in stored]
    async with asyncio.TaskGroup() as group:  # a failed store stops the other checks: the batch is retried
        tasks = [group.create_task(one(jobs[position])) for position in pending]
    done = [task.result() for task in tasks]
    return sum(done), [position for position, ran in zip(pending, done, strict=True) if not ran]


def _observe(tally: Tally, job: CheckJob, checked_at: datetime, took: float) -> None:
    labels = {"type": job.type, "location": job.location}
    tally.observe("supercheck_check_duration_seconds", took, **labels)
    # a job is started on its slot, never before it (see MAX_EARLY_START_SECONDS): lag is never below 0
    lag = max(0.0, (checked_at - job.scheduled_at).total_seconds())
    tally.observe("supercheck_schedule_lag_seconds", lag, **labels)


def _named_project(data: object) -> uuid.UUID:
    """The project a signed trial names, read first: the rest of the trial is validated as that project's."""
    named = data.get("projectId") if isinstance(data, dict) else None
    try:
        return uuid.UUID(str(named))
    except ValueError:
        raise ApiError(
            400, "validation_error", "projectId: a signed trial must name its project", "projectId"
        ) from None


async def run_trial(caller: Caller, data: object) -> dict:
    """One check run at once for a project: sent signed by the API (projectId in the body) or by a key's holder.

    Its secrets are sealed to that project; ciphertexts pass (the API sealed them), and open only if they are
    that project's.
    """
    if caller.kind == "internal":
        model, project_id = ProjectTrial, _named_project(data)
    else:
        model, project_id = CheckTrial, caller.project_id
    trial: CheckTrial = parse(model, data, Sealing(project_id, passes_ciphertext=True).context())
    if trial.type == "synthetic_test":
        # The test's project never changes, so a test found in the caller's project stays there for the run;
        # another project's test is 404, as if absent (its script and secret variables never load).
        from shared.synthetic import store

        await store.get_test(project_id, uuid.UUID(trial.target))
    return (await run_check(trial.as_job(project_id))).model_dump(by_alias=True)


def check_function_handler(group_size: Callable[[], int] | None = None):
    """The handler every check function serves: a signed connector batch of jobs and bundles, or one trial
    (signed from the API, or with an API key); a GET answers {"ok": true}, the connector's probe.

    group_size: run a batch a few jobs at a time, each group stored and announced before the next starts
    (browser journeys take minutes; a job's timeout must not be spent queueing behind the others).
    """

    @json_endpoint
    async def handle(request: Request):
        if request.method == "GET":
            # the connector's probe (shared/pipeline/heartbeats.py): says the function is served, nothing more,
            # so it needs no key and touches neither the database nor Redis
            return {"ok": True}
        caller = await identify_caller(request)
        data = await read_json(request)
        if is_connector_batch(data):
            if caller.kind != "internal":
                raise ApiError(403, "forbidden", "messages: job batches are accepted from the connector only")
            batch = parse_job_batch(data)
            clock = BatchClock.start()
            jobs = batch.items
            step = max(1, group_size() if group_size else len(jobs))
            executed, left = 0, []
            tally = Tally()  # one write for the whole batch, however many groups it runs in
            try:
                for start in range(0, len(jobs), step):
                    ran, group_left = await execute_jobs(jobs[start : start + step], clock, tally)
                    executed += ran
                    left += [batch.sources[start + position] for position in group_left]
            finally:
                await tally.flush()
            # an entry with a job left is not answered: the connector redelivers it, and only that job runs
            return batch.reply(unfinished=set(left), executed=executed, left=len(left))
        return await run_trial(caller, data)

    return handle
