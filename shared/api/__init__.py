"""The management API served by functions/api: routes, authentication, OpenAPI."""
