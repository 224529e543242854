-- Fleet management: the managed Workers (inventory), their versions as apiary deployed them,
-- the templates kept in R2, and the audit of every change. Bindings are kept as names and
-- types only: a secret's value never reaches D1.
CREATE TABLE IF NOT EXISTS workers (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,             -- wkr_ ULID: the cursor of list pages
    environment TEXT NOT NULL,
    type TEXT NOT NULL,
    customer_id TEXT,
    namespace TEXT,                      -- a dispatch namespace, or NULL for the account's own
    subdomain TEXT UNIQUE,               -- customer Workers: {subdomain}.CUSTOMER_DOMAIN
    url TEXT,
    managed_by TEXT NOT NULL,            -- apiary, or sync (imported from the account)
    etag TEXT,
    main_module TEXT,
    compatibility_date TEXT,
    bindings TEXT NOT NULL DEFAULT '[]',
    limits TEXT NOT NULL DEFAULT '{}',
    placement TEXT NOT NULL DEFAULT '{}',
    routes TEXT NOT NULL DEFAULT '[]',
    deployment TEXT NOT NULL DEFAULT '[]',
    last_version_id TEXT,
    last_deployed_at TEXT,
    health_status TEXT NOT NULL DEFAULT 'unknown',
    health_changed_at TEXT,
    health_origin_ms INTEGER,
    health_interval_ms INTEGER,
    rollout_id TEXT,
    rollout_status TEXT,
    drift TEXT NOT NULL DEFAULT '[]',
    drift_checked_at TEXT,
    cpu_limit_ms INTEGER,
    subrequest_limit INTEGER,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT
);

CREATE TABLE IF NOT EXISTS worker_versions (
    version_id TEXT PRIMARY KEY,
    worker TEXT NOT NULL,
    author TEXT NOT NULL,
    message TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS worker_versions_by_worker ON worker_versions (worker, created_at);

CREATE TABLE IF NOT EXISTS worker_templates (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    r2_key TEXT NOT NULL,
    main_module TEXT NOT NULL,
    modules TEXT NOT NULL,               -- the module names (the sources are in R2)
    default_bindings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Who did what to which Worker, from which version to which, and how it ended.
CREATE TABLE IF NOT EXISTS fleet_audit (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    worker TEXT NOT NULL,
    from_version TEXT,
    to_version TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS fleet_audit_by_worker ON fleet_audit (worker, id);
