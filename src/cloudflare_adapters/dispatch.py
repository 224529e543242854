"""The last hop of a customer route on Cloudflare: the `dispatch_namespaces` binding.

`fleet.customers.route` decides (the same code under apiary dev); this module only forwards
the request, with the customer's path and limits, to the namespace's script:
`env.CUSTOMERS.get(script, {}, {limits: {cpuMs, subRequests}}).fetch(request)`. A script the
namespace does not have throws an error whose message starts with "Worker not found" (a 404);
anything else the customer's Worker throws is a 502, its message never shown.
https://developers.cloudflare.com/cloudflare-for-platforms/workers-for-platforms/configuration/dynamic-dispatch/
"""

from typing import Any

from fleet.customers import CustomerRoute

BINDING = "CUSTOMERS"


async def dispatch(env: Any, route: CustomerRoute, request: Any) -> Any:
    """The customer Worker's JS Response, or None when it does not exist (the caller's 404)."""
    import js
    from pyodide.ffi import JsException, to_js

    raw = getattr(request, "js_object", request)
    url = js.URL.new(raw.url)
    url.pathname = route.path
    forwarded = js.Request.new(url.href, raw)
    options = {"limits": {"cpuMs": route.cpu_ms, "subRequests": route.subrequests}}
    worker = getattr(env, BINDING).get(
        route.script,
        to_js({}, dict_converter=js.Object.fromEntries),
        to_js(options, dict_converter=js.Object.fromEntries),
    )
    try:
        return await worker.fetch(forwarded)
    except JsException as exc:
        if str(getattr(exc, "message", exc)).startswith("Worker not found") or (
            "Worker not found" in str(exc)
        ):
            return None
        raise
