#!/usr/bin/env bash
# Run the whole suite N times in a row, each from a fresh clone of the committed HEAD, as CI does
# (a flaky test is a bug: this is how one is found before it reaches CI). Prints each run's time and
# result; exits 1 if any run failed. Logs stay in the printed folder.
# Usage: scripts/test-repeat.sh [N=3] [extra pytest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}
shift || true
logs=$(mktemp -d -t tenantpilot-repeat-XXXX)
failed=0
for i in $(seq 1 "$n"); do
  clone="$logs/clone-$i"
  git clone -q . "$clone"
  start=$(date +%s)
  if (cd "$clone" && bash .ci/run "$@") >"$logs/run-$i.log" 2>&1; then result=passed; else result=FAILED; failed=1; fi
  echo "run $i/$n: $result in $(( $(date +%s) - start )) s — $(tail -n 1 "$logs/run-$i.log")"
  [ "$result" = passed ] && rm -rf "$clone"
done
echo "logs: $logs"
exit $failed
