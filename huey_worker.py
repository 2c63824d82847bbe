"""Entry point for the consumer: `huey_consumer huey_worker.huey` (see README)."""

import sys

from tenantpilot.config import ConfigError

try:
    from tenantpilot.queue import get_huey

    huey = get_huey()
except ConfigError as exc:
    sys.exit(f"tenantpilot: configuration error: {exc}")
