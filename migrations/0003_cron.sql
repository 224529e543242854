-- Cron job runs and their attempts, projected by each job's JobRunner Durable Object (the
-- source of truth) from its outbox: upserts keyed by id and guarded by version, so a replayed
-- write changes nothing.
CREATE TABLE IF NOT EXISTS cron_runs (
    id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    scheduled_time TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    correlation_id TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    ended_at TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cron_runs_by_job ON cron_runs (job, id);
CREATE INDEX IF NOT EXISTS cron_runs_by_status ON cron_runs (status, id);
CREATE INDEX IF NOT EXISTS cron_runs_by_created ON cron_runs (created_at);

CREATE TABLE IF NOT EXISTS cron_attempts (
    run_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started_at TEXT NOT NULL,
    duration_ms INTEGER,
    http_status INTEGER,
    outcome TEXT,
    error TEXT,
    PRIMARY KEY (run_id, attempt)
);
