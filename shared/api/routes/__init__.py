"""Every endpoint of the api function (shared.api.app), one module per OpenAPI tag: each handler parses (declared
models), calls the shared module that does the work, and replies. Importing this package registers them all.

The modules that do the work are LazyModules, loaded on the first request that calls them: a cold api function
then pays only for what its first requests use (GET /health no database driver, GET /monitors no Apprise, Redis,
HTTP client or browser runner). The endpoint table, with its light request and response models, is still built
at import."""

# Imported in this order, the endpoint table, and so the OpenAPI document's paths, keep the order they had as one
# file (but for GET /events, once just before the provider test). The router matches by method and path, so the
# order changes nothing else.
# isort: off
from shared.api.routes import service, projects, monitors, results  # noqa: F401  (registers the endpoints)
from shared.api.routes import notifications, events, maintenance, synthetic  # noqa: F401
from shared.api.routes import history, status_pages, incidents  # noqa: F401
from shared.api.routes import managed  # noqa: F401
# isort: on
