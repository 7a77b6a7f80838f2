-- Public status pages, their incidents and the timelines of those incidents (issue 18).

create table status_pages (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    -- unique across projects: /function/status/<slug> names one page whoever owns it
    slug text not null unique check (slug ~ '^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$'),
    title text not null,
    description text not null default '',
    -- a host name, lower-cased, that reaches this page by its Host header
    custom_domain text unique,
    show_response_times boolean not null default false,
    show_uptime boolean not null default true,
    published boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index status_pages_project on status_pages (project_id, created_at desc);

-- The page's groups and their monitors, in order; a monitor deleted leaves every page it was on.
create table status_page_monitors (
    status_page_id uuid not null references status_pages (id) on delete cascade,
    monitor_id uuid not null references monitors (id) on delete cascade,
    group_position integer not null,
    group_name text not null,
    position integer not null,
    primary key (status_page_id, monitor_id)
);
-- badges ask "is this monitor on a published page?" by monitor
create index status_page_monitors_monitor on status_page_monitors (monitor_id);

create table incidents (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    status_page_id uuid not null references status_pages (id) on delete cascade,
    title text not null,
    status text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved')),
    impact text not null default 'minor' check (impact in ('none', 'minor', 'major', 'critical')),
    -- a draft is opened by aggregate when monitors on the page go down; it is public once published
    is_draft boolean not null default false,
    opened_by_run_id uuid,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    published_at timestamptz,
    resolved_at timestamptz
);
create index incidents_page_time on incidents (status_page_id, created_at desc);
-- at most one open automatic draft per page: a second outage while one is open adds to it
create unique index incidents_one_open_draft on incidents (status_page_id) where is_draft and resolved_at is null;

create table incident_monitors (
    incident_id uuid not null references incidents (id) on delete cascade,
    monitor_id uuid not null references monitors (id) on delete cascade,
    primary key (incident_id, monitor_id)
);

-- The timeline: every update appended, never edited; message is Markdown, rendered sanitised when shown.
create table incident_updates (
    id bigint generated always as identity primary key,
    incident_id uuid not null references incidents (id) on delete cascade,
    status text not null check (status in ('investigating', 'identified', 'monitoring', 'resolved')),
    message text not null default '',
    created_at timestamptz not null default now()
);
create index incident_updates_incident on incident_updates (incident_id, created_at);
