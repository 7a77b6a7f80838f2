-- Core schema: projects, regions, monitors, runs, results, notification providers and alert delivery.

create table projects (
    id uuid primary key default gen_random_uuid(),
    name text not null,
    is_default boolean not null default false,
    created_at timestamptz not null default now()
);
create unique index projects_one_default on projects (is_default) where is_default;
insert into projects (name, is_default) values ('Default', true);

create table regions (
    code text primary key,
    name text not null,
    city text,
    active boolean not null default true,
    created_at timestamptz not null default now()
);
insert into regions (code, name, city) values
    ('us-east', 'US East', 'Ashburn'),
    ('eu-central', 'EU Central', 'Falkenstein'),
    ('asia-pacific', 'Asia Pacific', 'Singapore');

create table monitors (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    name text not null,
    type text not null,
    target text not null,
    config jsonb not null default '{}',
    frequency_minutes integer not null check (frequency_minutes between 1 and 1440),
    enabled boolean not null default true,
    location_config jsonb not null default '{}',
    alert_config jsonb not null default '{}',
    tags text[] not null default '{}',
    -- state, advanced only by aggregate, in scheduled order
    status text not null default 'pending',
    next_run_at timestamptz,
    last_applied_run_at timestamptz,
    last_check_at timestamptz,
    alert_state jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index monitors_due on monitors (next_run_at) where enabled;
create index monitors_project on monitors (project_id, created_at desc);

-- One row per execution group: a monitor run fanned out to its expected locations.
create table runs (
    id uuid primary key default gen_random_uuid(),
    monitor_id uuid not null references monitors (id) on delete cascade,
    scheduled_at timestamptz not null,
    expected_locations text[] not null,
    deadline timestamptz not null,
    created_at timestamptz not null default now(),
    dispatched_at timestamptz,
    finalized_at timestamptz,
    status text,
    is_partial boolean,
    missing_locations text[] not null default '{}',
    unique (monitor_id, scheduled_at)
);
create index runs_undispatched on runs (created_at) where dispatched_at is null;
create index runs_open_by_deadline on runs (deadline) where finalized_at is null;
create index runs_monitor_time on runs (monitor_id, scheduled_at desc);

create table monitor_results (
    id bigint generated always as identity primary key,
    run_id uuid not null references runs (id) on delete cascade,
    monitor_id uuid not null references monitors (id) on delete cascade,
    location text not null,
    status text not null,
    checked_at timestamptz not null,
    response_time_ms integer,
    dns_ms real,
    connect_ms real,
    tls_ms real,
    first_byte_ms real,
    status_code integer,
    message text,
    details jsonb not null default '{}',
    is_status_change boolean not null default false,
    unique (run_id, location)
);
create index monitor_results_monitor_time on monitor_results (monitor_id, checked_at desc);
create index monitor_results_monitor_location_time on monitor_results (monitor_id, location, checked_at desc);

-- Append-only record of monitor status flips (the aggregated view).
create table status_changes (
    id bigint generated always as identity primary key,
    monitor_id uuid not null references monitors (id) on delete cascade,
    run_id uuid not null references runs (id) on delete cascade,
    from_status text not null,
    to_status text not null,
    changed_at timestamptz not null default now(),
    unique (run_id)
);
create index status_changes_monitor on status_changes (monitor_id, changed_at desc);

create table notification_providers (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    name text not null,
    type text not null,
    config_encrypted text not null,
    config_masked jsonb not null default '{}',
    enabled boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);

create table monitor_notification_settings (
    monitor_id uuid not null references monitors (id) on delete cascade,
    provider_id uuid not null references notification_providers (id) on delete cascade,
    primary key (monitor_id, provider_id)
);

-- Outbox of alert intents decided by aggregate; published to sc:alerts after commit.
create table alert_events (
    id uuid primary key default gen_random_uuid(),
    monitor_id uuid not null references monitors (id) on delete cascade,
    run_id uuid not null references runs (id) on delete cascade,
    kind text not null,
    payload jsonb not null,
    created_at timestamptz not null default now(),
    dispatched_at timestamptz,
    unique (run_id, kind)
);
create index alert_events_undispatched on alert_events (created_at) where dispatched_at is null;

create table alert_history (
    id bigint generated always as identity primary key,
    alert_event_id uuid references alert_events (id) on delete set null,
    monitor_id uuid not null references monitors (id) on delete cascade,
    run_id uuid not null,
    provider_id uuid not null references notification_providers (id) on delete cascade,
    kind text not null,
    status text not null,
    attempts integer not null default 0,
    title text,
    message text,
    error text,
    created_at timestamptz not null default now(),
    claimed_at timestamptz,
    sent_at timestamptz,
    unique (run_id, provider_id, kind)
);
create index alert_history_monitor on alert_history (monitor_id, created_at desc);
