-- Heartbeat monitors: the job pings in (the ping function), and the aggregate sweep writes a down run when a
-- ping is overdue. One row per heartbeat monitor with its token and the state the pings and the sweep keep;
-- one row per ping received.

create table heartbeats (
    monitor_id uuid primary key references monitors (id) on delete cascade,
    -- the token is a credential: a SHA-256 hash to find the monitor a ping names, a copy encrypted to the
    -- monitor's project (field heartbeats.token) to show its pingUrl; never the plaintext
    token_hash bytea not null unique,
    token_encrypted text not null,
    -- the last completion (success or failure): the next due time counts from it (from created_at before one)
    last_completed_at timestamptz,
    last_success_at timestamptz,
    -- a /start not yet ended: its end's duration is the result's response time; unended within grace, down
    open_start_at timestamptz,
    open_start_rid text,
    -- when it is overdue without a completion, and the moment that stands for (the down run's scheduled_at,
    -- so a sweep run twice writes it once: runs are unique on (monitor_id, scheduled_at))
    alarm_at timestamptz not null,
    alarm_due timestamptz not null,
    alarm_reason text not null default 'missed' check (alarm_reason in ('missed', 'unfinished')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- the sweep's one query: heartbeats whose alarm has passed
create index heartbeats_alarm on heartbeats (alarm_at);

create table heartbeat_pings (
    id bigint generated always as identity primary key,
    monitor_id uuid not null references monitors (id) on delete cascade,
    kind text not null check (kind in ('success', 'fail', 'start', 'log')),
    source text not null check (source in ('healthchecks', 'kuma')),
    exit_status integer,
    rid text,
    -- a retried ping (same rid and kind, or the same Idempotency-Key header) is counted once
    idempotency_key text,
    received_at timestamptz not null,
    duration_ms integer,
    message text,  -- the request body (up to 100 KB) or Kuma's msg
    run_id uuid,   -- the run this ping wrote, if any
    unique (monitor_id, idempotency_key)
);
create index heartbeat_pings_monitor_time on heartbeat_pings (monitor_id, received_at desc);

-- schedule never fans a heartbeat out: it claims monitors by next_run_at, which a heartbeat never has
alter table monitors add constraint heartbeats_are_never_scheduled
    check (type <> 'heartbeat' or next_run_at is null);
