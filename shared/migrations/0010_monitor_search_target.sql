-- The monitor list's search (GET /monitors?search=) matches a target with its credentials stripped, so a search can
-- never probe a secret that the API shows masked. Stripped once, when the row is written, instead of by two regular
-- expressions on every row of every search: at 10,000 monitors those cost about 20 ms a search on this project's
-- 2-core machine, a LIKE over this column a few. Lower-cased, as the search is case-insensitive. No index: pg_trgm
-- is not available everywhere (the embedded PostgreSQL has no contrib modules), and a scan of 10,000 short strings
-- is cheap.
--
-- The patterns are shared/security.py's TARGET_USERINFO_PATTERN and TARGET_SECRET_PARAMETER_PATTERN, which mask the
-- same parts for display (tests/test_api_monitor_list.py checks that they still agree).
alter table monitors add column search_target text generated always as (lower(regexp_replace(
    regexp_replace(target, '^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@', '\1'),
    '([?&][^=&#]*(?:password|token|secret|api[-_]?key|authorization|bearer)[^=&#]*=)[^&#]*', '\1', 'gi'))) stored;
