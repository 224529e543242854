"""After a secret was typed, the page may only navigate to that credential's origins.

`Seal.close_to(origins)` routes the context's navigation requests: one to any other origin (a
form that submits elsewhere, a script setting `location`) is aborted and recorded, so the step
runner fails the step that caused it. Until a secret is typed nothing is routed (routing costs
a round trip per request). What the browser may reach at all is the egress proxy's business.
"""

from __future__ import annotations

from playwright.async_api import BrowserContext, Route
from playwright.async_api import Error as PlaywrightError

from browser.credentials import origin_of


class Seal:
    def __init__(self, context: BrowserContext) -> None:
        self.context = context
        self.origins: set[str] | None = None
        self.violation: str | None = None

    @property
    def closed(self) -> bool:
        return self.origins is not None

    async def close_to(self, origins: list[str]) -> None:
        bound = {o for o in (origin_of(x) for x in origins) if o is not None}
        first = self.origins is None
        self.origins = bound if self.origins is None else self.origins & bound
        if first:
            await self.context.route("**/*", self._route)

    def allows(self, url: str) -> bool:
        return self.origins is None or origin_of(url) in self.origins

    async def _route(self, route: Route) -> None:
        request = route.request
        blocked = request.is_navigation_request() and not self.allows(request.url)
        try:
            if blocked:
                where = origin_of(request.url)
                self.violation = self.violation or (
                    f"navigation to {where} blocked: a secret was typed on this page"
                )
                await route.abort("blockedbyclient")
            else:
                await route.continue_()
        except PlaywrightError:
            pass  # the page went away meanwhile
