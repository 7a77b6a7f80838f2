"""The web dashboard's server-side parts: page rendering helpers and charts (issue 17)."""
