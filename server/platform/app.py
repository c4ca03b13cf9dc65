"""The platform API's app factory: ``create_app(settings=None)``.

Tests and ``creditlab serve platform`` (uvicorn) build the app the same way;
only the settings differ. Everything a request needs — the database, the
catalog store, the served model parts — is opened here, once, and shared
through ``app.state.platform``; nothing depends on a lifespan having run, so
an in-process client (httpx's ASGI transport) sees the same app as uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lab.catalog import CATALOG
from lab.store import open_store
from server.body_limit import BodyLimitMiddleware
from server.config import PlatformSettings
from server.errors import ErrorResponse, install_error_handlers
from server.platform.audit import AuditMiddleware
from server.platform.db import Database
from server.platform.deps import PlatformState
from server.platform.records import StoreRecords
from server.platform.routes import (
    audit,
    authorizations,
    enterprises,
    institutions,
    partial_scores,
)
from server.platform.scoring import PlatformScorer

__all__ = ["create_app"]

_PROVIDERS = {item.number: item.providers for item in CATALOG}

DESCRIPTION = """\
The municipal financing credit service platform's API for financial institutions:
plain queries per catalog item, credit reports (JSON and HTML), partial scores for
federated inference, authorizations, the audit record and providers' usage feedback.

Every `/v1` request is authenticated with an institution's key (`X-API-Key`) and
recorded in the append-only audit log, refused ones included. Sensitive (P) fields are
masked unless the subject's authorization for the caller and purpose covers the item;
item 2 (arrears) is served only under such an authorization.
"""


def _providers_of(item: int) -> tuple[str, ...]:
    return _PROVIDERS.get(item, ())


def create_app(settings: PlatformSettings | None = None) -> FastAPI:
    """Build the platform API from ``settings`` (``PlatformSettings.from_env()`` if None)."""
    settings = settings or PlatformSettings.from_env()
    database = Database(settings.db_url, create_tables=settings.create_tables)
    store = open_store(settings.db_url)
    state = PlatformState(settings=settings, database=database,
                          scorer=PlatformScorer.from_settings(settings),
                          records=StoreRecords(store))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        database.dispose()
        store.dispose()

    app = FastAPI(title="CreditLab platform API", version="1", description=DESCRIPTION,
                  lifespan=lifespan,
                  responses={code: {"model": ErrorResponse} for code in (401, 403, 404, 422)})
    app.state.platform = state
    install_error_handlers(app)
    for module in (institutions, authorizations, enterprises, partial_scores, audit):
        app.include_router(module.router)
    app.add_middleware(BodyLimitMiddleware)  # inside the audit: a refused body is audited
    app.add_middleware(AuditMiddleware, database=database, providers_of=_providers_of)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers (not audited: it touches no data)."""
        return {"status": "ok"}

    return app
