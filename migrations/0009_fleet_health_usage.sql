-- What the fleet's objects and the hourly usage poll project: health changes and hourly check
-- counts (WorkerHealth), usage rows (the poll), rollouts (WorkerRollout) and the limits in
-- warning (FleetWatch). The hot tables are WITHOUT ROWID, so a row written is one row (no
-- separate primary-key index to write as well).
CREATE TABLE IF NOT EXISTS worker_health_events (
    id TEXT PRIMARY KEY,
    worker TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS worker_health_events_by_worker ON worker_health_events (worker, at);

CREATE TABLE IF NOT EXISTS worker_health_hours (
    worker TEXT NOT NULL,
    hour TEXT NOT NULL,
    checks INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (worker, hour)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS worker_usage (
    worker TEXT NOT NULL,
    period TEXT NOT NULL,                -- daily, weekly, monthly
    period_start TEXT NOT NULL,          -- YYYY-MM-DD
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    subrequests INTEGER NOT NULL,
    cpu_time_ms REAL NOT NULL,
    cost_usd REAL NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (worker, period, period_start)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS fleet_rollouts (
    id TEXT PRIMARY KEY,
    worker TEXT NOT NULL,
    status TEXT NOT NULL,
    new_version TEXT NOT NULL,
    stable_version TEXT NOT NULL,
    steps TEXT NOT NULL,
    step INTEGER NOT NULL,
    percentage INTEGER NOT NULL,
    reason TEXT,
    actor TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    ended_at TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_rollouts_by_worker ON fleet_rollouts (worker, id);

CREATE TABLE IF NOT EXISTS fleet_limits (
    name TEXT PRIMARY KEY,
    warning INTEGER NOT NULL,
    used INTEGER NOT NULL,
    max INTEGER NOT NULL,
    changed_at TEXT NOT NULL
);
