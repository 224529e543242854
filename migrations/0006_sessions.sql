-- The dashboard's operator sessions: an HttpOnly cookie names one row by the SHA-256 of its
-- value; the row carries the signing token's subject, scopes and expiry, never the token.
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    digest TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS dashboard_sessions_by_expiry ON dashboard_sessions (expires_at);
