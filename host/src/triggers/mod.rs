//! What starts runs besides an API call: cron schedules (`cron.rs`). Webhooks and MQTT come
//! next (issue 5).

pub mod cron;

pub use cron::{DEFAULT_TIMEZONE, Schedule, ScheduleError, parse_timezone};
