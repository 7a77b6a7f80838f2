"""Heartbeat monitors ("dead man's switch"): the monitored job pings in, and silence is the outage. The ping
function ingests pings (ping.py), the aggregate sweep finds overdue heartbeats (sweep.py), the API keeps their
tokens (tokens.py); the decisions are shared/rules/heartbeats.py."""
