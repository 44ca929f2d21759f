#!/usr/bin/env bash
# What tracing costs a webhook in instructions, which this machine's drifting speed does not
# move: a release `hub serve` under callgrind (valgrind), counting only from just before a
# fixed number of signed KKI webhooks are sent until its workers have handled them all,
# without spans (`OTEL_SDK_DISABLED=true`), with spans (the default) and with every span
# exported by OTLP to otlp_sink.py. Throughput runs (`overhead.sh`) say what a user sees;
# this says what the spans themselves add, to the instruction.
#
#   host/benches/external/webhook_instructions.sh BIN_DIR [WEBHOOKS] [ROUNDS]
#
# VARIANTS="off spans" runs only those; CALLGRIND_ARGS adds callgrind options (for example
# --cache-sim=yes: simulated cache misses, in the profile CALLGRIND_KEEP keeps).
#
# BIN_DIR holds `hub` of a release build. PostgreSQL on postgres://postgres@127.0.0.1:5432
# (it drops and creates the database hub_callgrind); needs valgrind and python3. A run of
# 2,000 webhooks takes about a minute: the hub runs ~50x slower under callgrind.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/webhook_connector.sh"
bin=$1 webhooks=${2:-2000} rounds=${3:-3}
port=18090
work=$(mktemp -d)
pid="" sink_pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  [ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
key=bench-admin-key-0123456789abcdef
api="http://127.0.0.1:$port/api/v1"
auth="authorization: Bearer $key"

# run VARIANT ROUND: prints the hub's instructions per webhook for one run.
run() {
  local variant=$1 round=$2 env=()
  case $variant in
    off) env=(OTEL_SDK_DISABLED=true) ;;
    otlp) env=(OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318) ;;
  esac
  psql -q postgres://postgres@127.0.0.1:5432/postgres -c "DROP DATABASE IF EXISTS hub_callgrind WITH (FORCE)" \
    -c "CREATE DATABASE hub_callgrind" >/dev/null
  # Everything but the compiled plugins, which would take minutes to compile again under callgrind.
  mkdir -p "$work/data"
  find "$work/data" -mindepth 1 -maxdepth 1 ! -name compile-cache -exec rm -rf {} +
  rm -f "$work"/callgrind.*
  cat >"$work/hub.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$work/data"
database_url = "postgres://postgres@127.0.0.1:5432/hub_callgrind"
# The pooling allocator reserves address space for every slot's memories: the default 32
# slots ask for more than valgrind can map.
[limits]
max_instances = 4
TOML
  env HUB_ADMIN_KEY=$key HUB_METRICS_TOKEN=$key RUST_LOG=warn "${env[@]}" valgrind --tool=callgrind --instr-atstart=no ${CALLGRIND_ARGS:-} \
    --callgrind-out-file="$work/callgrind.out" "$bin/hub" serve --config "$work/hub.toml" >"$work/hub.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.5; done
  local created connector secret
  created=$(kki_connector "$api" "$auth")
  read -r connector secret <<<"$created"
  python3 "$here/signed_requests.py" "$secret" "$webhooks" >"$work/requests.tsv"
  callgrind_control -i on "$pid" >/dev/null 2>&1
  python3 - "$port" "$connector" "$work/requests.tsv" <<'PY'
import http.client, sys, threading
port, connector, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
lines = open(path).read().splitlines()
refused = []
def send(share):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    for line in share:
        webhook_id, timestamp, signature, body = line.split("\t", 3)
        conn.request("POST", f"/webhooks/{connector}", body=body, headers={
            "webhook-id": webhook_id, "webhook-timestamp": timestamp,
            "webhook-signature": signature, "content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 202:
            refused.append(response.status)
threads = [threading.Thread(target=send, args=(lines[i::8],)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
if refused:
    sys.exit(f"{len(refused)} webhooks refused: {sorted(set(refused))}")
PY
  # The workers are done when no job is queued or running.
  wait_for_jobs "http://127.0.0.1:$port" "$auth" 600
  webhooks_a_call "http://127.0.0.1:$port" "$auth" "$webhooks"
  # The exporter sends what it holds every 5 s: its last batch counts too.
  sleep 6
  callgrind_control -d "$pid" >/dev/null 2>&1
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  local instructions
  instructions=$(cat "$work"/callgrind.out.* | awk '/^summary:/ {n += $2} END {print n}')
  python3 -c "print(f'$variant: {$instructions / $webhooks:,.0f} instructions per webhook ({$instructions:,} for $webhooks)')"
  # CALLGRIND_KEEP=DIR keeps each run's profile, for callgrind_annotate.
  if [ -n "${CALLGRIND_KEEP:-}" ]; then mkdir -p "$CALLGRIND_KEEP" && cat "$work"/callgrind.out.* >"$CALLGRIND_KEEP/$variant.$round.callgrind"; fi
}

python3 "$here/otlp_sink.py" 4318 >"$work/otlp-sink.out" 2>&1 & sink_pid=$!
for round in $(seq 1 "$rounds"); do
  for variant in ${VARIANTS:-off spans otlp}; do run "$variant" "$round"; done
done
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true; sink_pid=""
cat "$work/otlp-sink.out"
