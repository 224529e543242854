"""One client of Cloudflare's v4 API over the Http port: the same code for api.cloudflare.com
and for apiary dev's local account (`CF_API_BASE`).

Every call decodes the v4 envelope (`{success, errors, messages, result, result_info}`). A
failure Cloudflare answers becomes `errors.Upstream` (a 502 at the edge) carrying its HTTP
status, its first error code and message, never a stack trace or the token. 429 and 5xx
answers, timeouts and network errors are retried a bounded number of times, honouring
`Retry-After` (seconds or an HTTP date) up to a cap, else with exponential backoff and full
jitter. A refusal by the egress policy is never retried.
https://developers.cloudflare.com/fundamentals/api/reference/limits/
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from errors import Unavailable, Upstream
from logs import redact
from ports import Http, HttpError, HttpResponse
from services import Services

DEFAULT_BASE = "https://api.cloudflare.com/client/v4"
MAX_ATTEMPTS = 4
FIRST_BACKOFF_S = 0.5
MAX_WAIT_S = 10.0  # a longer Retry-After is not waited for: the caller gets the 502 now
TIMEOUT_S = 30.0
NOT_FOUND_CODES = frozenset({10007, 10090})  # script / service not found

type Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Answer:
    result: Any
    result_info: dict[str, Any] | None = None


def is_not_found(exc: Upstream) -> bool:
    upstream = (exc.details or {}).get("upstream") or {}
    return upstream.get("status") == 404 or upstream.get("code") in NOT_FOUND_CODES


def retry_after_s(value: str | None, now_s: float) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)


def _header(response: HttpResponse, name: str) -> str | None:
    for key, value in response.headers.items():
        if key.lower() == name:
            return value
    return None


def _first_error(body: Any) -> tuple[int | None, str]:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        return (code if isinstance(code, int) else None), str(errors[0].get("message", ""))
    return None, ""


def upstream_error(what: str, status: int | None, code: int | None, message: str) -> Upstream:
    shown = redact(message)[:300]
    summary = f"Cloudflare API: {what} answered {status}" if status else f"Cloudflare API: {what}"
    if code is not None:
        summary += f" (code {code})"
    if shown:
        summary += f": {shown}"
    return Upstream(
        summary,
        code="cloudflare_error",
        details={"upstream": {"status": status, "code": code, "message": shown}},
    )


class CloudflareApi:
    def __init__(
        self,
        http: Http,
        *,
        base: str,
        token: str,
        account_id: str,
        sleep: Sleep = asyncio.sleep,
        now_s: Callable[[], float] | None = None,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self._token = token  # never logged: the Authorization header is built per call
        self.account_id = account_id
        self.sleep = sleep
        self.now_s = now_s or (lambda: 0.0)
        self.max_attempts = max_attempts

    @classmethod
    def of(cls, services: Services) -> CloudflareApi:
        config = services.config
        token, account = config.get("CF_API_TOKEN"), config.get("CF_ACCOUNT_ID")
        if not token or not account:
            raise Unavailable("the Cloudflare API is not configured (CF_API_TOKEN, CF_ACCOUNT_ID)")
        return cls(
            services.http,
            base=config.get("CF_API_BASE") or DEFAULT_BASE,
            token=token,
            account_id=account,
            now_s=lambda: services.clock.now_ms() / 1000,
        )

    @property
    def account_path(self) -> str:
        return f"/accounts/{self.account_id}"

    def _headers(self, content_type: str | None, accept: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._token}", "Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        return headers

    async def send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        content_type: str | None = None,
        params: Mapping[str, str | int] | None = None,
        accept: str = "application/json",
    ) -> HttpResponse:
        """One call with retries; the raw answer (any status not worth retrying)."""
        url = self.base + path + (f"?{urlencode(params)}" if params else "")
        if json_body is not None:
            body, content_type = json.dumps(json_body).encode(), "application/json"
        what = f"{method} {path}"
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                response = await self.http.request(
                    method,
                    url,
                    headers=self._headers(content_type, accept),
                    body=body,
                    timeout_s=TIMEOUT_S,
                )
            except HttpError as exc:
                if exc.kind == "refused" or last:
                    raise upstream_error(what, None, None, f"{exc.kind}: {exc}") from None
                await self.sleep(self._backoff(attempt))
                continue
            if response.status == 429 or response.status >= 500:
                wait = retry_after_s(_header(response, "retry-after"), self.now_s())
                if not last and (wait is None or wait <= MAX_WAIT_S):
                    await self.sleep(self._backoff(attempt) if wait is None else wait)
                    continue
            return response
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        return random.uniform(0, FIRST_BACKOFF_S * 2 ** (attempt - 1))

    async def call(self, method: str, path: str, **options: Any) -> Answer:
        """A v4 call: its `result` (and `result_info`), or `Upstream` with Cloudflare's code."""
        response = await self.send(method, path, **options)
        what = f"{method} {path}"
        try:
            envelope = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            envelope = None
        if not isinstance(envelope, dict) or "success" not in envelope:
            raise upstream_error(what, response.status, None, "the answer is not a v4 envelope")
        if not envelope["success"] or response.status >= 400:
            code, message = _first_error(envelope)
            raise upstream_error(what, response.status, code, message)
        return Answer(envelope.get("result"), envelope.get("result_info"))

    async def raw(self, method: str, path: str, *, accept: str = "*/*") -> bytes:
        """A call whose success is not an envelope (a script's source)."""
        response = await self.send(method, path, accept=accept)
        if response.status >= 400:
            try:
                code, message = _first_error(json.loads(response.body))
            except (ValueError, UnicodeDecodeError):
                code, message = None, ""
            raise upstream_error(f"{method} {path}", response.status, code, message)
        return response.body

    async def graphql(self, query: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /graphql`: its `data`. GraphQL answers errors in its own shape (`errors`)."""
        response = await self.send(
            "POST", "/graphql", json_body={"query": query, "variables": dict(variables)}
        )
        try:
            answer = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            answer = None
        if not isinstance(answer, dict):
            raise upstream_error("POST /graphql", response.status, None, "not a GraphQL answer")
        errors = answer.get("errors")
        if response.status >= 400 or errors:
            first = errors[0] if isinstance(errors, list) and errors else {}
            message = str(first.get("message", "")) if isinstance(first, dict) else ""
            raise upstream_error("POST /graphql", response.status, None, message)
        data = answer.get("data")
        return data if isinstance(data, dict) else {}
