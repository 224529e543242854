"""The local runtime's composition root: one Worker, its bindings and state, on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apiary_local import local_token
from apiary_local.account.local_account import DEFAULT_ACCOUNT_ID, LocalAccount
from apiary_local.assets import StaticAssets
from apiary_local.buckets import LocalBucket
from apiary_local.config import ConfigError, WorkerConfig
from apiary_local.d1 import LocalD1, apply_migrations
from apiary_local.meter import Meter
from apiary_local.namespace import LocalNamespace
from apiary_local.objects import ObjectHost
from apiary_local.scheduler import CronScheduler
from apiary_local.step_runner import GatedHttp, StepRunnerProcess
from clock import SystemClock
from cron.dispatch import ScheduledEvent
from egress import VAR as EGRESS
from egress import EgressError, EgressPolicy, GuardedHttp
from logs import get_logger, register_secrets
from outbound import HttpxHttp
from ports import Clock, Config
from services import Services
from settings import SECRETS

if TYPE_CHECKING:
    from worker import WorkerDefinition

log = get_logger("runtime")
DATABASE_BINDING = "DB"
# On one machine the peers (backends, fixture sites, the step runner) are on loopback.
DEFAULT_EGRESS_ALLOW = "loopback"


def local_defaults(values: dict[str, str], *, port: int, state_dir: Path) -> dict[str, str]:
    """Zero configuration: what apiary dev stands in for when it is not configured. An unset
    `CF_API_BASE` is apiary dev's own account API, an unset `CF_API_TOKEN` its generated local
    token, an unset `CF_ACCOUNT_ID` the local account's id, an unset `WORKERS_URL` the local
    account's Worker hosts. Set values are kept."""
    filled = dict(values)
    filled["CF_ACCOUNT_ID"] = values.get("CF_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
    filled["CF_API_BASE"] = values.get("CF_API_BASE") or f"http://127.0.0.1:{port}/client/v4"
    filled["CF_API_TOKEN"] = values.get("CF_API_TOKEN") or local_token.load_or_create(state_dir)
    # The local account's Workers are addressed by Host: {script}.localhost:{port}.
    filled["WORKERS_URL"] = values.get("WORKERS_URL") or f"http://{{name}}.localhost:{port}"
    filled[EGRESS] = values.get(EGRESS) or DEFAULT_EGRESS_ALLOW
    return filled


async def resolve_host(host: str) -> list[str]:
    """The addresses `host` resolves to, for the egress policy."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class LocalRuntime:
    def __init__(
        self,
        config: WorkerConfig,
        definition: WorkerDefinition,
        state_dir: Path,
        *,
        clock: Clock | None = None,
        run_crons: bool = True,
        evict_after_s: float = 30.0,
        port: int = 8787,
    ) -> None:
        self.config = config
        self.definition = definition
        self.state_dir = state_dir
        self.clock = clock or SystemClock()
        self.run_crons = run_crons
        self.meter = Meter()
        self.databases = {
            d1.binding: LocalD1(state_dir / "d1" / f"{d1.database_name}.sqlite", self.meter)
            for d1 in config.d1
        }
        if DATABASE_BINDING not in self.databases:
            raise ConfigError(f"wrangler.toml needs a D1 binding named {DATABASE_BINDING}")
        self.hosts: dict[str, ObjectHost] = {}
        hosts_by_class: dict[str, ObjectHost] = {}
        for binding in config.durable_objects:
            logic = definition.durable_objects.get(binding.class_name)
            if logic is None:
                raise ConfigError(
                    f"Durable Object class {binding.class_name!r} (binding {binding.name}) "
                    "is not defined by the worker"
                )
            if binding.class_name not in config.sqlite_classes:
                raise ConfigError(f"{binding.class_name} needs a new_sqlite_classes migration")
            if binding.class_name not in hosts_by_class:
                hosts_by_class[binding.class_name] = ObjectHost(
                    class_name=binding.class_name,
                    logic=logic,
                    state_dir=state_dir,
                    meter=self.meter,
                    services=lambda: self.services,
                    evict_after_s=evict_after_s,
                )
            self.hosts[binding.name] = hosts_by_class[binding.class_name]
        given = {**config.vars, **config.secrets}
        self.generated_token = not given.get("CF_API_TOKEN")
        values = local_defaults(given, port=port, state_dir=state_dir)
        # An unset BROWSER_RUNNER_URL: a step runner of our own, started on first use.
        self.step_runner: StepRunnerProcess | None = None
        if not values.get("BROWSER_RUNNER_URL"):
            token = values.get("BROWSER_RUNNER_TOKEN") or secrets.token_urlsafe(32)
            self.step_runner = StepRunnerProcess(
                token=token,
                egress_allow=values["EGRESS_ALLOW"],
                log_path=state_dir / "step-runner.log",
            )
            values["BROWSER_RUNNER_URL"] = self.step_runner.url
            values["BROWSER_RUNNER_TOKEN"] = token
        self.http = GatedHttp(HttpxHttp(), self.step_runner)
        try:
            policy = EgressPolicy.parse(values[EGRESS])
        except EgressError as exc:
            raise ConfigError(str(exc)) from None
        self.services = Services(
            database=self.databases[DATABASE_BINDING],
            namespaces={name: LocalNamespace(host) for name, host in self.hosts.items()},
            http=GuardedHttp(self.http, policy, resolve=resolve_host),
            clock=self.clock,
            config=Config(values, secret_names=SECRETS | frozenset(config.secrets)),
            buckets={
                b.binding: LocalBucket(state_dir / "r2" / b.bucket_name) for b in config.buckets
            },
        )
        register_secrets(self.services.config.secrets())
        self.app: Any = definition.create_app(lambda scope: self.services)
        self.assets = StaticAssets(config.assets) if config.assets else None
        self._tasks: list[asyncio.Task[None]] = []
        self._browser: Any = None
        self._rendering: Any = None
        self.account = LocalAccount(
            state_dir,
            account_id=values["CF_ACCOUNT_ID"],
            token=values["CF_API_TOKEN"],
            port=port,
            browser_rendering=self.browser_rendering,
        )

    def browser_rendering(self) -> Any:
        """The Browser Rendering REST subset, on a real Chromium started at first use."""
        if self._rendering is None:
            from apiary_local.browser_engine import BrowserEngine
            from apiary_local.browser_rendering import create_app

            values = self.services.config
            self._browser = BrowserEngine(
                max_concurrency=int(values.get("BROWSER_MAX_CONCURRENCY") or 2),
                egress=EgressPolicy.parse(values.get(EGRESS)),
            )
            self._rendering = create_app(
                self._browser,
                api_token=values.get("CF_API_TOKEN"),
                rate_per_minute=int(values.get("LOCAL_BROWSER_RATE_PER_MINUTE") or 180),
            )
        return self._rendering

    async def start(self) -> None:
        for binding, database in self.databases.items():
            source = next(d for d in self.config.d1 if d.binding == binding).migrations_dir
            applied = apply_migrations(database.conn, source)
            if applied:
                log.info(
                    "migrations applied", extra={"fields": {"db": binding, "applied": applied}}
                )
        for host in set(self.hosts.values()):
            await host.start()
        if self.run_crons and self.config.crons:
            scheduler = CronScheduler(self.config.crons, self.clock, self.scheduled)
            self._tasks.append(asyncio.create_task(scheduler.run()))
        self._tasks.append(asyncio.create_task(self._evict_idle()))
        await self.account.start()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for host in set(self.hosts.values()):
            await host.stop()
        await self.account.stop()
        if self.step_runner is not None:
            await self.step_runner.stop()
        for database in self.databases.values():
            database.close()
        if self._browser is not None:
            await self._browser.close()
        await self.http.aclose()

    async def scheduled(self, cron: str, scheduled_time_ms: int) -> None:
        self.meter.count("worker_scheduled")
        await self.definition.scheduled(
            ScheduledEvent(cron=cron, scheduled_time_ms=scheduled_time_ms), self.services
        )

    async def _evict_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0)
            for host in set(self.hosts.values()):
                host.evict_idle(loop.time())
