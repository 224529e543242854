-- Foundation: a record of every scheduled event the Worker handled, so an operator can see
-- that Cron Triggers fire (and, locally, that `/__scheduled` works) before any job exists.
CREATE TABLE IF NOT EXISTS cron_events (
    id TEXT PRIMARY KEY,
    cron TEXT NOT NULL,
    scheduled_time TEXT NOT NULL,
    handled_at TEXT NOT NULL,
    jobs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS cron_events_by_time ON cron_events (scheduled_time);
