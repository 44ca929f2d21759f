#!/usr/bin/env bash
# The cost of tracing on one release build: without spans (`OTEL_SDK_DISABLED=true`), with
# spans exported nowhere (the default), and with every span exported by OTLP to
# otlp_sink.py, round by round on PostgreSQL with a fresh database each run: `sync.sh PEOPLE`
# SYNC_ROUNDS rounds, then `webhooks.sh` WEBHOOK_ROUNDS rounds (five each by default: runs of
# one variant differ by up to 20 % on this machine), then SIDE_BY_SIDE_ROUNDS (default 0)
# webhook rounds in which the hub without spans and the hub exporting every span run at the
# same time, each with its own database, port and wrk, their bursts started together: both
# then see the same machine, whose speed drifts by more than the effect between one run and
# the next. Metrics are always on; what they and a request's span cost alone is
# `cargo bench -p hub --bench telemetry`.
#
#   host/benches/external/overhead.sh BIN_DIR [PEOPLE]
#
# BIN_DIR holds `hub` and `regnakes-sim` of a release build. Needs psql on
# postgres://postgres@127.0.0.1:5432 (it drops and creates the databases hub_wrk*), wrk,
# python3.
set -u
here=$(cd "$(dirname "$0")" && pwd)
bin=$1 people=${2:-30000}
server=postgres://postgres@127.0.0.1:5432
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
sink_pid=""
fresh_db() { psql -q "$server/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null; }
start_sink() { python3 "$here/otlp_sink.py" 4318 >"$out/otlp-sink" 2>&1 & sink_pid=$!; sleep 0.5; }
stop_sink() { kill "$sink_pid"; wait "$sink_pid" 2>/dev/null; cat "$out/otlp-sink"; }
# hub_env VARIANT: what prefixes the hub's command for VARIANT (off, spans, otlp).
hub_env() {
  case $1 in
    off) echo "env OTEL_SDK_DISABLED=true" ;;
    otlp) echo "env OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318" ;;
  esac
}
# run VARIANT COMMAND…: COMMAND on a fresh hub_wrk with the hub's environment for VARIANT.
run() {
  local variant=$1; shift
  [ "$variant" = otlp ] && start_sink
  fresh_db hub_wrk
  HUB_BIN_DIR=$bin HUB_BIN=$bin/hub HUB_BENCH_ENV="$(hub_env "$variant")" "$@" "$server/hub_wrk"
  [ "$variant" = otlp ] && stop_sink
}
webhook_lines="Requests/sec|50%|99%|RSS|per webhook|a call|otlp sink"
# Each round starts with the next variant, so none is always the one run after another.
order() { local all=(off spans otlp); echo "${all[@]:$(($1 % 3))}" "${all[@]:0:$(($1 % 3))}"; }
for round in $(seq 1 "${SYNC_ROUNDS:-5}"); do
  for variant in $(order "$round"); do
    echo "== sync $variant, round $round"
    run "$variant" "$here/sync.sh" "$people" | grep -E "records/s|CPU|RSS|^run"
  done
done
for round in $(seq 1 "${WEBHOOK_ROUNDS:-5}"); do
  for variant in $(order "$round"); do
    echo "== webhooks $variant, round $round"
    HUB_BENCH_REQUESTS=300000 run "$variant" "$here/webhooks.sh" | grep -E "$webhook_lines"
  done
done
for round in $(seq 1 "${SIDE_BY_SIDE_ROUNDS:-0}"); do
  start_sink
  rm -rf "$out/barrier" && mkdir "$out/barrier"
  # The two variants swap ports and databases each round.
  variants=(off otlp) && [ $((round % 2)) = 0 ] && variants=(otlp off)
  for i in 0 1; do
    fresh_db "hub_wrk_$i"
    HUB_BENCH_PORT=$((18080 + i)) HUB_BENCH_BARRIER="$out/barrier:2" HUB_BENCH_REQUESTS=300000 \
      HUB_BIN=$bin/hub HUB_BENCH_ENV="$(hub_env "${variants[$i]}")" \
      "$here/webhooks.sh" "$server/hub_wrk_$i" >"$out/${variants[$i]}" 2>&1 &
  done
  wait $(jobs -p | grep -vx "$sink_pid")
  for variant in off otlp; do
    echo "== webhooks side by side $variant, round $round"
    grep -E "$webhook_lines|rror" "$out/$variant"
  done
  stop_sink
done
