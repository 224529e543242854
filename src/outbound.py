"""Outbound HTTP over httpx, for both runtimes.

On Cloudflare the Python Workers runtime patches httpx's async client onto `fetch`, so the same
adapter serves there and locally. Every call carries the current correlation id.
"""

from collections.abc import Mapping
from typing import Any

import httpx

import correlation
from ports import HttpError, HttpResponse


class HttpxHttp:
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        body: bytes | None = None,
        timeout_s: float = 10.0,
    ) -> HttpResponse:
        sent = dict(headers or {})
        cid = correlation.current()
        if cid and not any(k.lower() == "x-correlation-id" for k in sent):
            sent[correlation.HEADER] = cid
        try:
            async with httpx.AsyncClient(timeout=timeout_s) as client:
                response = await client.request(method, url, headers=sent, json=json, content=body)
        except httpx.TimeoutException as exc:
            raise HttpError("timeout", f"{method} {url}: timed out after {timeout_s}s") from exc
        except httpx.HTTPError as exc:
            raise HttpError("network", f"{method} {url}: {type(exc).__name__}") from exc
        return HttpResponse(response.status_code, dict(response.headers), response.content)
