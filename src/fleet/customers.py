"""Customer Workers: one per customer subdomain, in the `customers` dispatch namespace
(Workers for Platforms), each with its own bindings and CPU and subrequest limits.

A request for `{subdomain}.{CUSTOMER_DOMAIN}` (or, where `CUSTOMER_PATH_PREFIX` is set,
`/{prefix}/{subdomain}/...` on apiary's own host) is routed by `route`, the same code in both
runtimes: it finds the customer's script in D1 and answers where to send the request and with
which limits. The last hop is the runtime's: on Cloudflare, apiary's Worker calls its
`dispatch_namespaces` binding (`env.CUSTOMERS.get(script, {}, {limits}).fetch(request)`, in
`entry.py`); under apiary dev, a JavaScript dispatcher deployed to the local account makes the
same call (`apiary_local.customer_dispatch`). An unknown subdomain is a 404.

Customers share nothing: a customer Worker gets only plain-text, secret and JSON bindings of
its own (its template's defaults and its configuration); a binding that reaches anything else
(a service, a namespace, storage) is refused.
https://developers.cloudflare.com/cloudflare-for-platforms/workers-for-platforms/configuration/dynamic-dispatch/
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from errors import Conflict, InvalidInput
from fleet import deploys, templates
from fleet.deploys import Code, Placement
from fleet.models import CustomerWorkerIn
from fleet.settings import CUSTOMER_SCRIPT_PREFIX, FleetSettings
from ports import first
from services import Services

OWN_BINDINGS = frozenset({"plain_text", "secret_text", "json"})
# apiary dev's JavaScript dispatcher: the local stand-in for the binding, never a managed Worker.
LOCAL_DISPATCHER = "apiary-dispatcher"


@dataclass(frozen=True, slots=True)
class CustomerRoute:
    script: str
    namespace: str
    path: str  # the path the customer's Worker sees (the prefix taken off)
    cpu_ms: int
    subrequests: int


@dataclass(frozen=True, slots=True)
class CustomerMiss:
    """The request is for the customer domain, but no customer has that subdomain."""

    subdomain: str


def script_of(subdomain: str) -> str:
    return f"{CUSTOMER_SCRIPT_PREFIX}{subdomain}"


def match(host: str, path: str, settings: FleetSettings) -> tuple[str, str] | None:
    """(subdomain, the customer's path) when the request is for a customer (pure)."""
    name = host.strip().lower().rsplit(":", 1)[0] if not host.startswith("[") else ""
    domain = settings.customer_domain
    if domain and name.endswith(f".{domain}"):
        label = name[: -len(domain) - 1]
        if label and "." not in label:
            return label, path or "/"
    prefix = settings.customer_path_prefix
    if prefix and path.startswith(prefix):
        label, _, rest = path[len(prefix) :].partition("/")
        if label:
            return label, "/" + rest
    return None


async def route(host: str, path: str, services: Services) -> CustomerRoute | CustomerMiss | None:
    settings = FleetSettings.of(services.config)
    found = match(host, path, settings)
    if found is None:
        return None
    subdomain, rest = found
    row = await first(
        services.database,
        "SELECT name, namespace, cpu_limit_ms, subrequest_limit FROM workers"
        " WHERE subdomain = ? AND deleted_at IS NULL",
        subdomain,
    )
    if row is None or row["namespace"] is None:
        return CustomerMiss(subdomain)
    return CustomerRoute(
        script=row["name"],
        namespace=row["namespace"],
        path=rest,
        cpu_ms=int(row["cpu_limit_ms"] or 50),
        subrequests=int(row["subrequest_limit"] or 50),
    )


def customer_url(services: Services, subdomain: str) -> str | None:
    settings = FleetSettings.of(services.config)
    public = (services.config.get("PUBLIC_URL") or "").rstrip("/")
    if settings.customer_path_prefix and public:
        return f"{public}{settings.customer_path_prefix}{subdomain}"
    if settings.customer_domain:
        return f"https://{subdomain}.{settings.customer_domain}"
    return None


def own_bindings(template: dict[str, Any], body: CustomerWorkerIn) -> list[dict[str, Any]]:
    """The template's default bindings with the customer's vars over them: own values only."""
    bindings = {b["name"]: dict(b) for b in template["default_bindings"]}
    for name, value in body.configuration.vars.items():
        bindings[name] = {"type": "plain_text", "name": name, "text": value}
    refused = sorted(n for n, b in bindings.items() if b.get("type") not in OWN_BINDINGS)
    if refused:
        raise InvalidInput(
            "a customer Worker shares no bindings: only plain_text, secret_text and json"
            f" (refused: {', '.join(refused)})"
        )
    return list(bindings.values())


async def deploy(services: Services, body: CustomerWorkerIn, actor: str) -> dict[str, Any]:
    settings = FleetSettings.of(services.config)
    template = await templates.load_named(services, body.template)
    bindings = own_bindings(template, body)
    namespace = settings.customer_namespace
    api = deploys.api_of(services)
    await api.ensure_namespace(namespace)
    place = Placement(
        name=script_of(body.subdomain),
        environment=services.config.environment,
        type="customer",
        customer_id=body.customer_id,
        namespace=namespace,
        subdomain=body.subdomain,
        cpu_limit_ms=body.configuration.cpu_limit_ms,
        subrequest_limit=body.configuration.subrequest_limit,
    )
    code = Code(
        main_module=template["main_module"],
        modules=template["modules"],
        bindings=bindings,
        compatibility_date=deploys.compatibility_date(services),
        message=f"customer {body.customer_id} from template {body.template}",
    )
    taken = await first(
        services.database,
        "SELECT name FROM workers WHERE subdomain = ? AND deleted_at IS NULL",
        body.subdomain,
    )
    if taken is not None:
        raise Conflict(f"the subdomain {body.subdomain!r} is taken", code="exists")
    url = customer_url(services, body.subdomain)
    return await deploys.create(services, place, code, actor, url=url)
