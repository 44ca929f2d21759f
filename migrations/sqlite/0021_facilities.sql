-- FHIR (issue 19): the facilities practitioners work at (Organization, Location) and each
-- practitioner's employments as roles (PractitionerRole), so FHIR can search roles by
-- facility and include what they reference. A facility's code and name are public (the
-- ministry publishes them); a role row holds only which facility a practitioner id is linked
-- to: position and period stay in the sealed golden record, opened when a role is read.
CREATE TABLE facilities (
    -- The facility code (kode fasyankes).
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- One more each time its name changes (meta.versionId).
    version_id  BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE practitioner_roles (
    -- The practitioner's id, '-', and a keyed digest of the employment (its facility,
    -- position and start), so the id stays while the record changes around it.
    id               TEXT PRIMARY KEY,
    practitioner_id  TEXT NOT NULL,
    -- NULL when the source names the facility without its code.
    facility_id      TEXT,
    updated_at       TEXT NOT NULL
);
CREATE INDEX practitioner_roles_practitioner ON practitioner_roles (practitioner_id, id);
CREATE INDEX practitioner_roles_facility ON practitioner_roles (facility_id, id);

-- Practitioners stored before this migration: the hub derives their roles from the sealed
-- record when it starts (pipeline::upgrade), and takes each off this list as it does.
CREATE TABLE practitioner_roles_pending (id TEXT PRIMARY KEY);
INSERT INTO practitioner_roles_pending (id) SELECT id FROM practitioners;
