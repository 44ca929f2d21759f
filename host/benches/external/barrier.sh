# Sourced by sync.sh and webhooks.sh. wait_at_barrier: with HUB_BENCH_BARRIER=DIR:N, waits
# until N runs given the same DIR have reached theirs, so that runs side by side
# (overhead.sh with SIDE_BY_SIDE=1) start their measured part together; without it, returns.
wait_at_barrier() {
  [ -n "${HUB_BENCH_BARRIER:-}" ] || return 0
  local dir=${HUB_BENCH_BARRIER%:*} parties=${HUB_BENCH_BARRIER##*:}
  touch "$dir/$$"
  until [ "$(ls "$dir" | wc -l)" -ge "$parties" ]; do sleep 0.05; done
}
