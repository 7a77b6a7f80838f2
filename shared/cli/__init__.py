"""The `supercheck` command line: monitors as code (validate, plan, apply, export) and CI runs, against the API.

Layout: main.py holds the click group and the one list of subcommand modules; exits.py the exit codes and their
exceptions; client.py the HTTP client to the API; files.py loading a supercheck.yaml with positions, ${ENV}
references and validation with the API's own models; document.py the file's models (and so its JSON Schema)."""
