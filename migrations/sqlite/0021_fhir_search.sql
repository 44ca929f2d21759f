-- FHIR (issue 19): what the FHIR server finds golden records by, derived from them in the
-- transaction that writes them (pipeline::derive).
--
-- The facilities practitioners work at (Organization, Location) and each practitioner's
-- employments as roles (PractitionerRole), so FHIR can search roles by facility and include
-- what they reference. A facility's code and name are public (the ministry publishes them);
-- a role row holds only which facility a practitioner id is linked to: position and period
-- stay in the sealed golden record, opened when a role is read.
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
-- Partial: RegNakes names facilities without their codes, and such roles need no entry.
CREATE INDEX practitioner_roles_facility ON practitioner_roles (facility_id, id) WHERE facility_id IS NOT NULL;

-- Blind keys of each word of a practitioner's name and of their birth date (HMAC under
-- the blind-index key, as the NIK's), so FHIR's name and birthdate searches match without
-- decrypting anything.
CREATE TABLE practitioner_search_keys (
    search_key       BLOB NOT NULL,
    practitioner_id  TEXT NOT NULL,
    PRIMARY KEY (search_key, practitioner_id)
);
CREATE INDEX practitioner_search_keys_practitioner ON practitioner_search_keys (practitioner_id);

-- Practitioners whose rows above are to be derived from their sealed record when the hub
-- starts (pipeline::upgrade): every one stored before this migration, and later those whose
-- names are normalized again. Each is taken off as it is done.
CREATE TABLE practitioners_to_derive (id TEXT PRIMARY KEY);
INSERT INTO practitioners_to_derive (id) SELECT id FROM practitioners;
