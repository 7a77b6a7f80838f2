-- Long-term trends: hourly and daily rollups per monitor and location, built incrementally behind watermarks,
-- so raw results can be deleted after the retention period without losing uptime or response-time figures.
--
-- Each rollup keeps the exact response-time histogram (distinct millisecond values and how often each occurred):
-- response times are whole milliseconds, so merging histograms gives the exact percentiles of any longer span,
-- identical to percentile_cont over the raw rows. Buckets are UTC hours and UTC days.

create table rollup_hourly (
    monitor_id uuid not null references monitors (id) on delete cascade,
    location text not null,
    bucket timestamptz not null,
    checks integer not null check (checks > 0),
    up_checks integer not null check (up_checks between 0 and checks),
    uptime_percentage double precision generated always as (100.0 * up_checks / checks) stored,
    response_count integer not null,  -- results that carried a response time
    response_sum_ms bigint not null,
    avg_response_ms double precision generated always as (
        case when response_count > 0 then response_sum_ms::double precision / response_count end) stored,
    min_response_ms integer,
    max_response_ms integer,
    p50_response_ms double precision,
    p95_response_ms double precision,
    p99_response_ms double precision,
    response_values_ms integer[] not null default '{}',  -- ascending, distinct
    response_value_counts integer[] not null default '{}',
    primary key (monitor_id, location, bucket)
);
create index rollup_hourly_bucket on rollup_hourly (bucket);

create table rollup_daily (like rollup_hourly including all);
alter table rollup_daily
    add foreign key (monitor_id) references monitors (id) on delete cascade;

-- Watermarks and the raw-data boundary, one row per name:
--   rollup_hourly_through    every UTC hour before it is rolled up
--   rollup_daily_through     every UTC day before it is rolled up (from the hourly tier)
--   raw_complete_from        raw results at or after it were never deleted; reads take rollups before it
create table retention_marks (
    name text primary key,
    at timestamptz not null,
    updated_at timestamptz not null default now()
);

-- Deleting old runs sets monitors.last_run_id to null through its foreign key; without this index every deleted
-- run would scan the monitors table.
create index monitors_last_run on monitors (last_run_id) where last_run_id is not null;
