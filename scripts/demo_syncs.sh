#!/usr/bin/env bash
# The sync half of `make demo`: start every local tool sandbox, run every declared sync on
# day 0 (a baseline), then twice more, each after the generated world moved on a day and
# the models were rebuilt, so each sync shows its day-1 and day-2 diffs (adds, changes,
# removes). Usage: scripts/demo_syncs.sh START_DATE
set -euo pipefail
start=${1:?usage: demo_syncs.sh START_DATE}
bin=${BIN:-.venv/bin}
# Throwaway credentials for the local sandboxes only; real tools read theirs from the
# environment variables destinations.yml names.
export OUTFLOW_WEBHOOK_SECRET=${OUTFLOW_WEBHOOK_SECRET:-outflow-demo-sandbox-key}
export OUTFLOW_HUBSPOT_TOKEN=${OUTFLOW_HUBSPOT_TOKEN:-pat-demo-sandbox}
export OUTFLOW_MAILCHIMP_API_KEY=${OUTFLOW_MAILCHIMP_API_KEY:-demosandboxkey-us19}
export OUTFLOW_KLAVIYO_API_KEY=${OUTFLOW_KLAVIYO_API_KEY:-pk_demo_sandbox}
export OUTFLOW_SALESFORCE_TOKEN=${OUTFLOW_SALESFORCE_TOKEN:-00Ddemo!sandbox}
export OUTFLOW_META_TOKEN=${OUTFLOW_META_TOKEN:-EAAB-demo-sandbox}
export OUTFLOW_GOOGLE_ADS_TOKEN=${OUTFLOW_GOOGLE_ADS_TOKEN:-ya29.demo-sandbox}
export OUTFLOW_GOOGLE_ADS_DEVELOPER_TOKEN=${OUTFLOW_GOOGLE_ADS_DEVELOPER_TOKEN:-demo-developer-token}

"$bin/outflow" sandbox serve &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/8771) 2>/dev/null && break
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
for day in 1 2; do
  echo "== day $day: the world moves on a day; rebuild; each sync sends only its diff"
  "$bin/outflow" generate --day "$day"
  "$bin/dbt" build --quiet --vars "{outflow_as_of: '$(date -u -d "$start + $day day" +%F)'}"
  run_all
done
"$bin/outflow" status
