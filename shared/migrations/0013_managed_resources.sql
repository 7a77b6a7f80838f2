-- Resources managed as code (issue 20): what the supercheck CLI last applied, per project, kind and key, so a
-- plan compares three ways (the file, the last apply, the live resource) and sees edits made since as drift.

create table managed_resources (
    project_id uuid not null references projects (id) on delete cascade,
    kind text not null check (kind in ('notificationProviders', 'monitors', 'maintenanceWindows', 'statusPages')),
    key text not null check (key ~ '^[a-z0-9](?:[a-z0-9._-]{0,98}[a-z0-9])?$'),
    -- the monitor, provider, window or page; no foreign key, as the four live in four tables: a resource
    -- deleted by hand leaves its row, and the next plan creates it again
    resource_id uuid not null,
    -- the file's item with its ${VAR} references as written, and a salted scrypt digest of each field that
    -- held one (never the secret itself), so a rotated secret still shows as a change
    desired jsonb not null,
    -- the resource as the API's reads showed it right after the apply: masked, as every read is
    observed jsonb not null,
    applied_at timestamptz not null default now(),
    primary key (project_id, kind, key)
);
create unique index managed_resources_resource on managed_resources (project_id, kind, resource_id);

-- One row per project that has applied: its generation advances by compare-and-set with each recorded apply,
-- so two applies planned from the same state cannot both record theirs. An apply first claims the state (on
-- the generation its plan read) for a while: a second apply is refused before it writes anything.
create table managed_state (
    project_id uuid primary key references projects (id) on delete cascade,
    generation bigint not null default 0,
    applied_at timestamptz,
    claim_id uuid,
    claimed_until timestamptz
);
