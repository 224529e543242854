"""The fleet's vars and bindings, by name, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from fleet import cost
from fleet.cost import Plan
from ports import Config

HEALTH = "WORKER_HEALTH"  # Durable Object bindings
ROLLOUTS = "WORKER_ROLLOUTS"
WATCH = "FLEET_WATCH"
TEMPLATES_BUCKET = "ARTIFACTS"
TEMPLATES_PREFIX = "templates/"
DEFAULT_WORKERS_URL = "https://{name}.{subdomain}.workers.dev"
CUSTOMER_SCRIPT_PREFIX = "cust-"
# A new Worker's compatibility date unless the caller gives one: a released date (today's may
# be newer than the runtime knows; workerd refuses a date past its own build).
DEFAULT_COMPATIBILITY_DATE = "2025-11-17"
VARS = frozenset(
    {
        "FLEET_HEALTH_INTERVAL_S",
        "FLEET_HEALTH_BUCKET_S",
        "FLEET_HEALTH_TIMEOUT_S",
        "CF_PLAN",
        "FLEET_SCRIPT_LIMIT",
        "FLEET_DAILY_REQUEST_LIMIT",
        "WORKERS_URL",
        "WORKERS_SUBDOMAIN",
        "CUSTOMER_DOMAIN",
        "CUSTOMER_PATH_PREFIX",
        "CUSTOMER_NAMESPACE",
        "FLEET_COMPATIBILITY_DATE",
    }
)


def _number(config: Config, name: str, default: float) -> float:
    raw = config.get(name)
    try:
        value = float(raw) if raw is not None else default
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True, slots=True)
class FleetSettings:
    health_interval_ms: int
    health_bucket_ms: int
    health_timeout_s: float
    plan: Plan
    workers_url: str
    customer_domain: str | None
    customer_path_prefix: str | None
    customer_namespace: str

    @classmethod
    def of(cls, config: Config) -> FleetSettings:
        prefix = (config.get("CUSTOMER_PATH_PREFIX") or "").strip("/")
        try:
            plan = cost.plan_named(config.get("CF_PLAN"))
        except ValueError:
            plan = cost.PLANS[cost.DEFAULT_PLAN]
        return cls(
            health_interval_ms=int(_number(config, "FLEET_HEALTH_INTERVAL_S", 300) * 1000),
            health_bucket_ms=int(_number(config, "FLEET_HEALTH_BUCKET_S", 3600) * 1000),
            health_timeout_s=_number(config, "FLEET_HEALTH_TIMEOUT_S", 10),
            plan=plan,
            workers_url=config.get("WORKERS_URL") or DEFAULT_WORKERS_URL,
            customer_domain=(config.get("CUSTOMER_DOMAIN") or "").strip(".").lower() or None,
            customer_path_prefix=f"/{prefix}/" if prefix else None,
            customer_namespace=config.get("CUSTOMER_NAMESPACE") or "customers",
        )

    def url_of(self, name: str, subdomain: str) -> str:
        return self.workers_url.format(name=name, subdomain=subdomain).rstrip("/")
