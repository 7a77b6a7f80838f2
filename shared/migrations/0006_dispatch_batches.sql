-- Fan-out at scale: the outbox marks a whole claim batch as published with one row, instead of updating every
-- run; the index duplicating runs' (monitor_id, scheduled_at) unique key goes.

create table dispatch_batches (
    id uuid primary key,
    run_ids uuid[] not null,
    created_at timestamptz not null default now()
);
create index dispatch_batches_created on dispatch_batches (created_at);

drop index if exists runs_undispatched;
drop index if exists runs_monitor_time;
alter table runs drop column dispatched_at;

-- Claims walk due monitors in (next_run_at, id) order from where the previous batch stopped, so a tick never
-- rescans the index entries its own earlier batches just made dead.
drop index if exists monitors_due;
create index monitors_due on monitors (next_run_at, id) where enabled;
