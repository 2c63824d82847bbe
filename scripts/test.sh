#!/usr/bin/env bash
# The one test command: set up everything, then run every test (pure, real Redis, real
# huey_consumer, real DuckDB, real HTTPS to the Graph simulator, AppTest, real browser).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
# static checks first: they take seconds and name the line
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
