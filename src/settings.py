"""The vars and secrets apiary reads, by name.

Both runtimes build a `ports.Config` from these names only, so a secret is always known to be
one and can be redacted from logs and errors.
"""

from fleet import settings as fleet_settings

VARS = (
    frozenset(
        {
            "ENVIRONMENT",
            "VERSION",
            "CORS_ORIGINS",
            "LOG_LEVEL",
            "BACKEND_BASE",
            "CF_ACCOUNT_ID",
            "BROWSER_RUNNER_URL",
            "PUBLIC_URL",
            "HEALTH_INTERVAL_MIN_S",
            "HEALTH_INTERVAL_MAX_S",
            "HEALTH_CHECK_TIMEOUT_S",
            "HEARTBEAT_TTL_S",
            "SERVER_STALE_AFTER_S",
            "TASK_WAIT_RECHECK_S",
            "REGISTRY_SHARDS",
            "DISPATCH_TIMEOUT_S",
            "DISPATCH_TRIES",
            "SERVER_CREDENTIAL_GRACE_S",
            "CF_API_BASE",
            "BROWSER_MAX_CONCURRENCY",
            "BROWSER_REQUESTS_PER_MINUTE",
            "EGRESS_ALLOW",
        }
    )
    | fleet_settings.VARS
)
SECRETS = frozenset(
    {
        "JWT_SECRET",
        "CRON_TOKEN",
        "SLACK_WEBHOOK_URL",
        "CF_API_TOKEN",
        "BROWSER_CREDENTIALS",
        "BROWSER_RUNNER_TOKEN",
    }
)
