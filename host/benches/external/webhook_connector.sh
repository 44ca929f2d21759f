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

# jobs_pending BASE_URL AUTH_HEADER: the hub's jobs queued or running, from its metrics
# ("unknown" when they cannot be read).
jobs_pending() {
  local metrics
  metrics=$(curl -fs -H "$2" "$1/metrics") || { echo unknown; return; }
  awk '/^hub_jobs\{/ && /status="(queued|running)"/ {n += $NF} END {print n + 0}' <<<"$metrics"
}
