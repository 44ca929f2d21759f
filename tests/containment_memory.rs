//! Hostile plugins that try to exhaust the hub's memory (issue 12): a log flood and a
//! 200,000-record emit. Their own binary, one test at a time, so the RSS measured is the
//! hub's under that attack and nothing else's.
//!
//! The bound is on what the attack adds: the issue asks RSS < 512 MiB, and a hub starts at
//! about 100 MiB (106 MiB measured in this process, before the first flood), so a flood may
//! add at most 400 MiB. Measured 2026-11-30: the 200,000-record emit adds 290-316 MiB with
//! `memory_mib = 256` (the plugin's own memory, then the batch lifted into the host before the
//! quota refuses it); the log flood adds ~10 MiB.

use hub_e2e::backends;
use hub_e2e::hostile::{Watch, hostile, hostile_hub, no_other_dead_jobs, start_run, well_behaved};
use serde_json::json;

/// What either flood may add to the hub's RSS (see above).
const RSS_GROWTH_LIMIT_MIB: u64 = 400;

/// One flood at a time: RSS is per process.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_fails_its_own_run_with_memory_and_storage_bounded() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let hub = hostile_hub(backend, |_| {}).await;
        let flood = hostile(
            &hub,
            "log-flood",
            json!({ "mode": "log-flood", "count": 100_000, "bytes": 64 * 1024 }),
            json!({}),
        )
        .await;
        let (good, _sim) = well_behaved(&hub).await;
        let watch = Watch::start(&hub);
        let flood_run = start_run(&hub, &flood).await;
        let good_run = hub.run_to_end(&good).await;
        let run = hub.wait_for_run(&flood_run).await;
        let (slowest, grew_mib) = watch.finish().await;
        assert_eq!(good_run["status"], "succeeded", "{backend:?}: {good_run}");
        assert_eq!(run["status"], "failed", "{backend:?}: {run}");
        assert!(
            run["error"].as_str().unwrap().contains("quotas.log_lines = 10000"),
            "{backend:?}: {run}"
        );
        let lines = hub
            .all_pages(&format!("/api/v1/connectors/{flood}/logs?run_id={flood_run}"))
            .await;
        assert!(
            (10_000..=10_010).contains(&lines.len()),
            "{backend:?}: {} lines stored",
            lines.len()
        );
        let payload = lines.iter().find_map(|l| l["fields"]["payload"].as_str()).unwrap();
        assert!(payload.len() <= 1024 && payload.ends_with("[truncated]"), "{backend:?}");
        assert!(slowest < 1_000, "{backend:?}: /healthz took {slowest} ms");
        eprintln!("{backend:?}: RSS rose {grew_mib} MiB, slowest /healthz {slowest} ms");
        assert!(grew_mib < RSS_GROWTH_LIMIT_MIB, "{backend:?}: RSS rose {grew_mib} MiB");
        no_other_dead_jobs(&hub, &[&flood]).await;
        hub.hub.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_emit_fails_its_own_run_and_a_large_one_is_stored_in_short_transactions() {
    let _alone = ONE_AT_A_TIME.lock().await;
    for backend in backends() {
        let hub = hostile_hub(backend, |c| c.limits.memory_mib = 256).await;
        let huge = hostile(
            &hub,
            "huge-emit",
            json!({ "mode": "emit-flood", "count": 200_000 }),
            json!({}),
        )
        .await;
        let large = hostile(
            &hub,
            "large-emit",
            json!({ "mode": "emit-flood", "count": 3_000 }),
            json!({}),
        )
        .await;
        let (good, _sim) = well_behaved(&hub).await;
        let watch = Watch::start(&hub);
        let runs = [
            start_run(&hub, &huge).await,
            start_run(&hub, &large).await,
            start_run(&hub, &good).await,
        ];
        let huge_run = hub.wait_for_run(&runs[0]).await;
        let large_run = hub.wait_for_run(&runs[1]).await;
        let good_run = hub.wait_for_run(&runs[2]).await;
        let (slowest, grew_mib) = watch.finish().await;
        assert_eq!(huge_run["status"], "failed", "{backend:?}: {huge_run}");
        assert!(
            huge_run["error"]
                .as_str()
                .unwrap()
                .contains("quotas.records_per_emit = 5000: an emit of 200000 records"),
            "{backend:?}: {huge_run}"
        );
        assert_eq!(large_run["status"], "succeeded", "{backend:?}: {large_run}");
        assert_eq!(large_run["records_created"], 3_000, "{backend:?}: {large_run}");
        assert_eq!(good_run["status"], "succeeded", "{backend:?}: {good_run}");
        assert!(slowest < 1_000, "{backend:?}: /healthz took {slowest} ms");
        eprintln!("{backend:?}: RSS rose {grew_mib} MiB, slowest /healthz {slowest} ms");
        assert!(grew_mib < RSS_GROWTH_LIMIT_MIB, "{backend:?}: RSS rose {grew_mib} MiB");
        no_other_dead_jobs(&hub, &[&huge]).await;
        // Every accepted run request has its audit entry.
        let audit = hub.all_pages("/api/v1/audit").await;
        let run_entries = audit.iter().filter(|e| e["action"] == "connector.run").count();
        assert_eq!(run_entries, 3, "{backend:?}");
        hub.hub.stop().await;
    }
}
