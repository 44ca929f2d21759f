#!/usr/bin/env bash
# The cost of tracing on one release build, on PostgreSQL with a fresh database each run:
# `sync.sh PEOPLE` SYNC_ROUNDS rounds, then `webhooks.sh` WEBHOOK_ROUNDS rounds (five each by
# default). Metrics are always on; what they and a request's span cost alone is
# `cargo bench -p hub --bench telemetry`.
#
#   host/benches/external/overhead.sh BIN_DIR [PEOPLE]
#
# One after another (the default), each round runs three variants: without spans
# (`OTEL_SDK_DISABLED=true`), with spans exported nowhere (the default) and with every span
# exported by OTLP to otlp_sink.py. With SIDE_BY_SIDE=1 each round runs the two that the goal
# compares, A and B (default `off` and `otlp`), at the same time instead: two hubs, each with
# its own database, port and load, their measured parts started together (barrier.sh). The
# machine's speed drifts by more than a few per cent between one run and the next; side by
# side, both see the same machine.
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
# one_by_one BENCH ROUND LINES COMMAND…: COMMAND for each variant, one after another, each
# round starting with the next, so that none is always the one run after another.
one_by_one() {
  local bench=$1 round=$2 lines=$3 all=(off spans otlp); shift 3
  for variant in "${all[@]:$((round % 3))}" "${all[@]:0:$((round % 3))}"; do
    echo "== $bench $variant, round $round"
    [ "$variant" = otlp ] && start_sink
    fresh_db hub_wrk
    HUB_BIN_DIR=$bin HUB_BIN=$bin/hub HUB_BENCH_ENV="$(hub_env "$variant")" "$@" "$server/hub_wrk" | grep -E "$lines"
    [ "$variant" = otlp ] && stop_sink
  done
}
# side_by_side BENCH ROUND LINES COMMAND…: COMMAND for variants A and B at once; they swap
# ports and databases each round.
side_by_side() {
  local bench=$1 round=$2 lines=$3 variants=("${A:-off}" "${B:-otlp}") pids=(); shift 3
  [ $((round % 2)) = 0 ] && variants=("${variants[1]}" "${variants[0]}")
  start_sink
  rm -rf "$out/barrier" && mkdir "$out/barrier"
  for i in 0 1; do
    fresh_db "hub_wrk_$i"
    HUB_BENCH_PORT=$((18080 + i)) HUB_BENCH_BARRIER="$out/barrier:2" HUB_BIN_DIR=$bin HUB_BIN=$bin/hub \
      HUB_BENCH_ENV="$(hub_env "${variants[$i]}")" "$@" "$server/hub_wrk_$i" >"$out/run-$i" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  for i in 0 1; do
    echo "== $bench side by side ${variants[$i]}, round $round"
    grep -E "$lines|rror" "$out/run-$i"
  done
  stop_sink
}
rounds=one_by_one && [ "${SIDE_BY_SIDE:-}" = 1 ] && rounds=side_by_side
for round in $(seq 1 "${SYNC_ROUNDS:-5}"); do
  $rounds sync "$round" "records/s|CPU|RSS|^run" "$here/sync.sh" "$people"
done
for round in $(seq 1 "${WEBHOOK_ROUNDS:-5}"); do
  HUB_BENCH_REQUESTS=300000 $rounds webhooks "$round" "Requests/sec|50%|99%|RSS|per webhook|a call|otlp sink|PostgreSQL CPU" "$here/webhooks.sh"
done
