"""What the API's endpoints do, one module per area; the dashboard and status pages call the same services."""
