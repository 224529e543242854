-- Server credentials that are still good: a credential names its row by `cid`; rotating one
-- gives the old row a short grace period, and removing the server removes its rows, so a
-- credential stops working without waiting for its own expiry.
CREATE TABLE IF NOT EXISTS server_credentials (
    server_id TEXT NOT NULL,
    cid TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    PRIMARY KEY (server_id, cid)
);
