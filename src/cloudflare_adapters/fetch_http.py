"""ports.Http over the platform's `fetch`, with `AbortSignal.timeout` for the deadline.

https://developers.cloudflare.com/workers/runtime-apis/fetch/ . httpx 0.28 has no fetch
transport of its own: on Workers it works only if the vendored wheel is Pyodide's patched one,
and an older patch ignored timeouts. So the Cloudflare adapter set calls `fetch` itself; there is
no TLS context to build (the platform verifies certificates). Redirects are not followed
(`redirect: "manual"`), as the local adapter does not follow them: a 3xx is the caller's answer.

Errors: the signal's TimeoutError (the deadline covers the body too) becomes
`HttpError("timeout")`; any other rejection (DNS, refused, reset, a refused URL) is
`HttpError("network")`.
"""

import json as jsonlib
from collections.abc import Mapping
from typing import Any

import correlation
from ports import HttpError, HttpResponse


def _timed_out(exc: Exception) -> bool:
    return getattr(exc, "name", None) in ("TimeoutError", "AbortError")


class FetchHttp:
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
        import js
        from pyodide.ffi import to_js

        sent = correlation.outgoing(headers)
        if json is not None:
            body = jsonlib.dumps(json, separators=(",", ":")).encode()
            if not any(k.lower() == "content-type" for k in sent):
                sent["content-type"] = "application/json"
        init: dict[str, Any] = {
            "method": method,
            "headers": sent,
            "redirect": "manual",
            "signal": js.AbortSignal.timeout(max(1, int(timeout_s * 1000))),
        }
        if body is not None:
            init["body"] = to_js(body)
        try:
            response = await js.fetch(url, to_js(init, dict_converter=js.Object.fromEntries))
            data = await response.arrayBuffer()
        except Exception as exc:
            if _timed_out(exc):
                raise HttpError(
                    "timeout", f"{method} {url}: timed out after {timeout_s}s"
                ) from None
            raise HttpError("network", f"{method} {url}: {getattr(exc, 'name', 'error')}") from None
        received = {str(k).lower(): str(v) for k, v in response.headers.entries()}
        return HttpResponse(int(response.status), received, bytes(data.to_bytes()))
