#!/usr/bin/env bash
# Webhooks accepted durably, with the load generator (wrk) in its own process, and the hub's
# peak RSS: a release `hub serve` with a KKI connector, wrk posting distinct signed KKI
# events (a doctor's whole registration each) over 256 connections for 15 s.
#
#   cargo build --release -p hub && host/benches/external/webhooks.sh [postgres://...]
#
# Without an argument the hub uses SQLite in a temporary directory; a PostgreSQL database
# given must be empty (a fresh one per run). HUB_BENCH_ENV prefixes the hub's command (for
# example `env MALLOC_ARENA_MAX=2`), HUB_BENCH_PORT its port (18080); HUB_BENCH_BARRIER holds
# the burst (barrier.sh). Needs wrk and python3, and psql for PostgreSQL, whose CPU for the
# hub's database (its backends' processes) is counted too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/webhook_connector.sh"
. "$here/barrier.sh"
hub=${HUB_BIN:-$here/../../../target/release/hub}
port=${HUB_BENCH_PORT:-18080}
requests=${HUB_BENCH_REQUESTS:-400000}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

database=""
[ $# -gt 0 ] && database="database_url = \"$1\""
key=bench-admin-key-0123456789abcdef
cat >"$work/hub.toml" <<TOML
listen = "127.0.0.1:$port"
data_dir = "$work/data"
$database
TOML
HUB_ADMIN_KEY=$key HUB_METRICS_TOKEN=$key RUST_LOG=warn ${HUB_BENCH_ENV:-} "$hub" serve --config "$work/hub.toml" >"$work/hub.log" 2>&1 &
pid=$!
api="http://127.0.0.1:$port/api/v1"
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
auth="authorization: Bearer $key"
created=$(kki_connector "$api" "$auth")
read -r connector secret <<<"$created"

python3 "$here/signed_requests.py" "$secret" "$requests" >"$work/requests.tsv"
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
# utime + stime of the hub, in clock ticks, from before the burst until its workers have
# handled every accepted webhook: the whole cost of a webhook, accepting and processing.
# Steadier than webhooks per second, since wrk and the database share the two cores with the
# hub. (Instructions are steadier still: webhook_instructions.sh counts them under callgrind.)
wait_at_barrier
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# database_cpu: "PID TICKS" of each PostgreSQL backend of the hub's database.
database_cpu() {
  [ -n "$database" ] || return 0
  psql -Atq "${1%/*}/postgres" -c "SELECT pid FROM pg_stat_activity WHERE datname = '${1##*/}'" |
    while read -r backend; do awk -v p="$backend" '{print p, $14 + $15}' "/proc/$backend/stat" 2>/dev/null; done || true
}
cpu_before=$(cpu)
database_cpu "${1:-}" >"$work/database.before"
python3 "$here/thread_cpu.py" snapshot "$pid" >"$work/threads.before"
wrk -t2 -c256 -d15s --latency -s "$here/webhooks.lua" "http://127.0.0.1:$port/webhooks/$connector" -- "$work/requests.tsv" 2 | tee "$work/wrk.txt"
cpu_accepting=$(( $(cpu) - cpu_before ))
wait_for_jobs "http://127.0.0.1:$port" "$auth" 60
cpu_all=$(( $(cpu) - cpu_before ))
database_cpu "${1:-}" >"$work/database.after"
python3 "$here/thread_cpu.py" snapshot "$pid" >"$work/threads.after"
sent=$(awk '/requests in/ {print $1}' "$work/wrk.txt")
per() { python3 -c "print(f'{$1 / $(getconf CLK_TCK) / $sent * 1e6:.0f}')"; }
echo "hub CPU per webhook: $(per "$cpu_accepting") µs while accepting, $(per "$cpu_all") µs accepted and handled"
if [ -n "$database" ]; then
  # A backend's ticks since the first snapshot, or since it started if it started after.
  database_ticks=$(awk 'NR == FNR {before[$1] = $2; next} {sum += $2 - before[$1]} END {print sum + 0}' \
    "$work/database.before" "$work/database.after")
  echo "PostgreSQL CPU per webhook (the hub's database): $(per "$database_ticks") µs"
fi
python3 "$here/thread_cpu.py" per-unit "$work/threads.before" "$work/threads.after" "$sent"
webhooks_a_call "http://127.0.0.1:$port" "$auth" "$sent"
echo "hub RSS before the burst: $((rss_before / 1024)) MiB; peak (VmHWM) after it: $(( $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") / 1024 )) MiB"
