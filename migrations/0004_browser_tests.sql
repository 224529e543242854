-- Browser checks: each run projected by its BrowserTestRun Durable Object (upserts guarded by
-- version), and the named suites. Screenshots live in the ARTIFACTS bucket under
-- `screenshot_key`.
CREATE TABLE IF NOT EXISTS browser_test_runs (
    id TEXT PRIMARY KEY,
    test_type TEXT NOT NULL,
    target_url TEXT NOT NULL,
    status TEXT NOT NULL,
    assertions TEXT NOT NULL DEFAULT '[]',
    duration_ms INTEGER,
    error TEXT,
    screenshot_key TEXT,
    suite_run_id TEXT,
    suite_name TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    version INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS browser_test_runs_by_type ON browser_test_runs (test_type, id);
CREATE INDEX IF NOT EXISTS browser_test_runs_by_status ON browser_test_runs (status, id);
CREATE INDEX IF NOT EXISTS browser_test_runs_by_suite ON browser_test_runs (suite_run_id, id);

CREATE TABLE IF NOT EXISTS browser_suites (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    tests TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
