-- Fan-out at scale, part 2: a run's monitor is vouched for by the statement that records the run, not by a
-- foreign key. schedule records runs only for monitors it holds locked in the same transaction (claimed FOR
-- UPDATE, or FOR KEY SHARE for "run now"), so the per-row referential check (a lookup plus a row lock on the
-- monitor: half the cost of inserting the run, 0.5 s of a 100,000-monitor tick) proved nothing new.
-- Deleting or truncating monitors still removes their runs (and, through runs, their results), as ON DELETE
-- CASCADE did.

alter table runs drop constraint runs_monitor_id_fkey;

create function delete_runs_of_deleted_monitors() returns trigger language plpgsql as $$
begin
    delete from runs where monitor_id in (select id from deleted_monitors);
    return null;
end $$;

create trigger monitors_delete_runs after delete on monitors
    referencing old table as deleted_monitors
    for each statement execute function delete_runs_of_deleted_monitors();

-- TRUNCATE runs cannot run here (monitors is still open in this statement); deleting is slower but only tests
-- and benchmarks truncate monitors.
create function delete_runs_of_truncated_monitors() returns trigger language plpgsql as $$
begin
    delete from runs;
    return null;
end $$;

create trigger monitors_truncate_runs after truncate on monitors
    for each statement execute function delete_runs_of_truncated_monitors();
