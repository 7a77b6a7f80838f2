"""The schedule function's SQL (shared/pipeline/schedule.py): the claim, the record-and-render statement that
turns a claimed batch into runs and stream bundles, and the outbox sweep's re-render."""

# --- SQL -------------------------------------------------------------------------------------------
#
# A claim batch is two statements in one transaction. The first claims due monitors (FOR NO KEY UPDATE SKIP
# LOCKED) and advances next_run_at; it returns the claimed row versions as one array text that Python hands back
# untouched, and each distinct stored config once. Python turns those configs into what only it knows: a
# config's timeout budget and where a location config sends its runs. The second statement records the runs
# and the batch's dispatch row, and renders the jobs as bundles: one stream entry per (type, location,
# jobs_per_entry jobs). Python and Redis then move a few thousand bundles instead of hundreds of thousands of
# rows, and a run's slot is read back from next_run_at rather than carried.

CLAIM_DUE = """
with due as (
    select id, next_run_at from monitors
    -- up to the lookahead ahead of time: the job travels while the slot approaches, and the check starts on it
    where enabled and next_run_at <= %(horizon)s and (next_run_at, id) > (%(after_at)s, %(after_id)s)
        and id between %(id_from)s and %(id_to)s {only_ids}
    order by next_run_at, id
    limit %(limit)s
    -- the lock an UPDATE of non-key columns takes: overlapping ticks still skip each other's claims, but not
    -- monitors a check function's result insert holds key-share locked (its foreign key check)
    for no key update skip locked
),
claimed as (
    -- next_run_at moves one frequency past the latest due slot, the slot this run takes: slots missed while
    -- nothing ran are skipped, not replayed
    update monitors m
    set next_run_at = due.next_run_at + make_interval(mins => m.frequency_minutes)
            * (greatest(floor(extract(epoch from (%(now)s - due.next_run_at)) / (m.frequency_minutes * 60)), 0) + 1)
    from due
    where m.id = due.id
    -- ctid: the version this update makes, which the record statement then reads directly
    returning m.id, m.ctid, m.type, m.config, m.location_config, due.next_run_at as claimed_slot
)
{claimed_summary}
"""

# run now: the monitors as they are, at this instant; locked as an update would, so each stays the row version
# (ctid) the record statement reads, and is not deleted under us. A heartbeat is never run: its job pings in.
SELECT_NOW = """
with claimed as (
    select id, ctid, type, config, location_config, %(now)s::timestamptz as claimed_slot
    from monitors where id = any(%(ids)s) and type <> 'heartbeat'
    for no key update
)
{claimed_summary}
"""

# A claimed run's slot: the claim moved next_run_at exactly one frequency past it (see CLAIM_DUE).
SLOT_CLAIMED = "(m.next_run_at - make_interval(mins => m.frequency_minutes))"
SLOT_NOW = "%(now)s::timestamptz"

CLAIMED_SUMMARY = """
select type, config::text, location_config::text,
    null::text as ids, null::bigint as claimed, null::timestamptz as last_at, null::uuid as last_id
from claimed group by type, config, location_config
union all
-- rows grouped by type: a run's position in this array then numbers its bundle (position / bundle size)
select null, null, null, array_agg(ctid order by type)::text, count(*), max(claimed_slot),
    (select id from claimed order by claimed_slot desc, id desc limit 1)
from claimed
"""

# Run ids are UUIDv7 (time-ordered, so inserts stay at the right edge of the primary key): the 48-bit
# millisecond, version and variant come from Python per batch, the remaining bits are a random base plus the
# row's position; far cheaper than one gen_random_uuid() per row.
RECORD_AND_RENDER = """
with planned as (
    select m.id as monitor_id, m.project_id, m.type, m.target, config.text as config, {scheduled_at} as scheduled_at,
        greatest(%(now)s, {scheduled_at}) + make_interval(secs => least(
            (%(budgets)s::jsonb ->> (m.type || ' ' || config.text))::float8, m.frequency_minutes * 60)) as deadline,
        string_to_array(%(location_lists)s::jsonb ->> m.location_config::text, ',') as locations,
        (%(id_prefix)s || lpad(to_hex(%(id_base)s::bigint + c.position), 15, '0'))::uuid as run_id,
        c.position - 1 as position
    from unnest(%(rows)s::tid[]) with ordinality as c(row_id, position)
    -- claimed rows are locked by this transaction, so their versions stay where the claim left them
    join monitors m on m.ctid = c.row_id
    cross join lateral (select m.config::text offset 0) as config(text)  -- once: looked up, then rendered
    {conditions}
),
recorded as (
    -- no ON CONFLICT: a run already recorded for a claimed slot fails the batch, which is redone without it
    -- (see SKIP_EXISTING); speculative insertion would cost every run a probe and a WAL record more
    insert into runs (id, monitor_id, scheduled_at, expected_locations, deadline)
    select run_id, monitor_id, scheduled_at, locations, deadline from planned
),
dispatch as (
    insert into dispatch_batches (id, run_ids)
    select %(batch_id)s, array_agg(run_id) from planned having count(*) > 0
)
{render}
union all
select null, null, null, count(*), array_agg(run_id::text) from planned
"""

# Monitors that already have a run at this slot (next_run_at moved back by hand) are left out: taken only when
# the fast path met such a conflict, which is rare, so the probe is not paid on every run.
SKIP_EXISTING = (
    "not exists (select 1 from runs x where x.monitor_id = m.id and x.scheduled_at = {scheduled_at})"
)
# Monitors set aside in this batch (a stored row that no longer validates) are left out; only when there are any.
NOT_SET_ASIDE = "m.id <> all(%(set_aside)s)"

# The claimed monitors of profiles schedule cannot run, to be set aside with their reason.
CLAIMED_OF_PROFILES = """
select id, type, config::text, location_config::text from monitors
where ctid = any(%(rows)s::tid[]) and (type, config::text, location_config::text) in (
    select * from unnest(%(types)s::text[], %(configs)s::text[], %(locations)s::text[]))
"""

# A bundle (shared.models.CheckJobBundle) names its stream's type and location once; its jobs carry the rest of
# a CheckJob, rendered once per run whatever the number of locations. A bundle of one job is sent as the job
# itself (a full CheckJob envelope), as for check types bundled one job per entry.
RENDER = """
select j.type, j.location,
    case when count(*) = 1
        then concat('{"v":1,"kind":"check_job","type":', to_json(j.type), ',"location":', to_json(j.location),
            ',', substr(string_agg(j.job, ','), 2))
        else concat('{"v":1,"kind":"check_jobs","type":', to_json(j.type), ',"location":', to_json(j.location),
            ',"jobs":[', string_agg(j.job, ','), ']}') end as payload,
    count(*) as jobs, null::text[] as run_ids
from (
    select p.type, loc.location, p.position / (%(bundle_sizes)s::jsonb ->> p.type)::int as bundle, p.job
    from (
        -- concat() of JSON-safe parts renders twice as fast as json_build_object()
        select planned.*, concat(
            '{"run_id":"', run_id, '","monitor_id":"', monitor_id, '","project_id":"', project_id,
            '","target":', to_json(target),
            ',"config":', config, ',"scheduled_at":', to_json(scheduled_at), ',"deadline":', to_json(deadline),
            '}') as job
        from planned
        offset 0  -- rendered once per run, not once per location
    ) p
    cross join unnest(p.locations) as loc(location)
) j
group by j.type, j.location, j.bundle
"""

STALE_BATCHES = """
select id, run_ids from dispatch_batches where created_at < %s order by created_at limit 20 for update skip locked
"""

REPUBLISH = """
with planned as (
    select r.id as run_id, r.monitor_id, m.project_id, m.type, m.target, m.config, r.scheduled_at, r.deadline,
        r.expected_locations as locations, row_number() over (partition by m.type) - 1 as position
    from runs r join monitors m on m.id = r.monitor_id
    where r.id = any(%(run_ids)s) and r.finalized_at is null
)
"""
