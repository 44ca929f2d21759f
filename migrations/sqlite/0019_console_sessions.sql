-- Console sign-ins. The session token lives only in the browser's HttpOnly cookie; the hub
-- keeps its SHA-256, so a copy of the database signs no one in. A session ends at
-- expires_at, or sooner when idle (last_seen_at, against [auth] session_idle_minutes), or
-- when the API key it signed in with (api_key_hash; NULL for the SSO) is revoked.
CREATE TABLE console_sessions (
    token_hash BLOB PRIMARY KEY,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    api_key_hash BLOB,
    pii_read INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
