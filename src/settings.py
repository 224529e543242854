"""The vars and secrets apiary reads, by name.

Both runtimes build a `ports.Config` from these names only, so a secret is always known to be
one and can be redacted from logs and errors.
"""

VARS = frozenset(
    {
        "ENVIRONMENT",
        "VERSION",
        "CORS_ORIGINS",
        "LOG_LEVEL",
        "BACKEND_BASE",
        "CF_ACCOUNT_ID",
        "BROWSER_RUNNER_URL",
    }
)
SECRETS = frozenset(
    {
        "JWT_SECRET",
        "CRON_TOKEN",
        "SLACK_WEBHOOK_URL",
        "CF_API_TOKEN",
    }
)
