"""Structured JSON-lines logging to stderr and rotating files, with secrets redacted (flatten.secrets' rule)."""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
import threading
import time
from pathlib import Path

from tenantpilot.flatten import secrets

_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?bearer\s+)[A-Za-z0-9\-\._~\+/=]+"),
    re.compile(r"(?i)(client_secret['\"]?\s*[:=]\s*['\"]?)[^&'\"\s,}]+"),
    re.compile(r"(?i)((?:access_token|refresh_token|client_assertion)['\"]?\s*[:=]\s*['\"]?)[^&'\"\s,}]+"),
    re.compile(r"\beyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*"),  # JWTs
]
_known_secrets: set[str] = set()
_configure_lock = threading.Lock()  # the consumer's worker threads all configure at start, at once


def register_secret(value: str | None) -> None:
    """Values that must never be logged verbatim (client secret, tokens)."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    """Text without known secrets, bearer tokens, client secrets, JWTs or URL credentials."""
    text = secrets.scrub_urls(text)
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update(secrets.mask(getattr(record, "fields", {}) or {}))  # a field named like a credential
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


def configure(log_dir: Path, *, level: int = logging.INFO, stderr: bool = True) -> None:
    """Set up JSON logging once per process: stderr, worker-combined.log, worker-error.log. Thread-safe:
    two threads configuring at once added every handler twice, so each event was written twice."""
    with _configure_lock:
        _configure(log_dir, level, stderr)


def _configure(log_dir: Path, level: int, stderr: bool) -> None:
    root = logging.getLogger("tenantpilot")
    if getattr(root, "_tenantpilot_configured", False):
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    fmt = JsonFormatter()
    handlers: list[logging.Handler] = []
    if stderr:
        handlers.append(logging.StreamHandler(sys.stderr))
    handlers.append(logging.handlers.RotatingFileHandler(log_dir / "worker-combined.log", maxBytes=10_000_000,
                                                         backupCount=5, encoding="utf-8"))
    err = logging.handlers.RotatingFileHandler(log_dir / "worker-error.log", maxBytes=10_000_000, backupCount=5,
                                               encoding="utf-8")
    err.setLevel(logging.ERROR)
    handlers.append(err)
    for h in handlers:
        h.setFormatter(fmt)
        root.addHandler(h)
    root.setLevel(level)
    root.propagate = False
    root._tenantpilot_configured = True  # type: ignore[attr-defined]


def log(logger: logging.Logger, level: int, event: str, *, exc_info: bool = False, **fields: object) -> None:
    """The one way TenantPilot logs an event: a name plus fields, rendered as one JSON line."""
    logger.log(level, event, exc_info=exc_info, extra={"fields": fields})
