//! What starts work besides an API call: cron schedules (`cron.rs`) and MQTT subscriptions
//! (`mqtt.rs`). Inbound webhooks have their own module (`crate::webhooks`).

pub mod cron;
pub mod mqtt;

pub use cron::{DEFAULT_TIMEZONE, Schedule, ScheduleError, Scheduler, parse_timezone};
pub use mqtt::{MqttConfig, MqttIngest};
