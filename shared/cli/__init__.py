"""The `supercheck` command line: monitors as code (validate, plan, apply, export) and CI runs, against the API.

Layout, and how a subcommand is added:
- main.py: the click group `cli`; a subcommand is a module defining `command`, named once in SUBCOMMAND_MODULES.
- exits.py: exit codes 0/1/2/3 and one exception per code (CheckFailed, InvalidInput, PlatformError; ApiRefused
  is an InvalidInput); raise them, click's standalone mode prints the message and exits with the code.
- client.py: ApiClient (SUPERCHECK_URL + /function/api, SUPERCHECK_API_KEY as Bearer), get/post/put/patch/
  delete/pages; transport errors, 401/403 and 5xx are PlatformErrors.
- environment.py: the only reader of the user's environment (SUPERCHECK_*, GITHUB_*, ${VAR}s).
- files.py: load() with positions, validate() -> Problems (FILE:LINE:COLUMN: field: message), load_valid(),
  ${VAR} helpers; document.py: the file's models and JSON Schema.
- resources.py: file_items() (each item as written, resolved and in display form), the live reads and the
  API writes per kind; shared/rules/managed_plan.py: the pure three-way plan."""
