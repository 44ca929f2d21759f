-- Ciphertext does not compress. Every sealed value over about 2 KB (a practitioner's details,
-- a source's record, a webhook's payload) went through TOAST's pglz attempt first, then was
-- stored out of line as it was: 3 % of the server's CPU in a 100,000-person sync
-- (BENCHMARKS.md, 2026-12-03). EXTERNAL stores it out of line without the attempt. Every
-- sealed column of store::keys::SEALED_TABLES (tests/migrations.rs checks them all).
ALTER TABLE practitioners ALTER COLUMN details SET STORAGE EXTERNAL,
    ALTER COLUMN nik SET STORAGE EXTERNAL,
    ALTER COLUMN str_number SET STORAGE EXTERNAL,
    ALTER COLUMN full_name SET STORAGE EXTERNAL,
    ALTER COLUMN birth_place SET STORAGE EXTERNAL,
    ALTER COLUMN birth_date SET STORAGE EXTERNAL,
    ALTER COLUMN phone SET STORAGE EXTERNAL,
    ALTER COLUMN email SET STORAGE EXTERNAL;
ALTER TABLE practitioner_versions ALTER COLUMN details SET STORAGE EXTERNAL,
    ALTER COLUMN nik SET STORAGE EXTERNAL,
    ALTER COLUMN str_number SET STORAGE EXTERNAL,
    ALTER COLUMN full_name SET STORAGE EXTERNAL,
    ALTER COLUMN birth_place SET STORAGE EXTERNAL,
    ALTER COLUMN birth_date SET STORAGE EXTERNAL,
    ALTER COLUMN phone SET STORAGE EXTERNAL,
    ALTER COLUMN email SET STORAGE EXTERNAL;
ALTER TABLE practitioner_strs ALTER COLUMN str_number SET STORAGE EXTERNAL;
ALTER TABLE practitioner_sources ALTER COLUMN record SET STORAGE EXTERNAL;
ALTER TABLE accounts ALTER COLUMN subject SET STORAGE EXTERNAL,
    ALTER COLUMN username SET STORAGE EXTERNAL,
    ALTER COLUMN email SET STORAGE EXTERNAL;
ALTER TABLE rejects ALTER COLUMN record SET STORAGE EXTERNAL;
ALTER TABLE identity_candidates ALTER COLUMN record SET STORAGE EXTERNAL;
ALTER TABLE observations ALTER COLUMN details SET STORAGE EXTERNAL;
ALTER TABLE subscriptions ALTER COLUMN secret SET STORAGE EXTERNAL,
    ALTER COLUMN previous_secret SET STORAGE EXTERNAL;
ALTER TABLE jobs ALTER COLUMN payload SET STORAGE EXTERNAL;
ALTER TABLE connector_secrets ALTER COLUMN value SET STORAGE EXTERNAL;
