#!/usr/bin/env bash
# The cost of tracing on one release build: without spans (`OTEL_SDK_DISABLED=true`), with
# spans exported nowhere (the default), and with every span exported by OTLP to
# otlp_sink.py, round by round on PostgreSQL with a fresh database each run: `sync.sh PEOPLE`
# SYNC_ROUNDS rounds, then `webhooks.sh` WEBHOOK_ROUNDS rounds (five each by default: runs of
# one variant differ by up to 20 % on this machine). Metrics are always on; what they and
# a request's span cost alone is `cargo bench -p hub --bench telemetry`.
#
#   host/benches/external/overhead.sh BIN_DIR [PEOPLE]
#
# BIN_DIR holds `hub` and `regnakes-sim` of a release build. Needs psql on
# postgres://postgres@127.0.0.1:5432 (it drops and creates the database hub_wrk), wrk, python3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 people=${2:-30000}
db=postgres://postgres@127.0.0.1:5432/hub_wrk
sink_pid=""
fresh_db() { psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS hub_wrk WITH (FORCE)" -c "CREATE DATABASE hub_wrk" >/dev/null; }
# run VARIANT COMMAND…: with the environment VARIANT names (off, spans, otlp).
run() {
  local variant=$1; shift
  local env=""
  [ "$variant" = off ] && env="env OTEL_SDK_DISABLED=true"
  if [ "$variant" = otlp ]; then
    python3 "$here/otlp_sink.py" 4318 >"${TMPDIR:-/tmp}/otlp-sink.out" 2>&1 & sink_pid=$!
    sleep 0.5
    env="env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"
  fi
  fresh_db
  HUB_BIN_DIR=$bin HUB_BIN=$bin/hub HUB_BENCH_ENV="$env" "$@"
  if [ "$variant" = otlp ]; then kill "$sink_pid"; wait "$sink_pid" 2>/dev/null; cat "${TMPDIR:-/tmp}/otlp-sink.out"; fi
}
# Each round starts with the next variant, so none is always the one run after another.
order() { local all=(off spans otlp); echo "${all[@]:$(($1 % 3))}" "${all[@]:0:$(($1 % 3))}"; }
for round in $(seq 1 "${SYNC_ROUNDS:-5}"); do
  for variant in $(order "$round"); do
    echo "== sync $variant, round $round"
    run "$variant" "$here/sync.sh" "$people" "$db" | grep -E "records/s|CPU|RSS|^run"
  done
done
for round in $(seq 1 "${WEBHOOK_ROUNDS:-5}"); do
  for variant in $(order "$round"); do
    echo "== webhooks $variant, round $round"
    HUB_BENCH_REQUESTS=300000 run "$variant" "$here/webhooks.sh" "$db" | grep -E "Requests/sec|50%|99%|RSS|per webhook|a call|otlp sink"
  done
done
