"""The local account, put together: its store, invocation log, Worker runner, service, API and
router, all under `STATE/account/`. `apiary_local.runtime` owns one and starts and stops it
with apiary dev; the front door (`apiary_local.server`) sends `/client/v4/...` to `api` and
requests for deployed Workers to `router`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from apiary_local.account.app import AccountApi
from apiary_local.account.context import AccountContext
from apiary_local.account.invocations import InvocationLog
from apiary_local.account.router import WorkerRouter
from apiary_local.account.runner import WorkerRunner
from apiary_local.account.service import AccountService
from apiary_local.account.store import AccountStore

DEFAULT_ACCOUNT_ID = "0000000000000000000000000000a1c0"  # 32 hex digits, as Cloudflare's are
SUBDOMAIN = "local"
COLLECT_EVERY_S = 1.0  # the account's workers.dev subdomain: {script}.local.workers.dev


class LocalAccount:
    def __init__(
        self,
        state_dir: Path,
        *,
        account_id: str,
        token: str,
        port: int,
        browser_rendering: Callable[[], Any],
    ) -> None:
        directory = state_dir / "account"
        directory.mkdir(parents=True, exist_ok=True)
        self.store = AccountStore(directory / "account.sqlite")
        self.invocations = InvocationLog(
            directory / "invocations.sqlite", now_ms=int(time.time() * 1000)
        )
        self.runner = WorkerRunner(
            directory / "run",
            router_address=f"127.0.0.1:{port}",
            on_reports=self.invocations.attach,
        )
        self.service = AccountService(self.store, self.runner)
        context = AccountContext(account_id, SUBDOMAIN, self.service, self.invocations, port)
        self.api = AccountApi(context, token=token, browser_rendering=browser_rendering)
        self.router = WorkerRouter(self.service, self.invocations, subdomain=SUBDOMAIN)
        self._collector: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.service.start()
        self._collector = asyncio.create_task(self._collect_reports())

    async def _collect_reports(self) -> None:
        """The Workers' invocation reports, every second (and before each GraphQL query)."""
        while True:
            await asyncio.sleep(COLLECT_EVERY_S)
            await self.runner.collect()

    async def stop(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        await self.runner.stop()
        await self.router.aclose()
        self.store.close()
        self.invocations.close()
