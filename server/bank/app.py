"""The bank scoring API's app factory: ``create_app(settings=None, platform_transport=None)``.

The model is loaded and checked against its run manifest here, at start-up,
so a misconfigured deployment fails before it takes a request. The platform
is reached through one pooled ``httpx.AsyncClient``; tests pass
``platform_transport`` (an ASGI transport to the real platform app) instead
of a network address.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.bank.deps import BankState
from server.bank.model import BankModel
from server.bank.platform_client import PlatformClient
from server.bank.routes import model, scores
from server.body_limit import BodyLimitMiddleware
from server.config import BankSettings
from server.errors import ErrorResponse, install_error_handlers

__all__ = ["create_app"]


class RequestIdMiddleware:
    """Give every request an id (``request.state.request_id``, ``X-Request-ID``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)


def create_app(settings: BankSettings | None = None, *,
               platform_transport: httpx.AsyncBaseTransport | None = None) -> FastAPI:
    """Build the bank scoring API (``BankSettings.from_env()`` if ``settings`` is None)."""
    settings = settings or BankSettings.from_env()
    bank_model = BankModel(settings)
    http = httpx.AsyncClient(
        base_url=settings.platform_url, transport=platform_transport,
        timeout=httpx.Timeout(settings.platform_timeout_s),
        headers={"Content-Type": "application/json"},
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
    platform = PlatformClient(http, settings.platform_api_key.get_secret_value(),
                              model_id=bank_model.platform_part_id,
                              model_sha256=bank_model.platform_sha256,
                              retry_after_s=settings.retry_after_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await http.aclose()

    app = FastAPI(title="CreditLab bank scoring API", version="1", lifespan=lifespan,
                  description="Probability of default, points, band and reason codes for an "
                  "enterprise, by federated inference with the platform (the bank's half of "
                  "the model here, the platform's half there).",
                  responses={code: {"model": ErrorResponse}
                             for code in (401, 403, 404, 422, 502, 503)})
    app.state.bank = BankState(settings=settings, model=bank_model, platform=platform)
    install_error_handlers(app)
    app.include_router(scores.router)
    app.include_router(model.router)
    app.add_middleware(BodyLimitMiddleware)  # inside: its 413 carries the request id
    app.add_middleware(RequestIdMiddleware)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness of the bank API itself (the platform is checked per request)."""
        return {"status": "ok"}

    return app
