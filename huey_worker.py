"""Entry point for the consumer: `huey_consumer huey_worker.huey` (see README)."""

import sys

from tenantpilot.config import ConfigError, private_files

private_files()  # the consumer's database, queue and log files: 0600, folders 0700
try:
    from tenantpilot.config import settings

    if settings().role == "fetch":  # a fetching consumer: no database; see README "More machines"
        from tenantpilot.ops.fetching import fetch_huey

        huey = fetch_huey(settings())
    else:
        from tenantpilot.ops.queue import get_huey

        huey = get_huey()
except ConfigError as exc:
    sys.exit(f"tenantpilot: configuration error: {exc}")
