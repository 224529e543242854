"""The HTTP API: a FastAPI app, built cheaply per isolate from a services provider.

Nothing runs in lifespan: the Workers ASGI adapter runs lifespan around every request.
"""

from fastapi import FastAPI

from api import (
    browser_tests,
    cron,
    errors,
    fleet,
    health,
    overview,
    servers,
    session,
    swarms,
    tasks,
    whoami,
    workers,
)
from api.cors import CorsMiddleware
from api.edge import EdgeMiddleware
from api.etag import ETagMiddleware
from api.security_headers import SecurityHeadersMiddleware
from cron.jobs import JOBS, JobTable
from services import ServicesProvider
from version import VERSION

DESCRIPTION = """
apiary coordinates distributed work: backend servers and their tasks, device swarms, scheduled
jobs, browser checks and a fleet of Cloudflare Workers (deploys, versions, health-gated
rollouts, health, usage and cost).
Every error is `{"error": {"code", "message", "correlation_id"}}`; every response carries
`X-Correlation-ID`. Authenticate with `Authorization: Bearer <JWT>`.

**Backend contract.** apiary dispatches a task with `POST {server url}/tasks`
(`{id, type, payload, attempt, lease_id, timeout_s, callback_url}`, header `X-Apiary-Lease`);
answer 2xx at once, then report with `PUT /api/task/{id}` using the server credential from
registration and the lease. Serve `GET /health` (2xx up; `{"status": "degraded"}` degraded).
5xx, 408, 429 and timeouts are retried; other 4xx fail the task.

**Scheduled jobs.** apiary calls each job's path on `BACKEND_BASE` with
`Authorization: Bearer CRON_TOKEN`, `X-Correlation-ID` (the run id) and
`{job, source, scheduled_time, attempt}`; the same retry rules apply (401 is reported as an auth
problem). `POST /trigger` runs jobs now; `/api/cron/*` shows the table and the run history.
"""


def create_app(services: ServicesProvider, jobs: JobTable = JOBS) -> FastAPI:
    # FastAPI's own /docs and /redoc load their scripts from a CDN (a blank page offline): the
    # OpenAPI UI is a static asset instead (public/docs.html, vendored Swagger UI).
    app = FastAPI(
        title="apiary", version=VERSION, description=DESCRIPTION, docs_url=None, redoc_url=None
    )
    app.state.services_provider = services
    app.state.jobs = jobs
    errors.install(app)
    app.include_router(health.router)
    app.include_router(whoami.router)
    app.include_router(session.router)
    app.include_router(overview.router)
    app.include_router(servers.router)
    app.include_router(tasks.router)
    app.include_router(cron.router)
    app.include_router(swarms.router)
    app.include_router(browser_tests.router)
    app.include_router(workers.router)
    app.include_router(fleet.router)
    # Added last = outermost: the edge sees every request and response.
    app.add_middleware(ETagMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(CorsMiddleware, services=services)
    app.add_middleware(EdgeMiddleware)
    return app
