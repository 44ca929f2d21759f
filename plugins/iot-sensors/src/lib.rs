//! IoT vital-sign sensors: decodes the JSON each device publishes over MQTT and emits one
//! FHIR-shaped observation per vital sign, with its LOINC code and UCUM unit.
//!
//! A value outside what a body can show (a heart rate of 900, an SpO2 of 130 %) is a sensor
//! fault: that vital is dropped and logged. An abnormal but possible value (a heart rate of
//! 150) is a finding and is kept. A payload that is not the expected JSON is logged and
//! skipped, so one broken device never holds up the rest of its batch.

use healthforce_sdk::{
    CanonicalRecord, Connector, Error, Message, Observation, ObservationComponent, SourceRef, records,
};
use serde::Deserialize;

const SYSTEM: &str = "iot-sensors";

/// What a device publishes.
#[derive(Deserialize)]
struct Reading {
    device_id: String,
    /// RFC 3339.
    ts: String,
    subject: Option<String>,
    hr: Option<f64>,
    spo2: Option<f64>,
    temp: Option<f64>,
    bp: Option<BloodPressure>,
    rr: Option<f64>,
}

#[derive(Deserialize)]
struct BloodPressure {
    sys: f64,
    dia: f64,
}

/// A vital sign: LOINC code, UCUM unit and the range a body can show.
struct Vital {
    code: &'static str,
    unit: &'static str,
    name: &'static str,
    possible: (f64, f64),
}

const HEART_RATE: Vital = Vital {
    code: "8867-4",
    unit: "/min",
    name: "heart rate",
    possible: (20.0, 300.0),
};
const SPO2: Vital = Vital {
    code: "59408-5",
    unit: "%",
    name: "SpO2",
    possible: (50.0, 100.0),
};
const TEMPERATURE: Vital = Vital {
    code: "8310-5",
    unit: "Cel",
    name: "temperature",
    possible: (25.0, 45.0),
};
const RESPIRATORY_RATE: Vital = Vital {
    code: "9279-1",
    unit: "/min",
    name: "respiratory rate",
    possible: (2.0, 80.0),
};
const SYSTOLIC: Vital = Vital {
    code: "8480-6",
    unit: "mm[Hg]",
    name: "systolic pressure",
    possible: (40.0, 300.0),
};
const DIASTOLIC: Vital = Vital {
    code: "8462-4",
    unit: "mm[Hg]",
    name: "diastolic pressure",
    possible: (20.0, 200.0),
};
/// Blood pressure panel: the two pressures are its components.
const BLOOD_PRESSURE_PANEL: &str = "85354-9";

impl Vital {
    fn possible(&self, value: f64, device: &str) -> bool {
        let ok = value.is_finite() && (self.possible.0..=self.possible.1).contains(&value);
        if !ok {
            healthforce_sdk::log::warn(&format!(
                "device {device}: {} {value} is outside {}-{} {}; sensor fault, dropped",
                self.name, self.possible.0, self.possible.1, self.unit
            ));
        }
        ok
    }
}

struct IotSensors;

impl Connector for IotSensors {
    fn handle_messages(messages: Vec<Message>, _config: String) -> Result<(), Error> {
        let mut batch = Vec::with_capacity(messages.len() * 5);
        for message in &messages {
            match serde_json::from_slice::<Reading>(&message.payload) {
                Ok(reading) => observations(&reading, &mut batch),
                Err(e) => healthforce_sdk::log::warn(&format!(
                    "message on {} is not a vitals reading ({e}); skipped",
                    message.topic
                )),
            }
        }
        // The host may hand over several queued batches at once: emit at most 1,000 records
        // a call (the host's `records_per_emit` quota is 5,000 by default).
        for page in batch.chunks(1000) {
            records::emit(page)?;
        }
        Ok(())
    }
}

healthforce_sdk::export_connector!(IotSensors);

fn observations(r: &Reading, out: &mut Vec<CanonicalRecord>) {
    let observation = |code: &str, value: Option<f64>, unit: Option<&str>, components| {
        CanonicalRecord::Observation(Observation {
            device_id: r.device_id.clone(),
            subject: r.subject.clone(),
            code: code.into(),
            value,
            unit: unit.map(str::to_string),
            components,
            effective_at: r.ts.clone(),
            source: SourceRef {
                system: SYSTEM.into(),
                id: format!("{}/{}", r.device_id, r.ts),
                updated_at: None,
            },
        })
    };
    for (vital, value) in [
        (&HEART_RATE, r.hr),
        (&SPO2, r.spo2),
        (&TEMPERATURE, r.temp),
        (&RESPIRATORY_RATE, r.rr),
    ] {
        if let Some(value) = value.filter(|v| vital.possible(*v, &r.device_id)) {
            out.push(observation(vital.code, Some(value), Some(vital.unit), Vec::new()));
        }
    }
    if let Some(bp) = &r.bp
        && SYSTOLIC.possible(bp.sys, &r.device_id)
        && DIASTOLIC.possible(bp.dia, &r.device_id)
    {
        let component = |vital: &Vital, value| ObservationComponent {
            code: vital.code.into(),
            value,
            unit: vital.unit.into(),
        };
        out.push(observation(
            BLOOD_PRESSURE_PANEL,
            None,
            None,
            vec![component(&SYSTOLIC, bp.sys), component(&DIASTOLIC, bp.dia)],
        ));
    }
}
