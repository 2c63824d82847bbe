#!/usr/bin/env bash
# The one run command: set up, then start the app with its worker (and, in demo mode, the
# local Graph simulator). Ctrl-C stops everything.
#   Embedded defaults: DuckDB in ./data, SQLite queue when REDIS_URL is unset, demo tenants
#   served by the simulator when AZURE_AD_CLIENT_ID is unset. Settings: see .env.example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PY=.venv/bin/python
[ -f .env ] && set -a && . ./.env && set +a
mkdir -p data
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ -z "${AZURE_AD_CLIENT_ID:-}" ]; then
  echo "No AZURE_AD_CLIENT_ID: demo mode, starting the local Graph simulator"
  $PY -m tenantpilot simulate &
  pids+=($!)
fi
.venv/bin/huey_consumer huey_worker.huey -w "${TENANTPILOT_WORKERS:-1}" -m 0.5 &
pids+=($!)
.venv/bin/streamlit run streamlit_app.py --server.port "${PORT:-8501}" &
pids+=($!)
wait -n
