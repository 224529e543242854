"""The one way routes reach the platform: `Depends(get_services)`."""

from fastapi import Request

from services import Services


def get_services(request: Request) -> Services:
    return request.app.state.services_provider(request.scope)
