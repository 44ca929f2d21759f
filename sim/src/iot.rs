//! IoT vital-sign sensors: `devices` devices publishing readings (heart rate, SpO2,
//! temperature, blood pressure, respiratory rate) as JSON to an MQTT broker with QoS 1, on
//! `sdmk/iot/<device>/vitals`, at a chosen rate. Some readings are abnormal (a finding the
//! hub keeps), some carry a value no body can show (a sensor fault the plugin drops), some
//! are not JSON at all. [`Published`] says what the hub should end up storing.

use crate::people::Seeded;
use chrono::{DateTime, Duration as Span, Utc};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct IotConfig {
    pub devices: usize,
    pub seed: u64,
    /// Topics are `<topic_prefix>/<device>/vitals`.
    pub topic_prefix: String,
    /// Share of readings with an abnormal (but possible) value.
    pub anomaly_rate: f64,
    /// Share of readings with one impossible value (a sensor fault).
    pub fault_rate: f64,
    /// Share of messages that are not JSON.
    pub malformed_rate: f64,
}

impl Default for IotConfig {
    fn default() -> Self {
        Self {
            devices: 20,
            seed: 2026,
            topic_prefix: "sdmk/iot".into(),
            anomaly_rate: 0.05,
            fault_rate: 0.02,
            malformed_rate: 0.02,
        }
    }
}

/// What one [`IotSim::publish`] sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Published {
    /// Messages the broker acknowledged.
    pub messages: usize,
    pub malformed: usize,
    pub faults: usize,
    pub anomalies: usize,
    /// Observations the hub should store: five per good reading (the blood pressure panel
    /// is one), four when one vital is a fault, none for a malformed message.
    pub observations: usize,
}

pub struct IotSim {
    config: IotConfig,
}

impl IotSim {
    pub fn new(config: IotConfig) -> Self {
        Self { config }
    }

    pub fn topic(&self, device: usize) -> String {
        format!("{}/{}/vitals", self.config.topic_prefix, device_id(device))
    }

    /// Publishes `readings` readings per device to the broker at `host:port`, QoS 1, at most
    /// `per_second` messages a second (`None`: as fast as the broker takes them); returns
    /// once the broker has acknowledged every one. Readings are timestamped from `start`,
    /// one second apart per device.
    pub async fn publish(
        &self,
        host: &str,
        port: u16,
        readings: usize,
        per_second: Option<u32>,
        start: DateTime<Utc>,
    ) -> anyhow::Result<Published> {
        let mut options = MqttOptions::new(format!("iot-sim-{}", uuid::Uuid::new_v4().simple()), host, port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let total = readings * self.config.devices;
        let acked = tokio::spawn(async move {
            let mut acked = 0;
            while acked < total {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(error) => return Err(anyhow::anyhow!("MQTT connection failed: {error}")),
                }
            }
            Ok(acked)
        });
        let mut rng = Seeded::new(self.config.seed);
        let mut published = Published::default();
        let pause = per_second.map(|n| Duration::from_secs_f64(1.0 / n.max(1) as f64));
        for reading in 0..readings {
            for device in 0..self.config.devices {
                let at = start + Span::seconds(reading as i64);
                let payload = self.reading(&mut rng, device, at, &mut published);
                client
                    .publish(self.topic(device), QoS::AtLeastOnce, false, payload)
                    .await?;
                if let Some(pause) = pause {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        published.messages = acked.await??;
        client.disconnect().await.ok();
        Ok(published)
    }

    fn reading(&self, rng: &mut Seeded, device: usize, at: DateTime<Utc>, published: &mut Published) -> Vec<u8> {
        if rng.chance(self.config.malformed_rate) {
            published.malformed += 1;
            return b"{\"device_id\": \"truncated".to_vec();
        }
        let jitter = |rng: &mut Seeded, base: f64, spread: u64| base + rng.below(spread) as f64 - (spread / 2) as f64;
        let mut hr = jitter(rng, 78.0, 20);
        let spo2 = 94.0 + rng.below(6) as f64;
        let mut temp = 36.5 + rng.below(10) as f64 / 10.0;
        let sys = jitter(rng, 120.0, 30);
        let dia = jitter(rng, 78.0, 16);
        let rr = jitter(rng, 16.0, 6);
        if rng.chance(self.config.anomaly_rate) {
            published.anomalies += 1;
            hr = 150.0 + rng.below(30) as f64;
        }
        published.observations += 5;
        if rng.chance(self.config.fault_rate) {
            published.faults += 1;
            published.observations -= 1;
            temp = 99.9;
        }
        json!({
            "device_id": device_id(device),
            "ts": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "subject": format!("RM-{:06}", device * 7 + 1),
            "hr": hr, "spo2": spo2, "temp": temp,
            "bp": { "sys": sys, "dia": dia },
            "rr": rr,
        })
        .to_string()
        .into_bytes()
    }
}

pub fn device_id(device: usize) -> String {
    format!("dev-{device:04}")
}
