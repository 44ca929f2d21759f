# Sourced by webhooks.sh and webhook_instructions.sh, which post signed KKI webhooks to a hub.

# kki_connector API AUTH_HEADER: creates a KKI connector on the hub at API; prints its id and
# webhook secret (`created=$(kki_connector …)`, so that a failure stops the script).
kki_connector() {
  local connector secret
  connector=$(curl -fs -H "$2" -H 'content-type: application/json' "$1/connectors" -d '{
    "name": "kki", "plugin": "kki", "config": {"base_url": "http://127.0.0.1:9"}, "egress": [],
    "secrets": {"api-token": "unused-token"}, "enabled": true}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  secret=$(curl -fs -H "$2" -X POST "$1/connectors/$connector/webhook-secret" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  [ -n "$secret" ] || { echo "the hub at $1 did not take the KKI connector" >&2; return 1; }
  echo "$connector $secret"
}

# wait_for_jobs BASE_URL AUTH_HEADER SECONDS: waits until the hub has no job queued or running
# (read from its metrics); fails when the metrics cannot be read or the jobs outlast SECONDS.
wait_for_jobs() {
  local metrics pending
  for _ in $(seq 1 $(($3 * 5))); do
    metrics=$(curl -fs -H "$2" "$1/metrics") || { echo "the hub's metrics at $1 cannot be read" >&2; return 1; }
    pending=$(awk '/^hub_jobs\{/ && /status="(queued|running)"/ {n += $NF} END {print n + 0}' <<<"$metrics")
    [ "$pending" = 0 ] && return 0
    sleep 0.2
  done
  echo "the hub still had $pending jobs queued or running after $3 s" >&2
  return 1
}

# webhooks_a_call BASE_URL AUTH_HEADER SENT: how many webhooks the plugin was handed a call
# (`handle_webhooks`), on average. The more a call, the less each pays of its job's spans and
# queries; under callgrind, ~50x slower, more wait to be taken together.
webhooks_a_call() {
  local calls
  calls=$(curl -fs -H "$2" "$1/metrics" |
    awk '/^hub_plugin_call_duration_seconds_count\{/ && /export="handle_webhooks"/ {n += $NF} END {print n + 0}')
  python3 -c "print(f'plugin calls: $calls, {$3 / max($calls, 1):.1f} webhooks a call')"
}
