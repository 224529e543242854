"""Tunables for tasks and servers, from vars (seconds unless named otherwise)."""

from dataclasses import dataclass

from ports import Config
from tasks.health import Policy

REGISTRY = "SERVER_REGISTRY"
INSTANCES = "SERVER_INSTANCE"
TASKS = "TASK_MANAGER"


def _number(config: Config, name: str, default: float) -> float:
    raw = config.get(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        return default


@dataclass(frozen=True, slots=True)
class TaskSettings:
    public_url: str
    health: Policy
    check_timeout_s: float
    heartbeat_ttl_ms: int
    stale_after_ms: int
    wait_recheck_ms: int
    dispatch_timeout_s: float
    dispatch_tries: int
    registry_shards: int = 1

    @property
    def dispatch_window_ms(self) -> int:
        """How long a task's dispatch calls may take in all (its tries' timeouts)."""
        return int(self.dispatch_timeout_s * 1000 * self.dispatch_tries)

    @classmethod
    def from_config(cls, config: Config) -> "TaskSettings":
        return cls(
            public_url=(config.get("PUBLIC_URL") or "").rstrip("/"),
            health=Policy(
                min_interval_ms=int(_number(config, "HEALTH_INTERVAL_MIN_S", 5) * 1000),
                max_interval_ms=int(_number(config, "HEALTH_INTERVAL_MAX_S", 60) * 1000),
            ),
            check_timeout_s=_number(config, "HEALTH_CHECK_TIMEOUT_S", 3),
            heartbeat_ttl_ms=int(_number(config, "HEARTBEAT_TTL_S", 60) * 1000),
            stale_after_ms=int(_number(config, "SERVER_STALE_AFTER_S", 300) * 1000),
            wait_recheck_ms=int(_number(config, "TASK_WAIT_RECHECK_S", 30) * 1000),
            dispatch_timeout_s=_number(config, "DISPATCH_TIMEOUT_S", 5),
            dispatch_tries=int(_number(config, "DISPATCH_TRIES", 4)),
            registry_shards=max(1, int(_number(config, "REGISTRY_SHARDS", 1))),
        )
