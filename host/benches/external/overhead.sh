#!/usr/bin/env bash
# The cost of metrics and tracing: a build from before them against one with them, without and
# with OTLP export (to otlp_sink.py), round by round on PostgreSQL with a fresh database each
# run: `sync.sh PEOPLE` SYNC_ROUNDS rounds, then `webhooks.sh` WEBHOOK_ROUNDS rounds (five
# each by default: runs of one build differ by up to 20 % on this machine).
#
#   host/benches/external/overhead.sh BASE_BIN_DIR HEAD_BIN_DIR [PEOPLE]
#
# Each directory holds `hub` and `regnakes-sim` of a release build. Needs psql on
# postgres://postgres@127.0.0.1:5432 (it drops and creates the database hub_wrk), wrk, python3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
base=$1 head=$2 people=${3:-30000}
db=postgres://postgres@127.0.0.1:5432/hub_wrk
sink_pid=""
fresh_db() { psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS hub_wrk" -c "CREATE DATABASE hub_wrk" >/dev/null; }
# run VARIANT COMMAND…: with the build and environment VARIANT names (base, head, head-otlp).
run() {
  local variant=$1; shift
  local bin=$base env=""
  [ "$variant" != base ] && bin=$head
  if [ "$variant" = head-otlp ]; then
    python3 "$here/otlp_sink.py" 4318 >"${TMPDIR:-/tmp}/otlp-sink.out" 2>&1 & sink_pid=$!
    sleep 0.5
    env="env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"
  fi
  fresh_db
  HUB_BIN_DIR=$bin HUB_BIN=$bin/hub HUB_BENCH_ENV="$env" "$@"
  if [ "$variant" = head-otlp ]; then kill "$sink_pid"; wait "$sink_pid" 2>/dev/null; cat "${TMPDIR:-/tmp}/otlp-sink.out"; fi
}
for round in $(seq 1 "${SYNC_ROUNDS:-5}"); do
  for variant in base head head-otlp; do
    echo "== sync $variant, round $round"
    run "$variant" "$here/sync.sh" "$people" "$db" | grep -E "records/s|CPU|RSS|^run"
  done
done
for round in $(seq 1 "${WEBHOOK_ROUNDS:-5}"); do
  for variant in base head head-otlp; do
    echo "== webhooks $variant, round $round"
    HUB_BENCH_REQUESTS=300000 run "$variant" "$here/webhooks.sh" "$db" | grep -E "Requests/sec|50%|99%|RSS|per webhook"
  done
done
