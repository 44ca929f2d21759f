-- Device observations (vital signs), FHIR-shaped: LOINC code, value and UCUM unit in clear
-- for queries; the subject and the components sealed in `details` (a subject names a person).
-- One row per device, code and time: a redelivered MQTT message stores nothing twice.
CREATE TABLE observations (
    id            TEXT PRIMARY KEY,
    connector_id  TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    code          TEXT NOT NULL,
    value         DOUBLE PRECISION,
    unit          TEXT,
    effective_at  TEXT NOT NULL,
    key_version   INTEGER NOT NULL,
    details       BYTEA NOT NULL,
    source_system TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (device_id, code, effective_at)
);
CREATE INDEX observations_by_connector ON observations (connector_id, id);
