-- monitor_results_run (run_id) duplicates the unique index on (run_id, location), whose leading column serves
-- every lookup by run: each result written (every check, every heartbeat ping) paid for a sixth index entry.
drop index if exists monitor_results_run;
