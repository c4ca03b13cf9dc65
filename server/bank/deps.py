"""Injected dependencies of the bank scoring API: state and the loan system's key."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from server.bank.model import BankModel
from server.bank.platform_client import PlatformClient
from server.config import BankSettings
from server.errors import ApiError

__all__ = ["BankState", "ClientDep", "StateDep"]


@dataclass
class BankState:
    """What the factory built once: settings, the model, the platform client."""

    settings: BankSettings
    model: BankModel
    platform: PlatformClient


async def get_state(request: Request) -> BankState:
    """The app's shared state."""
    return request.app.state.bank


StateDep = Annotated[BankState, Depends(get_state)]

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="A key of one of the bank's loan systems.")


async def authenticated_client(state: StateDep,
                               presented: Annotated[str | None, Security(_api_key)] = None
                               ) -> str:
    """Admit the bank's own loan systems: the key's SHA-256 must be configured.

    Returns the first 8 hex characters of the key's digest, a stable name for
    the caller that reveals nothing of the key.
    """
    if not presented:
        raise ApiError(401, "no_key", "no API key: send your loan system's key in X-API-Key",
                       {"WWW-Authenticate": 'APIKey header="X-API-Key"'})
    digest = hashlib.sha256(presented.encode()).hexdigest()
    if not any(hmac.compare_digest(digest, known) for known in state.settings.client_key_sha256):
        raise ApiError(401, "bad_key", "the API key is not one of this bank's client keys",
                       {"WWW-Authenticate": 'APIKey header="X-API-Key"'})
    return digest[:8]


ClientDep = Annotated[str, Depends(authenticated_client)]
