#!/usr/bin/env bash
# The one run command: set up, then start the app with its worker (and, in demo mode, the
# local Graph simulator). Ctrl-C stops everything.
#   Embedded defaults: DuckDB in ./data, SQLite queue when REDIS_URL is unset, demo tenants
#   served by the simulator when AZURE_AD_CLIENT_ID is unset. Settings: see .env.example.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
PY=.venv/bin/python
# .env is never sourced by this shell: the app, the worker and the simulator read it themselves with
# python-dotenv, as data (a backtick, a $VAR or an & in a secret stays what it is). The three values
# this script needs come from that same reader, validated: demo mode, consumer workers, app port.
launch=$($PY -m tenantpilot.config) || exit 2
read -r demo workers port <<<"$launch"
# without sign-in ([auth] in .streamlit/secrets.toml) the app may listen on 127.0.0.1 only (README, *Exposure*)
$PY -m tenantpilot.app.signin || exit 2
umask 077  # the data folder, database, queue and logs: folders 0700, files 0600
mkdir -p data
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
if [ "$demo" = 1 ]; then
  echo "No AZURE_AD_CLIENT_ID: demo mode, starting the local Graph simulator"
  $PY -m tenantpilot simulate &
  pids+=($!)
fi
.venv/bin/huey_consumer huey_worker.huey -w "$workers" -m 0.5 &
pids+=($!)
.venv/bin/streamlit run streamlit_app.py --server.port "$port" &
pids+=($!)
wait -n
