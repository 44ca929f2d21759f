#!/usr/bin/env bash
# A pull sync of PEOPLE health workers from the RegNakes simulator (its own process) into a
# release `hub serve`, timed from the run request to the run's end, with the hub's peak RSS.
#
#   cargo build --release -p hub -p hub-sim && host/benches/external/sync.sh [PEOPLE] [postgres://…/empty_db]
#
# PEOPLE defaults to 100,000; without a database URL the hub uses SQLite in a temporary
# directory. HUB_BENCH_ENV prefixes the hub's command (for example `env MALLOC_ARENA_MAX=2`),
# HUB_BENCH_PORT sets its port (18080); HUB_BENCH_BARRIER holds the run request (barrier.sh).
# With HUB_BENCH_SUBSCRIBE=1 a webhook subscriber (`subscriber-sim`, its own process) is
# subscribed to every event first, and the script also times the delivery of the sync's
# events to it, to the last, then of all of them again by replay (delivery alone).
# With HUB_BENCH_RABBITMQ=1 the hub also publishes every event to RabbitMQ on 127.0.0.1:5672
# (as guest; `[events.rabbitmq]`), where a durable queue is bound to its exchange, and the
# script times the publishing of the sync's events until the queue holds the last (needs
# the Python package pika).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/barrier.sh"
bin=${HUB_BIN_DIR:-$here/../../../target/release}
people=${1:-100000}
port=${HUB_BENCH_PORT:-18080}
work=$(mktemp -d)
hub_pid="" sim_pid="" subscriber_pid=""
trap 'kill $hub_pid $sim_pid $subscriber_pid 2>/dev/null || true; rm -rf "$work"' EXIT

"$bin/regnakes-sim" "$people" 127.0.0.1:0 >"$work/sim.out" &
sim_pid=$!
for _ in $(seq 1 100); do [ -s "$work/sim.out" ] && break; sleep 0.2; done
read -r sim_url client_id client_secret <"$work/sim.out"

database=""
[ $# -gt 1 ] && database="database_url = \"$2\""
key=bench-admin-key-0123456789abcdef
printf 'listen = "127.0.0.1:%s"\ndata_dir = "%s/data"\n%s\n' "$port" "$work" "$database" >"$work/hub.toml"
exchange="hub-bench-$$"
# Declares the bench queue bound to the exchange (`declare`), counts its messages (`count`)
# or deletes both (`delete`).
amqp() {
  python3 - "$1" "$exchange" <<'PY'
import sys, pika
action, exchange = sys.argv[1], sys.argv[2]
channel = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1")).channel()
if action == "declare":
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(exchange, durable=True)
    channel.queue_bind(exchange, exchange, "#")
elif action == "count":
    print(channel.queue_declare(exchange, passive=True).method.message_count)
else:
    channel.queue_delete(exchange)
    channel.exchange_delete(exchange)
PY
}
if [ "${HUB_BENCH_RABBITMQ:-}" = 1 ]; then
  printf '[auth]\nmetrics_public = true\n[events.rabbitmq]\nexchange = "%s"\n' "$exchange" >>"$work/hub.toml"
  amqp declare
  trap 'kill $hub_pid $sim_pid $subscriber_pid 2>/dev/null || true; amqp delete || true; rm -rf "$work"' EXIT
fi
HUB_ADMIN_KEY=$key RUST_LOG=warn ${HUB_BENCH_ENV:-} "$bin/hub" serve --config "$work/hub.toml" >"$work/hub.log" 2>&1 &
hub_pid=$!
api="http://127.0.0.1:$port/api/v1"
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.2; done
auth="authorization: Bearer $key"
if [ "${HUB_BENCH_RABBITMQ:-}" = 1 ]; then
  # Connected before the connector is created: the queue gets every event from its creation.
  until curl -fs "http://127.0.0.1:$port/metrics" | grep -q '^hub_events_sink_connected{sink="rabbitmq"} 1'; do sleep 0.1; done
fi
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
connector=$(curl -fs -H "$auth" -H 'content-type: application/json' "$api/connectors" -d "{
  \"name\": \"regnakes\", \"plugin\": \"regnakes\", \"config\": {\"base_url\": \"$sim_url\", \"per_page\": 1000},
  \"egress\": [\"${sim_url#http://}\"], \"enabled\": true,
  \"credentials\": {\"regnakes\": {\"token_url\": \"$sim_url/oauth/token\", \"client_id\": \"$client_id\", \"client_secret\": \"client_secret\"}},
  \"secrets\": {\"client_secret\": \"$client_secret\"}}" | json '["id"]')
subscription=""
if [ "${HUB_BENCH_SUBSCRIBE:-}" = 1 ]; then
  "$bin/subscriber-sim" 127.0.0.1:0 >"$work/subscriber.out" &
  subscriber_pid=$!
  for _ in $(seq 1 100); do [ -s "$work/subscriber.out" ] && break; sleep 0.2; done
  subscription=$(curl -fs -H "$auth" -H 'content-type: application/json' "$api/subscriptions" \
    -d "{\"url\": \"$(cat "$work/subscriber.out")/events\"}" | json '["id"]')
fi
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$hub_pid/status")
wait_at_barrier
# utime + stime of the hub, in clock ticks: how much of the wall time is the hub's own CPU
# (the rest is the database and waiting).
cpu() { awk '{print $14 + $15}' "/proc/$hub_pid/stat"; }
cpu_before=$(cpu)
started=$(date +%s.%N)
run=$(curl -fs -H "$auth" -H 'content-type: application/json' -X POST "$api/connectors/$connector/run" -d '{}' | json '["id"]')
# Polled with grep, not python: a python start every 0.2 s took 10 % of a core from the hub
# and the database on this 2-core machine (perf, 2026-12-03).
until curl -fs -H "$auth" "$api/runs/$run" | grep -Eq '"status": ?"(succeeded|failed)"'; do
  sleep 0.2
done
ended=$(date +%s.%N)
curl -fs -H "$auth" "$api/runs/$run" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("run", r["status"], "received", r["records_received"], "created", r["records_created"], "rejected", r["records_rejected"], "held", r.get("records_held", "-"))'
python3 -c "print(f'{$people} people in {$ended - $started:.2f} s = {$people / ($ended - $started):.0f} records/s')"
python3 -c "print(f'hub CPU during the sync: {($(cpu) - $cpu_before) / $(getconf CLK_TCK):.1f} s')"
echo "hub RSS before the sync: $((rss_before / 1024)) MiB; peak (VmHWM): $(( $(awk '/VmHWM/ {print $2}' "/proc/$hub_pid/status") / 1024 )) MiB"
if [ "${HUB_BENCH_RABBITMQ:-}" = 1 ]; then
  # The connector's creation, one event per practitioner created, the run's end.
  expected=$(( $(curl -fs -H "$auth" "$api/runs/$run" | json '["records_created"]') + 2 ))
  until [ "$(amqp count)" -ge "$expected" ]; do sleep 0.2; done
  published=$(date +%s.%N)
  python3 -c "print(f'{$expected} events in the RabbitMQ queue {$published - $started:.2f} s from the run request = {$expected / ($published - $started):.0f} events/s; the last {$published - $ended:.2f} s after the run ended')"
fi
if [ -n "$subscription" ]; then
  # On an empty database the sync's events are seqs 1 to created + 2 (the connector's
  # creation, then one per practitioner, then the run's end).
  last=$(( $(curl -fs -H "$auth" "$api/runs/$run" | json '["records_created"]') + 2 ))
  # Waits until the subscription has had every event through seq $last.
  delivered_all() {
    until [ "$(curl -fs -H "$auth" "$api/subscriptions/$subscription" | json '["delivered_through"]')" -ge "$last" ]; do
      sleep 0.2
    done
  }
  delivered_all
  delivered=$(date +%s.%N)
  python3 -c "print(f'{$last} events delivered to one subscriber in {$delivered - $started:.2f} s from the run request = {$last / ($delivered - $started):.0f} events/s; the last {$delivered - $ended:.2f} s after the run ended')"
  # Delivery alone, not waiting on a sync: every event again, by replay.
  replayed=$(date +%s.%N)
  curl -fs -H "$auth" -H 'content-type: application/json' "$api/subscriptions/$subscription/replay" \
    -d '{"since": "2000-01-01T00:00:00Z"}' >/dev/null
  delivered_all
  done_at=$(date +%s.%N)
  python3 -c "print(f'replayed: {$last} events in {$done_at - $replayed:.2f} s = {$last / ($done_at - $replayed):.0f} events/s')"
fi
