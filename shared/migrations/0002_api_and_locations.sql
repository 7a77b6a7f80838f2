-- API keys, audit log, and the latest applied run on each monitor (partial outages shown beside the status).

create table api_keys (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    name text not null,
    prefix text not null,
    key_hash bytea not null unique,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
create index api_keys_project on api_keys (project_id, created_at desc);

create table audit_log (
    id bigint generated always as identity primary key,
    project_id uuid not null references projects (id) on delete cascade,
    api_key_id uuid references api_keys (id) on delete set null,
    action text not null,
    object_type text not null,
    object_id text,
    changes jsonb not null default '{}',
    created_at timestamptz not null default now()
);
create index audit_log_project_time on audit_log (project_id, created_at desc);

alter table monitors add column last_run_id uuid references runs (id) on delete set null;
create index monitors_tags on monitors using gin (tags);
create index monitor_results_run on monitor_results (run_id);
