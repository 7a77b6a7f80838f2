"""Pure decisions: no database, Redis, HTTP or Apprise; each is tested with tables."""
