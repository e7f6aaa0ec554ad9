#!/usr/bin/env bash
# The sync half of `make demo`: start the local webhook sandbox, run every declared sync on
# day 0, move the generated world on by one day, rebuild, and run them again, so each shows
# its day-1 diff (adds, changes, removes). Usage: scripts/demo_syncs.sh START_DATE
set -euo pipefail
start=${1:?usage: demo_syncs.sh START_DATE}
bin=${BIN:-.venv/bin}
port=${SANDBOX_PORT:-8765}
# A throwaway key for the local sandbox only; real destinations read theirs from the environment.
export OUTFLOW_WEBHOOK_SECRET=${OUTFLOW_WEBHOOK_SECRET:-outflow-demo-sandbox-key}
export OUTFLOW_WEBHOOK_URL=http://127.0.0.1:$port/outflow

"$bin/outflow" sandbox serve --port "$port" &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 50); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done

syncs=$("$bin/python" -c 'import json,sys; print(" ".join(s["name"] for s in json.load(sys.stdin)["syncs"]))' \
  < <("$bin/outflow" syncs --json))

run_all() {
  for sync in $syncs; do
    "$bin/outflow" run "$sync" || echo "(outflow run $sync exited $?)"
  done
}

echo "== day 0: first run of every sync (a baseline: adds only)"
run_all
echo "== day 1: the world moves on a day; rebuild; each sync sends only its diff"
"$bin/outflow" generate --day 1
"$bin/dbt" build --quiet --vars "{outflow_as_of: '$(date -u -d "$start + 1 day" +%F)'}"
run_all
"$bin/outflow" status
