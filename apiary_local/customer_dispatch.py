"""The last hop of a customer route under apiary dev: a dispatcher Worker on the local account.

On Cloudflare apiary's own (Python) Worker holds the `dispatch_namespaces` binding. Python
Workers do not run locally, so apiary dev deploys a small JavaScript dispatcher to its local
account on first use (`apiary-dispatcher`, bound to the customers namespace) and hands it each
customer request that `fleet.customers.route` (the same code as on Cloudflare) has routed: the
script, its path and limits ride in headers, with a token only apiary dev knows, and the
dispatcher makes the very call apiary's Worker makes on Cloudflare,
`env.CUSTOMERS.get(script, {}, {limits}).fetch(request)`. The request goes to the local
account's router in process, so it is counted as an invocation like any other.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

from apiary_local.account.local_account import LocalAccount
from apiary_local.account.store import ACCOUNT
from apiary_local.account.uploads import Module, Upload
from fleet.customers import LOCAL_DISPATCHER, CustomerRoute

SOURCE = """// apiary dev's stand-in for apiary's dispatch_namespaces binding.
const OWN = ["apiary-dispatch-token", "apiary-dispatch-script", "apiary-dispatch-limits"];
export default {
  async fetch(request, env) {
    if (request.headers.get("apiary-dispatch-token") !== env.DISPATCH_TOKEN) {
      return new Response("forbidden", { status: 403 });
    }
    const script = request.headers.get("apiary-dispatch-script");
    const limits = JSON.parse(request.headers.get("apiary-dispatch-limits") || "{}");
    const headers = new Headers(request.headers);
    for (const name of OWN) headers.delete(name);
    try {
      const forwarded = new Request(request, { headers });
      return await env.CUSTOMERS.get(script, {}, { limits }).fetch(forwarded);
    } catch (error) {
      const found = !String(error && error.message).startsWith("Worker not found");
      const body = found
        ? { error: { code: "customer_worker_failed", message: "the customer's Worker failed" } }
        : { error: { code: "not_found", message: `no customer Worker ${script}` } };
      return Response.json(body, { status: found ? 502 : 404 });
    }
  },
};
"""
OWN_HEADERS = (b"apiary-dispatch-token", b"apiary-dispatch-script", b"apiary-dispatch-limits")


class LocalCustomerDispatch:
    def __init__(self, account: LocalAccount, *, port: int) -> None:
        self.account = account
        self.port = port
        self.token = secrets.token_urlsafe(32)
        self._deployed: str | None = None  # the namespace the dispatcher is bound to
        self._lock = asyncio.Lock()

    async def _ensure(self, namespace: str) -> None:
        """Deploy the dispatcher (once per run, and again if the namespace changes)."""
        async with self._lock:
            if self._deployed == namespace:
                return
            metadata = {
                "main_module": "dispatcher.mjs",
                "compatibility_date": "2025-11-17",
                "bindings": [
                    {"type": "dispatch_namespace", "name": "CUSTOMERS", "namespace": namespace},
                    {"type": "secret_text", "name": "DISPATCH_TOKEN", "text": self.token},
                ],
            }
            module = Module("dispatcher.mjs", "application/javascript+module", SOURCE.encode())
            await self.account.service.upload(
                ACCOUNT, LOCAL_DISPATCHER, Upload(metadata, (module,)), deploy=True, source="api"
            )
            self._deployed = namespace

    async def __call__(
        self, route: CustomerRoute, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        await self._ensure(route.namespace)
        headers = [
            (k, v)
            for k, v in scope["headers"]
            if k.lower() != b"host" and k.lower() not in OWN_HEADERS
        ]
        limits = {"cpuMs": route.cpu_ms, "subRequests": route.subrequests}
        headers += [
            (b"host", f"{LOCAL_DISPATCHER}.localhost:{self.port}".encode()),
            (b"apiary-dispatch-token", self.token.encode()),
            (b"apiary-dispatch-script", route.script.encode()),
            (b"apiary-dispatch-limits", json.dumps(limits).encode()),
        ]
        forwarded = {
            **scope,
            "headers": headers,
            "path": route.path,
            "raw_path": route.path.encode(),
        }
        await self.account.router(forwarded, receive, send)
