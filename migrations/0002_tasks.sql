-- Tasks and servers: history and the projections the list endpoints query. The Durable
-- Objects are the source of truth; they upsert here from their outbox (keyed by id, guarded by
-- version), so a replayed write changes nothing.
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    server_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status, id);
CREATE INDEX IF NOT EXISTS tasks_by_type ON tasks (type, id);
CREATE INDEX IF NOT EXISTS tasks_by_server ON tasks (server_id, id);
CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at);

CREATE TABLE IF NOT EXISTS task_attempts (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    server_id TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (task_id, attempt)
);

CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS server_status_events (
    id TEXT PRIMARY KEY,
    server_id TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS server_status_events_by_server ON server_status_events (server_id, at);
