-- Pings reach the database through sc:pings (shared/heartbeats/record.py), a moment after the ping function
-- accepted them. The last ping applied to each heartbeat, so a ping delivered again long after later ones is
-- kept but moves nothing; and when the token was last rotated, so a ping queued under the old token counts if it
-- arrived before the rotation and not after.
alter table heartbeats add column last_ping_at timestamptz, add column token_rotated_at timestamptz;
