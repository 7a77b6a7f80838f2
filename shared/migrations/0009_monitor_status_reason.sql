-- A monitor whose stored row no longer validates (an unknown type, a location or alert config of a shape the
-- code no longer reads) is set aside: status 'error', with the reason here and in the audit log, and out of
-- the schedule (next_run_at null) until it is saved again. The rest of its claim or finalize batch goes on.
alter table monitors add column status_reason text;
