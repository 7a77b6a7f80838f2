-- Alerting: maintenance windows, why an alert was suppressed, and per-recipient delivery detail.
-- Mute-until lives in monitors.alert_config (mutedUntil); SSL alert state lives in monitors.alert_state.

-- A window suppresses alerts (checks keep running): one-off (startsAt..endsAt), or recurring, starting
-- at each time of a cron expression in `timezone` and lasting duration_minutes.
create table maintenance_windows (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    name text not null,
    monitor_ids uuid[] not null default '{}',  -- empty: every monitor of the project
    starts_at timestamptz,
    ends_at timestamptz,
    cron text,
    duration_minutes integer,
    timezone text not null default 'UTC',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    constraint maintenance_window_one_off_or_recurring check (
        (cron is null and duration_minutes is null and starts_at is not null and ends_at > starts_at)
        or (cron is not null and duration_minutes between 1 and 10080 and starts_at is null and ends_at is null)
    )
);
create index maintenance_windows_project on maintenance_windows (project_id);

-- Set when the decision was taken inside a maintenance window, while muted, or past the alert limit;
-- such an event notifies nobody and is recorded per provider as 'suppressed'.
alter table alert_events add column suppressed_reason text;

alter table alert_history add column reason text;
-- Email: one entry per recipient, {"address": "sent" | "failed: <why>"}, so partial delivery is visible.
alter table alert_history add column recipients jsonb;
