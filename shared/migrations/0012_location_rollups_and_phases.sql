-- Issue 17: the dashboard's aggregate reads from rollups, never from every result.
--
-- 1. Timing phases in the per-monitor tiers: for each phase a sum and a count of the results that carried it (a
--    phase may be null: no TLS on plain HTTP, none at all for ping). Null sum and count mean "not known": the
--    bucket was rolled up before this migration and its raw rows are gone, so reads show no phase point for it.
-- 2. A per-project-per-location tier (hourly and daily) that GET /regions reads: one row per project, location
--    and bucket instead of one per monitor. Written by the same rollup step, behind the same watermarks, from the
--    per-monitor rows (sums, and the exact histograms merged), so it equals them. Hours at or after
--    rollup_hourly_through are "provisional": rewritten from raw results by every rollup step, as of
--    rollup_provisional_through.

alter table rollup_hourly
    add column dns_count integer,
    add column dns_sum_ms double precision,
    add column connect_count integer,
    add column connect_sum_ms double precision,
    add column tls_count integer,
    add column tls_sum_ms double precision,
    add column first_byte_count integer,
    add column first_byte_sum_ms double precision;

alter table rollup_daily
    add column dns_count integer,
    add column dns_sum_ms double precision,
    add column connect_count integer,
    add column connect_sum_ms double precision,
    add column tls_count integer,
    add column tls_sum_ms double precision,
    add column first_byte_count integer,
    add column first_byte_sum_ms double precision;

create table rollup_location_hourly (
    project_id uuid not null references projects (id) on delete cascade,
    location text not null,
    bucket timestamptz not null,
    checks bigint not null,
    up_checks bigint not null,
    response_count bigint not null,
    response_sum_ms bigint not null,
    response_values_ms integer[] not null default '{}',  -- ascending, distinct
    response_value_counts bigint[] not null default '{}',
    primary key (project_id, location, bucket)
);
create index rollup_location_hourly_bucket on rollup_location_hourly (bucket);

create table rollup_location_daily (like rollup_location_hourly including all);
alter table rollup_location_daily
    add foreign key (project_id) references projects (id) on delete cascade;

-- Backfill (tests/test_rollups.py runs everything from this line on against rows as they stood before), phases:
-- every hour whose raw results are all still here (at or after raw_complete_from), then the days whose every hour
-- now knows its phases (and still sums to the day's checks). Older buckets keep null phases.
with raw as (
    select monitor_id, location, date_bin('1 hour', checked_at, timestamptz '2000-01-01 00:00:00+00') as bucket,
           count(dns_ms) as dns_count, coalesce(sum(dns_ms::float8), 0) as dns_sum_ms,
           count(connect_ms) as connect_count, coalesce(sum(connect_ms::float8), 0) as connect_sum_ms,
           count(tls_ms) as tls_count, coalesce(sum(tls_ms::float8), 0) as tls_sum_ms,
           count(first_byte_ms) as first_byte_count, coalesce(sum(first_byte_ms::float8), 0) as first_byte_sum_ms
    from monitor_results
    where checked_at >= coalesce((select at from retention_marks where name = 'raw_complete_from'), '-infinity')
    group by 1, 2, 3
)
update rollup_hourly h
set dns_count = raw.dns_count, dns_sum_ms = raw.dns_sum_ms, connect_count = raw.connect_count,
    connect_sum_ms = raw.connect_sum_ms, tls_count = raw.tls_count, tls_sum_ms = raw.tls_sum_ms,
    first_byte_count = raw.first_byte_count, first_byte_sum_ms = raw.first_byte_sum_ms
from raw
where h.monitor_id = raw.monitor_id and h.location = raw.location and h.bucket = raw.bucket;

with days as (
    select monitor_id, location, date_bin('1 day', bucket, timestamptz '2000-01-01 00:00:00+00') as bucket,
           sum(checks) as checks, count(*) as hours, count(dns_count) as known,
           sum(dns_count) as dns_count, sum(dns_sum_ms) as dns_sum_ms,
           sum(connect_count) as connect_count, sum(connect_sum_ms) as connect_sum_ms,
           sum(tls_count) as tls_count, sum(tls_sum_ms) as tls_sum_ms,
           sum(first_byte_count) as first_byte_count, sum(first_byte_sum_ms) as first_byte_sum_ms
    from rollup_hourly group by 1, 2, 3
)
update rollup_daily d
set dns_count = days.dns_count, dns_sum_ms = days.dns_sum_ms, connect_count = days.connect_count,
    connect_sum_ms = days.connect_sum_ms, tls_count = days.tls_count, tls_sum_ms = days.tls_sum_ms,
    first_byte_count = days.first_byte_count, first_byte_sum_ms = days.first_byte_sum_ms
from days
where d.monitor_id = days.monitor_id and d.location = days.location and d.bucket = days.bucket
  and days.known = days.hours and days.checks = d.checks;

-- Backfill, the location tier: the 32 days before the hourly watermark, which covers the longest window GET
-- /regions reads (720 hours, from a whole hour). Older buckets are left empty: no read reaches them. Provisional
-- hours are written by the next rollup step. (No watermark: nothing is rolled up, nothing to backfill.)
insert into rollup_location_hourly (project_id, location, bucket, checks, up_checks, response_count,
                                    response_sum_ms, response_values_ms, response_value_counts)
select t.project_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       coalesce(g.vals, '{}'), coalesce(g.cnts, '{}')
from (
    select m.project_id, h.location, h.bucket, sum(h.checks) as checks, sum(h.up_checks) as up_checks,
           sum(h.response_count) as response_count, sum(h.response_sum_ms) as response_sum_ms
    from rollup_hourly h join monitors m on m.id = h.monitor_id
    where h.bucket >= (select at from retention_marks where name = 'rollup_hourly_through') - interval '32 days'
    group by 1, 2, 3
) t
left join (
    select project_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
    from (
        select m.project_id, h.location, h.bucket, u.v, sum(u.c)::bigint as c
        from rollup_hourly h join monitors m on m.id = h.monitor_id
        cross join lateral unnest(h.response_values_ms, h.response_value_counts) as u(v, c)
        where h.bucket >= (select at from retention_marks where name = 'rollup_hourly_through') - interval '32 days'
        group by 1, 2, 3, 4
    ) per_value
    group by 1, 2, 3
) g using (project_id, location, bucket);

insert into rollup_location_daily (project_id, location, bucket, checks, up_checks, response_count,
                                   response_sum_ms, response_values_ms, response_value_counts)
select t.project_id, t.location, t.bucket, t.checks, t.up_checks, t.response_count, t.response_sum_ms,
       coalesce(g.vals, '{}'), coalesce(g.cnts, '{}')
from (
    select m.project_id, d.location, d.bucket, sum(d.checks) as checks, sum(d.up_checks) as up_checks,
           sum(d.response_count) as response_count, sum(d.response_sum_ms) as response_sum_ms
    from rollup_daily d join monitors m on m.id = d.monitor_id
    where d.bucket >= (select at from retention_marks where name = 'rollup_hourly_through') - interval '32 days'
    group by 1, 2, 3
) t
left join (
    select project_id, location, bucket, array_agg(v order by v) as vals, array_agg(c order by v) as cnts
    from (
        select m.project_id, d.location, d.bucket, u.v, sum(u.c)::bigint as c
        from rollup_daily d join monitors m on m.id = d.monitor_id
        cross join lateral unnest(d.response_values_ms, d.response_value_counts) as u(v, c)
        where d.bucket >= (select at from retention_marks where name = 'rollup_hourly_through') - interval '32 days'
        group by 1, 2, 3, 4
    ) per_value
    group by 1, 2, 3
) g using (project_id, location, bucket);
