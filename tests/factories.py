"""Builders the test modules share: rows in Postgres, job envelopes, the seeded retention year, an SMTP receiver."""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiosmtpd.controller import Controller
from psycopg.types.json import Jsonb

from openfaas.local.services import free_port
from shared import auth, db, internal_auth, notify, streams
from shared.models import AlertEnvelope
from shared.rules.retention import floor_day, results_cutoff
from shared.security import key_ring, provider_binding
from tests.servers import wait_until

LOCATIONS = ["us-east", "eu-central", "asia-pacific"]
SYNTHETIC_BUCKET = "synthetic-artifacts"
UNREACHABLE_TARGET = "http://127.0.0.1:9/"  # the discard port: nothing listens, so a check of it fails fast


# --- trials ------------------------------------------------------------------------------------------------

# The project a trial's secrets are sealed to when no database is involved: sealing binds to its id only.
TRIAL_PROJECT = uuid.UUID("00000000-0000-4000-8000-00000000a11c")


def trial_job(body: dict, project_id: uuid.UUID = TRIAL_PROJECT):
    """A trial body validated as a check function validates it (secrets sealed to project_id), as a job."""
    from shared.checks.credentials import Sealing
    from shared.checks.spec import CheckTrial

    context = Sealing(project_id, passes_ciphertext=True).context()
    return CheckTrial.model_validate(body, context=context).as_job(project_id)


# --- calls to functions ------------------------------------------------------------------------------------


def signed(body: dict | list | bytes, now: float | None = None, token: str | None = None) -> dict:
    """httpx keyword arguments for a call signed as the connector and the API sign theirs (the test process
    shares its internal token with every stack it starts)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **internal_auth.sign(content, token=token, now=now)}
    return {"content": content, "headers": headers}


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


# --- projects and monitors ---------------------------------------------------------------------------------


def default_project(infra) -> uuid.UUID:
    """The project the migrations seed (and the anonymous local mode uses)."""
    return infra.sql("select id from projects where is_default")[0][0]


def make_project(aio, name: str) -> str:
    """A new project with one API key; returns the key."""

    async def create():
        async with db.transaction() as conn:
            project = await (
                await conn.execute("insert into projects (name) values (%s) returning id", (name,))
            ).fetchone()
            _, key = await auth.store_key(conn, project["id"], "test")
            return key

    return aio.run(create())


def insert_monitor(
    infra,
    name: str = "monitor",
    *,
    target: str = UNREACHABLE_TARGET,
    frequency_minutes: int = 5,
    next_run_at: datetime | None = None,
    location_config: dict | None = None,
    alert_config: dict | None = None,
) -> uuid.UUID:
    """An http_request monitor of the default project, due now unless `next_run_at` says otherwise."""
    return infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at,
                                 location_config, alert_config)
           values (%s, %s, 'http_request', %s, %s, coalesce(%s, now()), %s, %s)
           returning id""",
        (
            default_project(infra),
            name,
            target,
            frequency_minutes,
            next_run_at,
            json.dumps(location_config or {}),
            json.dumps(alert_config or {}),
        ),
    )[0][0]


# --- notification providers and alert events ---------------------------------------------------------------


def add_provider(
    infra, config: dict, provider_type: str = "webhook", name: str = "hook", project=None
) -> uuid.UUID:
    stored = notify.validate_provider_config(provider_type, config)
    project = project or default_project(infra)
    return infra.sql(
        """insert into notification_providers (project_id, name, type, config_encrypted, config_masked)
           values (%s, %s, %s, %s, %s) returning id""",
        (
            project,
            name,
            provider_type,
            key_ring().encrypt(json.dumps(stored), provider_binding(project)),
            Jsonb(notify.masked_config(provider_type, stored)),
        ),
    )[0][0]


def add_alert(
    infra, provider_ids, kind="failure", suppressed_reason=None, custom_message=None
) -> AlertEnvelope:
    alert_config = {"enabled": True, "notificationProviders": [str(p) for p in provider_ids]}
    if custom_message:
        alert_config["customMessage"] = custom_message
    monitor_id = infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, alert_config)
           values (%s, 'Checkout', 'http_request', 'https://shop.example.net/', 5, %s) returning id""",
        (default_project(infra), Jsonb(alert_config)),
    )[0][0]
    run_id = infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, now(), '{us-east}', now()) returning id""",
        (monitor_id,),
    )[0][0]
    payload = {
        "projectName": "Default",
        "monitorName": "Checkout",
        "monitorType": "http_request",
        "target": "https://shop.example.net/",
        "status": "down" if kind == "failure" else "up",
        "locationsDown": 1,
        "locationsTotal": 1,
        "time": "2026-03-02T09:00:00+00:00",
    }
    event_id = infra.sql(
        """insert into alert_events (monitor_id, run_id, kind, payload, suppressed_reason)
           values (%s, %s, %s, %s, %s) returning id""",
        (monitor_id, run_id, kind, Jsonb(payload), suppressed_reason),
    )[0][0]
    return AlertEnvelope(alert_event_id=event_id, run_id=run_id, monitor_id=monitor_id, alert_kind=kind)


def seed_due_monitors(infra, count: int, due_at: datetime) -> None:
    """`count` http_request monitors of the default project, every minute, all due at `due_at`."""
    infra.sql(
        """insert into monitors (project_id, name, type, target, frequency_minutes, next_run_at)
           select %s, 'm' || g, 'http_request', %s, 1, %s from generate_series(1, %s) g""",
        (default_project(infra), UNREACHABLE_TARGET, due_at, count),
    )


def record_run(infra, monitor_id, scheduled_at: datetime, statuses: dict[str, str]) -> uuid.UUID:
    """A run of `monitor_id` expecting the locations of `statuses`, with one stored result per location."""
    run_id = uuid.uuid4()
    infra.sql(
        """insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
                 values (%s, %s, %s, %s, %s)""",
        (run_id, monitor_id, scheduled_at, list(statuses), scheduled_at + timedelta(minutes=1)),
    )
    for location, status in statuses.items():
        infra.sql(
            """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
                     values (%s, %s, %s, %s, %s, 10)""",
            (run_id, monitor_id, location, status, scheduled_at),
        )
    return run_id


def add_result(
    infra,
    monitor_id,
    location: str,
    checked_at: datetime,
    response_time_ms: int | None,
    status: str = "up",
    phases: tuple[float | None, float | None, float | None, float | None] = (None, None, None, None),
    details: dict | None = None,
) -> None:
    """One stored result of its own run: response time, (dns, connect, tls, first byte) phases and details."""
    run_id = infra.sql(
        """insert into runs (monitor_id, scheduled_at, expected_locations, deadline)
           values (%s, %s, %s, %s) on conflict (monitor_id, scheduled_at) do update set deadline = excluded.deadline
           returning id""",
        (monitor_id, checked_at, [location], checked_at + timedelta(minutes=1)),
    )[0][0]
    infra.sql(
        """insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms,
                                        dns_ms, connect_ms, tls_ms, first_byte_ms, details)
           values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (run_id, monitor_id, location, status, checked_at, response_time_ms, *phases, Jsonb(details or {})),
    )


def add_rollup(
    infra, table: str, monitor_id, location: str, bucket: datetime, values: list[int], up: int
) -> None:
    """A rollup_hourly or rollup_daily row as the rollups build it, from the response times it summarises."""
    from collections import Counter

    from shared.rules.retention import percentile_cont

    histogram = sorted(Counter(values).items())
    p50, p95, p99 = (percentile_cont(histogram, f) for f in (0.5, 0.95, 0.99))
    assert table in ("rollup_hourly", "rollup_daily")
    infra.sql(
        f"""insert into {table} (monitor_id, location, bucket, checks, up_checks, response_count, response_sum_ms,
                min_response_ms, max_response_ms, p50_response_ms, p95_response_ms, p99_response_ms,
                response_values_ms, response_value_counts)
            values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        (
            monitor_id,
            location,
            bucket,
            len(values),
            up,
            len(values),
            sum(values),
            min(values),
            max(values),
            p50,
            p95,
            p99,
            [value for value, _ in histogram],
            [count for _, count in histogram],
        ),
    )


def set_marks(infra, **marks: datetime) -> None:
    """retention_marks by name (rollup_hourly_through, rollup_daily_through, raw_complete_from)."""
    for name, at in marks.items():
        infra.sql(
            """insert into retention_marks (name, at) values (%s, %s)
               on conflict (name) do update set at = excluded.at""",
            (name, at),
        )


# --- jobs and streams ----------------------------------------------------------------------------------------


def a_job(**overrides) -> dict:
    """A valid check_job envelope (http_request in us-east, due now), with `overrides` applied."""
    now = datetime.now(UTC).isoformat()
    job = {
        "v": 1,
        "kind": "check_job",
        "run_id": str(uuid.uuid4()),
        "monitor_id": str(uuid.uuid4()),
        "location": "us-east",
        "type": "http_request",
        "target": UNREACHABLE_TARGET,
        "config": {},
        "scheduled_at": now,
        "deadline": now,
    }
    return {**job, **overrides}


def bundle(*jobs: dict, type: str = "http_request", location: str = "us-east") -> dict:
    """A check_jobs entry carrying `jobs`, as schedule publishes them."""
    return {"v": 1, "kind": "check_jobs", "type": type, "location": location, "jobs": list(jobs)}


def consumer_streams(r) -> list[str]:
    return [s for s in r.keys("sc:*") if r.type(s) == "stream" and r.xinfo_groups(s)]


def all_consumed(r) -> bool:
    """Every stream with a consumer group has been read to its end and acknowledged."""
    return all(
        r.xpending(s, streams.CONSUMER_GROUP)["pending"] == 0
        and r.xinfo_groups(s)[0]["last-delivered-id"] == r.xinfo_stream(s)["last-generated-id"]
        for s in consumer_streams(r)
    )


# --- a seeded year for retention and rollups -------------------------------------------------------------

NOW = datetime(2025, 6, 15, 2, 0, 7, tzinfo=UTC)  # the retention tests' clock: just after the nightly run
CUTOFF = results_cutoff(NOW, 30)

# Outages last a 6-hour block per monitor and location; single timeouts are sprinkled between them. Timeouts
# carry no response time, like the real check.
_SEED_YEAR = """
with m as (
    insert into monitors (project_id, name, type, target, frequency_minutes, status)
    select %(project)s, 'Year ' || i, 'http_request', 'http://127.0.0.1:9/', 5, 'up'
    from generate_series(1, %(monitors)s) i
    returning id
),
r as (
    insert into runs (monitor_id, scheduled_at, expected_locations, deadline, finalized_at, status)
    select m.id, t, %(locations)s, t + interval '1 minute', t + interval '1 minute', 'up'
    from m, generate_series(%(start)s::timestamptz, %(end)s::timestamptz, %(step)s::interval) t
    returning id, monitor_id, scheduled_at
)
insert into monitor_results (run_id, monitor_id, location, status, checked_at, response_time_ms)
select r.id, r.monitor_id, loc, s.status, r.scheduled_at + make_interval(secs => 1 + h %% 50),
       case when s.status = 'timeout' then null else 20 + h %% 480 end
from r
cross join unnest(%(locations)s::text[]) as loc
cross join lateral (
    select abs(hashtext(r.id::text || loc)) as h,
           abs(hashtext(r.monitor_id::text || loc || date_bin('6 hours', r.scheduled_at, %(start)s)::text)) as block
) hashes
cross join lateral (
    select case when block %% 100 < 4 then 'down' when block %% 100 < 7 then 'degraded'
                when h %% 100 < 2 then 'timeout' else 'up' end as status
) s
"""

_MARK_STATUS_CHANGES = """
update monitor_results r set is_status_change = true
from (select id, status is distinct from lag(status) over (
          partition by monitor_id, location order by checked_at, id) as changed
      from monitor_results) x
where x.id = r.id and x.changed
"""


def seed_year(infra, monitors: int = 2, step: str = "37 minutes", days: int = 365) -> list:
    """A year (by default) of results up to NOW for `monitors` monitors in three locations; returns their ids."""
    infra.sql(
        _SEED_YEAR,
        {
            "project": default_project(infra),
            "monitors": monitors,
            "locations": LOCATIONS,
            "start": floor_day(NOW - timedelta(days=days)) + timedelta(minutes=17),
            "end": NOW - timedelta(minutes=1),
            "step": step,
        },
    )
    # Fresh statistics first: planned on an empty table's estimates, the self-join below can take minutes.
    infra.sql("analyze monitor_results")
    infra.sql(_MARK_STATUS_CHANGES)
    return [row[0] for row in infra.sql("select id from monitors order by id")]


# --- an SMTP receiver ------------------------------------------------------------------------------------


@dataclass
class SmtpReceiver:
    """Accepts mail on 127.0.0.1; RCPT answers per address prefix: 'gone' is refused, 'busy' is told to retry."""

    messages: list[tuple[list[str], email.message.EmailMessage]] = field(default_factory=list)
    rcpt_attempts: dict[str, int] = field(default_factory=dict)
    controller: Controller | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook name)
        self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
        if address.startswith("gone"):
            return "550 5.1.1 no such user here"
        if address.startswith("busy"):
            return "451 4.3.0 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"

    @property
    def port(self) -> int:
        return self.controller.port

    def start(self) -> SmtpReceiver:
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def provider_config(self, *recipients: str) -> dict:
        return notify.validate_provider_config(
            "email",
            {
                "smtpHost": "127.0.0.1",
                "smtpPort": self.port,
                "security": "none",
                "from": "alerts@example.net",
                "to": list(recipients),
            },
        )


# --- synthetic checks ----------------------------------------------------------------------------------------


def stored_synthetic_objects(s3, job) -> dict[str, bytes]:
    """Every artifact a synthetic check uploaded for this job, by file name (the s3 fixture's client)."""
    prefix = f"synthetic/{job.monitor_id}/{job.run_id}/{job.location}/"
    listed = s3.list_objects_v2(Bucket=SYNTHETIC_BUCKET, Prefix=prefix).get("Contents", [])
    return {
        item["Key"].removeprefix(prefix): s3.get_object(Bucket=SYNTHETIC_BUCKET, Key=item["Key"])[
            "Body"
        ].read()
        for item in listed
    }


# --- status pages and incidents (issue 18) -------------------------------------------------------------------


def add_status_page(
    infra,
    slug: str,
    groups: dict[str, list],
    *,
    project=None,
    title: str = "Acme status",
    published: bool = True,
    custom_domain: str | None = None,
    show_response_times: bool = False,
) -> uuid.UUID:
    """A page with its groups of monitors in order, as the status-pages API stores it."""
    page_id = infra.sql(
        """insert into status_pages (project_id, slug, title, description, custom_domain, show_response_times,
                                     published)
           values (%s, %s, %s, 'Live status of our services', %s, %s, %s) returning id""",
        (project or default_project(infra), slug, title, custom_domain, show_response_times, published),
    )[0][0]
    for group_position, (group_name, monitor_ids) in enumerate(groups.items()):
        for position, monitor_id in enumerate(monitor_ids):
            infra.sql(
                """insert into status_page_monitors (status_page_id, monitor_id, group_position, group_name, position)
                   values (%s, %s, %s, %s, %s)""",
                (page_id, monitor_id, group_position, group_name, position),
            )
    return page_id


def add_incident(
    infra,
    page_id,
    title: str,
    messages: list[str],
    *,
    status: str = "investigating",
    impact: str = "minor",
    is_draft: bool = False,
    monitor_ids=(),
) -> uuid.UUID:
    """An incident of the page's project with its timeline, published unless a draft."""
    incident_id = infra.sql(
        """insert into incidents (project_id, status_page_id, title, status, impact, is_draft, published_at,
                                  resolved_at)
           select project_id, id, %s, %s, %s, %s, case when %s then null else now() end,
                  case when %s = 'resolved' then now() end
           from status_pages where id = %s returning id""",
        (title, status, impact, is_draft, is_draft, status, page_id),
    )[0][0]
    for monitor_id in monitor_ids:
        infra.sql("insert into incident_monitors values (%s, %s)", (incident_id, monitor_id))
    for message in messages:
        infra.sql(
            "insert into incident_updates (incident_id, status, message) values (%s, %s, %s)",
            (incident_id, status, message),
        )
    return incident_id


# --- alerting through a running stack (an httpx client on its gateway's /function) -------------------------
def create_provider(api, provider_type: str, config: dict, name: str = "hook") -> str:
    response = api.post(
        "/api/notification-providers", json={"name": name, "type": provider_type, "config": config}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def runs_finalized(infra, monitor_id: str, count: int) -> None:
    wait_until(
        lambda: (
            infra.sql(
                "select count(*) from runs where monitor_id = %s and finalized_at is not null", (monitor_id,)
            )[0][0]
            >= count
        ),
        message=f"{count} finalized run(s)",
    )


def run_now(api, infra, monitor_id: str, finalized_before: int) -> None:
    response = api.post("/schedule", json={"monitorIds": [monitor_id]})
    assert response.status_code == 200, response.text
    runs_finalized(infra, monitor_id, finalized_before + 1)
