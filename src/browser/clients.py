"""The two browser runners, over the Http port.

- Cloudflare Browser Rendering REST API (https://developers.cloudflare.com/browser-rendering/
  rest-api/): `POST {CF_API_BASE}/accounts/{CF_ACCOUNT_ID}/browser-rendering/{snapshot|scrape|
  screenshot}` with `Authorization: Bearer CF_API_TOKEN`; JSON answers are
  `{success, result, errors}`, screenshots are PNG bytes. `apiary dev` serves the same subset
  backed by a real Chromium, so this client runs end to end locally.
- The step runner (`apiary browser-runner`, or any server of the contract): `POST
  {BROWSER_RUNNER_URL}/run` with steps, answered with per-step results.

A 429 raises `Busy` with the server's Retry-After, so the caller can wait its turn; anything
else that is not an answer raises `BrowserError`, which makes the run `error`, not `failed`.
"""

import base64
import json
from typing import Any

from ports import HttpError
from services import Services
from tasks.retry import retry_after_ms

CLOUDFLARE_API = "https://api.cloudflare.com/client/v4"
REST_TIMEOUT_S = 60.0


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None


class BrowserError(Exception):
    """The browser could not be asked (unreachable, crashed, refused): the run is `error`."""


class Busy(BrowserError):
    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"rate limited; retry in {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


async def _post(
    services: Services, url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float
) -> Any:
    try:
        response = await services.http.request(
            "POST", url, json=body, headers=headers, timeout_s=timeout_s
        )
    except HttpError as exc:
        raise BrowserError(f"{exc.kind}: {exc}") from exc
    if response.status == 429:
        wait = retry_after_ms(response.headers.get("retry-after"), services.clock.now_ms())
        raise Busy(wait if wait is not None else 5_000)
    return response


class Rendering:
    def __init__(self, services: Services) -> None:
        config = services.config
        self.services = services
        base = (config.get("CF_API_BASE") or CLOUDFLARE_API).rstrip("/")
        self.base = f"{base}/accounts/{config.get('CF_ACCOUNT_ID') or 'unset'}/browser-rendering"
        token = config.get("CF_API_TOKEN")
        # No token, no header: "Bearer " with nothing after it is not a valid header value.
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def _json(self, action: str, body: dict[str, Any]) -> Any:
        response = await _post(
            self.services, f"{self.base}/{action}", body, self.headers, REST_TIMEOUT_S
        )
        payload = _json_or_none(response.body)
        if response.status >= 400 or not isinstance(payload, dict) or not payload.get("success"):
            errors = payload.get("errors") if isinstance(payload, dict) else None
            raise BrowserError(f"browser rendering {action}: HTTP {response.status} {errors or ''}")
        return payload["result"]

    async def snapshot(self, url: str) -> tuple[str, bytes]:
        result = await self._json("snapshot", {"url": url})
        return result["content"], base64.b64decode(result["screenshot"])

    async def scrape(self, url: str, selectors: list[str]) -> dict[str, int]:
        if not selectors:
            return {}
        elements = [{"selector": s} for s in selectors]
        result = await self._json("scrape", {"url": url, "elements": elements})
        return {item["selector"]: len(item.get("results") or []) for item in result}


class StepRunner:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.url = (services.config.get("BROWSER_RUNNER_URL") or "").rstrip("/")

    @property
    def configured(self) -> bool:
        return bool(self.url)

    async def run(
        self,
        steps: list[dict[str, Any]],
        *,
        cookies: list[dict[str, Any]] | None = None,
        timeout_ms: int,
        secret_screenshots: bool = False,
    ) -> dict[str, Any]:
        if not self.url:
            raise BrowserError("BROWSER_RUNNER_URL is not set: this check needs the step runner")
        body = {
            "steps": steps,
            "cookies": cookies or [],
            "timeout_ms": timeout_ms,
            "secret_screenshots": secret_screenshots,
        }
        token = self.services.config.get("BROWSER_RUNNER_TOKEN")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = await _post(
            self.services, f"{self.url}/run", body, headers, timeout_ms / 1000 + 15
        )
        result = _json_or_none(response.body)
        if response.status == 401:
            raise BrowserError("the step runner refused BROWSER_RUNNER_TOKEN")
        if response.status != 200 or not isinstance(result, dict) or "steps" not in result:
            raise BrowserError(f"step runner answered HTTP {response.status}")
        return result
