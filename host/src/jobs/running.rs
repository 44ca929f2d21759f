//! The plugin calls running on this hub, by connector and job, so that disabling or
//! deleting a connector stops them at once here; other hubs find out when they renew their
//! leases (`Queue::keep_leases`, every `lease_secs / 3`).

use crate::runtime::Cancel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct Running {
    /// connector id → job id → its call's cancel handle.
    calls: Mutex<HashMap<String, HashMap<String, Cancel>>>,
}

/// A registered call; unregistered when dropped.
pub struct RunningCall {
    running: Arc<Running>,
    connector_id: String,
    job_ids: Vec<String>,
    pub cancel: Cancel,
}

impl Running {
    /// Registers the call that runs jobs `job_ids` (one sync, or events handed over together):
    /// cancelling any of them stops the call.
    pub fn start(self: &Arc<Self>, connector_id: &str, job_ids: &[String]) -> RunningCall {
        let cancel = Cancel::default();
        let mut calls = self.calls.lock().unwrap();
        let jobs = calls.entry(connector_id.to_string()).or_default();
        for id in job_ids {
            jobs.insert(id.clone(), cancel.clone());
        }
        RunningCall {
            running: self.clone(),
            connector_id: connector_id.to_string(),
            job_ids: job_ids.to_vec(),
            cancel,
        }
    }

    /// Cancels every call of `connector_id` on this hub; how many jobs they were running.
    pub fn cancel_connector(&self, connector_id: &str, reason: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        let Some(jobs) = calls.get(connector_id) else { return 0 };
        for cancel in jobs.values() {
            cancel.cancel(reason);
        }
        jobs.len()
    }

    /// Cancels the call of job `job_id`, if it runs here.
    pub fn cancel_job(&self, job_id: &str, reason: &str) {
        let calls = self.calls.lock().unwrap();
        if let Some(cancel) = calls.values().find_map(|jobs| jobs.get(job_id)) {
            cancel.cancel(reason);
        }
    }
}

impl Drop for RunningCall {
    fn drop(&mut self) {
        let mut calls = self.running.calls.lock().unwrap();
        if let Some(jobs) = calls.get_mut(&self.connector_id) {
            for id in &self.job_ids {
                jobs.remove(id);
            }
            if jobs.is_empty() {
                calls.remove(&self.connector_id);
            }
        }
    }
}
