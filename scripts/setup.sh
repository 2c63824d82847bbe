#!/usr/bin/env bash
# Create .venv and install TenantPilot's dependencies (idempotent; fast when already done).
# Usage: scripts/setup.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
req=requirements.txt
[ "${1:-}" = "--dev" ] && req=requirements-dev.txt
stamp=".venv/.installed-$(cat requirements.txt requirements-dev.txt pyproject.toml | sha1sum | cut -c1-12)-$(basename $req)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
  # the package itself (tenantpilot, graphsim, huey_worker), editable: no sys.path edits anywhere
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
  touch "$stamp"
fi
if [ "${1:-}" = "--dev" ]; then
  # The browser test drives Debian's chromium (Playwright's own browser download cannot work offline).
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
      (apt-get install -y -q chromium >/dev/null 2>&1 || (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)) \
        || echo "warning: could not install chromium; the browser test will be skipped" >&2
    else
      echo "warning: chromium not found (apt-get install chromium); the browser test will be skipped" >&2
    fi
  fi
  # the report tests render the PDF with poppler's pdftoppm / pdftotext (skipped with a reason without them)
  command -v pdftoppm >/dev/null 2>&1 || {
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then apt-get install -y -q poppler-utils >/dev/null 2>&1 || true; fi
  }
  command -v redis-server >/dev/null 2>&1 || {
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then apt-get install -y -q redis-server >/dev/null 2>&1 || true; fi
  }
fi
