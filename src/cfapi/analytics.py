"""Workers analytics from Cloudflare's GraphQL API (`workersInvocationsAdaptive`).

One query per question, each for the whole account or one script over a time range (at most
a month per query, up to three months back, as Cloudflare allows). Quantiles and `cpuTimeUs`
are microseconds; this module answers milliseconds. `errors` counts invocations that did not
succeed (`scriptThrewException`, `exceededResources`, `internalError`).
https://developers.cloudflare.com/analytics/graphql-api/tutorials/querying-workers-metrics/
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cfapi.client import CloudflareApi
from clock import rfc3339

LIMIT = 10_000
_ACCOUNT = "viewer { accounts(filter: {accountTag: $account}) { %s } }"


def _query(name: str, fields: str, *, script: bool, extra_filter: str = "") -> str:
    """A query over `$since..$until` (and `$script` when `script`): GraphQL refuses a declared
    variable that is not used, so `$script` is declared only then."""
    filters = ["datetime_geq: $since", "datetime_leq: $until"]
    variables = "$account: string!, $since: Time!, $until: Time!"
    if script:
        filters.append("scriptName: $script")
        variables += ", $script: string!"
    if extra_filter:
        filters.append(extra_filter)
    body = (
        f"rows: workersInvocationsAdaptive(limit: {LIMIT}, filter: {{{', '.join(filters)}}})"
        f" {{ {fields} }}"
    )
    return f"query {name}({variables}) {{ {_ACCOUNT % body} }}"


@dataclass(frozen=True, slots=True)
class DailyUsage:
    date: str  # YYYY-MM-DD, UTC
    script: str
    requests: int
    errors: int
    subrequests: int
    cpu_time_ms: float


@dataclass(frozen=True, slots=True)
class VersionTraffic:
    requests: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True, slots=True)
class WindowMetrics:
    requests: int = 0
    errors: int = 0
    subrequests: int = 0
    cpu_p50_ms: float = 0.0
    cpu_p99_ms: float = 0.0


def _rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    accounts = ((data.get("viewer") or {}).get("accounts")) or []
    return list((accounts[0] or {}).get("rows") or []) if accounts else []


class Analytics:
    def __init__(self, api: CloudflareApi) -> None:
        self.api = api

    async def _run(
        self, query: str, since: datetime, until: datetime, script: str | None = None
    ) -> list[dict[str, Any]]:
        variables: dict[str, Any] = {
            "account": self.api.account_id,
            "since": rfc3339(since),
            "until": rfc3339(until),
        }
        if script is not None:
            variables["script"] = script
        return _rows(await self.api.graphql(query, variables))

    async def daily(self, since: datetime, until: datetime) -> list[DailyUsage]:
        """Every script's usage per UTC day: one query for the whole account."""
        query = _query(
            "DailyUsage",
            "sum { requests errors subrequests cpuTimeUs } dimensions { date scriptName }",
            script=False,
        )
        found = []
        for row in await self._run(query, since, until):
            total, dims = row.get("sum") or {}, row.get("dimensions") or {}
            found.append(
                DailyUsage(
                    date=str(dims.get("date")),
                    script=str(dims.get("scriptName")),
                    requests=int(total.get("requests") or 0),
                    errors=int(total.get("errors") or 0),
                    subrequests=int(total.get("subrequests") or 0),
                    cpu_time_ms=float(total.get("cpuTimeUs") or 0) / 1000,
                )
            )
        return found

    async def by_version(
        self, script: str, since: datetime, until: datetime
    ) -> dict[str, VersionTraffic]:
        """Requests and errors of each version of `script` (the `scriptVersion` dimension)."""
        query = _query(
            "ByVersion", "sum { requests errors } dimensions { scriptVersion }", script=True
        )
        traffic: dict[str, VersionTraffic] = {}
        for row in await self._run(query, since, until, script):
            version = str((row.get("dimensions") or {}).get("scriptVersion"))
            total, seen = row.get("sum") or {}, traffic.get(version, VersionTraffic())
            traffic[version] = VersionTraffic(
                seen.requests + int(total.get("requests") or 0),
                seen.errors + int(total.get("errors") or 0),
            )
        return traffic

    async def window(self, script: str, since: datetime, until: datetime) -> WindowMetrics:
        query = _query(
            "Window",
            "sum { requests errors subrequests } quantiles { cpuTimeP50 cpuTimeP99 }",
            script=True,
        )
        rows = await self._run(query, since, until, script)
        if not rows:
            return WindowMetrics()
        total, quantiles = rows[0].get("sum") or {}, rows[0].get("quantiles") or {}
        return WindowMetrics(
            requests=int(total.get("requests") or 0),
            errors=int(total.get("errors") or 0),
            subrequests=int(total.get("subrequests") or 0),
            cpu_p50_ms=float(quantiles.get("cpuTimeP50") or 0) / 1000,
            cpu_p99_ms=float(quantiles.get("cpuTimeP99") or 0) / 1000,
        )

    async def cpu_p99(self, since: datetime, until: datetime) -> dict[str, float]:
        """Every script's p99 CPU time (ms) over the range."""
        query = _query("CpuP99", "quantiles { cpuTimeP99 } dimensions { scriptName }", script=False)
        return {
            str((row.get("dimensions") or {}).get("scriptName")): float(
                (row.get("quantiles") or {}).get("cpuTimeP99") or 0
            )
            / 1000
            for row in await self._run(query, since, until)
        }

    async def exceeded(self, since: datetime, until: datetime) -> dict[str, int]:
        """Invocations that ended `exceededResources`, by script."""
        query = _query(
            "Exceeded",
            "sum { requests } dimensions { scriptName }",
            script=False,
            extra_filter='status: "exceededResources"',
        )
        return {
            str((row.get("dimensions") or {}).get("scriptName")): int(
                (row.get("sum") or {}).get("requests") or 0
            )
            for row in await self._run(query, since, until)
        }
