"""TenantPilot: sync every Intune policy of many tenants into DuckDB and compare them."""

__version__ = "0.1.0"
