-- Synthetic tests (Playwright scripts) and project variables that reach them; secret values are AES-GCM ciphertext.

create table synthetic_tests (
    id uuid primary key default gen_random_uuid(),
    project_id uuid not null references projects (id) on delete cascade,
    title text not null,
    script text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index synthetic_tests_project on synthetic_tests (project_id, created_at desc);

create table project_variables (
    project_id uuid not null references projects (id) on delete cascade,
    name text not null,
    -- plaintext when is_secret is false; 'enc:v1:<key id>:<base64>' (shared.security.KeyRing) when true
    value text not null,
    is_secret boolean not null default false,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (project_id, name),
    check (not is_secret or value like 'enc:v1:%')
);
