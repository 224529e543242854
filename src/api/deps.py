"""The one way routes reach the platform: `Depends(get_services)`.

Every dependency and route is `async def`: FastAPI runs a plain `def` in a worker thread, and
Pyodide has none (Cloudflare would answer 500, "can't start new thread").
"""

from fastapi import Request

from services import Services, ServicesProvider


async def get_services(request: Request) -> Services:
    provider: ServicesProvider = request.app.state.services_provider
    return provider(request.scope)
