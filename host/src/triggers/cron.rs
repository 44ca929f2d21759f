//! Cron schedules: an expression read in an IANA time zone (default Asia/Jakarta).
//!
//! Expressions have 5 fields (`min hour day month weekday`, fired at second 0) or 6–7
//! (`sec min hour day month weekday [year]`). Every fire time becomes one run keyed by that
//! time, unique per connector in the database, so several hubs on one database fire it once.
//! After downtime only the latest missed fire time runs: a schedule catches up once, not once
//! per missed tick. A tick that finds a run of the connector still queued is skipped, so a
//! slow sync never builds a backlog of runs.

use crate::manager::Manager;
use chrono::{DateTime, Utc};
use std::str::FromStr;
use std::time::Duration;

pub const DEFAULT_TIMEZONE: &str = "Asia/Jakarta";

/// How far back a schedule looks for a missed fire time (bounds the search after a long
/// stop; a missed fire older than this is not run).
const CATCH_UP: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error(
        "schedule {0:?} is not a cron expression: use 5 fields (min hour day month weekday) or 6-7 (with seconds first, year last)"
    )]
    Expression(String),
    #[error("timezone {0:?} is not an IANA time zone name like Asia/Jakarta")]
    Timezone(String),
}

/// An IANA time zone name like `Asia/Jakarta`.
pub fn parse_timezone(timezone: &str) -> Result<chrono_tz::Tz, ScheduleError> {
    timezone.parse().map_err(|_| ScheduleError::Timezone(timezone.into()))
}

#[derive(Clone, Debug)]
pub struct Schedule {
    cron: cron::Schedule,
    tz: chrono_tz::Tz,
}

impl Schedule {
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, ScheduleError> {
        let fields = expression.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expression}"),
            6 | 7 => expression.to_string(),
            _ => return Err(ScheduleError::Expression(expression.into())),
        };
        let cron = cron::Schedule::from_str(&full).map_err(|_| ScheduleError::Expression(expression.into()))?;
        Ok(Self {
            cron,
            tz: parse_timezone(timezone)?,
        })
    }

    /// The first fire time after `now`.
    pub fn next_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&now.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The longest wait between two of the next fire times after `now` (looking at up to
    /// 64 of them, within 35 days): what a connector on this schedule may go without a run.
    pub fn longest_gap(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        let horizon = now + chrono::Duration::days(35);
        let fires: Vec<DateTime<Utc>> = self
            .cron
            .after(&now.with_timezone(&self.tz))
            .take(64)
            .map(|t| t.with_timezone(&Utc))
            .take_while(|t| *t <= horizon)
            .collect();
        fires.windows(2).filter_map(|w| (w[1] - w[0]).to_std().ok()).max()
    }

    /// The latest fire time in `(since, now]`, if any.
    pub fn latest_due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let since = since.max(now - CATCH_UP).with_timezone(&self.tz);
        self.cron
            .after(&since)
            .take_while(|t| t.with_timezone(&Utc) <= now)
            .last()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// Fires connectors' schedules: every hub checks each tick, and the run of one fire time is
/// started once whatever the number of hubs (its fire key is unique).
pub struct Scheduler {
    manager: Manager,
}

impl Scheduler {
    pub fn new(manager: Manager) -> Self {
        Self { manager }
    }

    /// Fires due schedules every `tick` until the hub stops.
    pub fn spawn(self, tick: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                if let Err(error) = self.fire_due(Utc::now()).await {
                    tracing::error!(%error, "checking connector schedules failed");
                }
                tokio::time::sleep(tick).await;
            }
        })
    }

    /// Starts one run per connector whose schedule has a fire time due since the last one
    /// handled; returns how many this hub started (another hub may have fired some).
    pub async fn fire_due(&self, now: DateTime<Utc>) -> Result<usize, crate::manager::ManagerError> {
        let manager = &self.manager;
        let mut started = 0;
        for (connector, last_fired) in manager.db().scheduled_connectors().await? {
            let Some(expression) = &connector.schedule else {
                continue;
            };
            let schedule = match Schedule::parse(expression, &connector.timezone) {
                Ok(schedule) => schedule,
                Err(error) => {
                    tracing::error!(connector = %connector.id, %error, "stored schedule is invalid");
                    continue;
                }
            };
            let since = last_fired.unwrap_or(connector.updated_at).as_datetime();
            let Some(due) = schedule.latest_due(since, now) else {
                continue;
            };
            let due = crate::store::Timestamp::from(due);
            let fire_key = due.to_string();
            // A run still waiting for its slot will fetch what this tick would: ticks coalesce
            // instead of piling up behind a slow sync.
            let counts = manager.db().run_counts(&connector.id).await?;
            if counts.iter().any(|(status, n)| status == "queued" && *n > 0) {
                tracing::debug!(connector = %connector.id, fire = %fire_key, "a run is already queued; tick skipped");
            } else if manager.runs().start_scheduled(&connector, &fire_key).await?.is_some() {
                tracing::info!(connector = %connector.id, fire = %fire_key, "scheduled run started");
                started += 1;
            }
            manager.db().set_last_fired(&connector.id, due).await?;
        }
        Ok(started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn five_fields_fire_at_second_zero_in_the_time_zone() {
        // 02:00 in Jakarta (UTC+7) is 19:00 UTC the day before.
        let daily = Schedule::parse("0 2 * * *", DEFAULT_TIMEZONE).unwrap();
        assert_eq!(
            daily.next_after(at("2026-11-22T12:00:00Z")),
            Some(at("2026-11-22T19:00:00Z"))
        );
        let utc = Schedule::parse("0 2 * * *", "UTC").unwrap();
        assert_eq!(
            utc.next_after(at("2026-11-22T12:00:00Z")),
            Some(at("2026-11-23T02:00:00Z"))
        );
    }

    #[test]
    fn after_downtime_only_the_latest_missed_fire_is_due() {
        let hourly = Schedule::parse("0 * * * *", "UTC").unwrap();
        let due = hourly.latest_due(at("2026-11-22T01:30:00Z"), at("2026-11-22T09:10:00Z"));
        assert_eq!(due, Some(at("2026-11-22T09:00:00Z")));
        assert_eq!(
            hourly.latest_due(at("2026-11-22T09:00:00Z"), at("2026-11-22T09:10:00Z")),
            None
        );
    }

    #[test]
    fn bad_expressions_and_zones_say_what_is_expected() {
        assert!(matches!(
            Schedule::parse("every hour", "UTC"),
            Err(ScheduleError::Expression(_))
        ));
        assert!(matches!(
            Schedule::parse("61 * * * *", "UTC"),
            Err(ScheduleError::Expression(_))
        ));
        assert!(matches!(
            Schedule::parse("0 * * * *", "Mars/Olympus"),
            Err(ScheduleError::Timezone(_))
        ));
        assert!(Schedule::parse("*/5 * * * * *", "Asia/Makassar").is_ok());
    }
}
