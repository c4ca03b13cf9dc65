"""Injected dependencies of the platform API: state, session, caller, role, consent.

Why everything here (and every platform route) is ``async def`` although the
database calls are synchronous: FastAPI runs each *sync* dependency and route
in a worker thread, one hop per function — six or more per request — and
those hops cost more than the short, local store queries themselves. The
queries therefore run on the event loop; each takes about 0.1 ms on the
embedded SQLite store (the audit insert about 0.3 ms). With PostgreSQL across a network,
run several uvicorn workers (``creditlab serve platform --workers N``).

As in the FastAPI full-stack template's ``deps.py``: each is a small
function a route names in its signature, so a route reads as what it needs
(``caller: BankCaller, session: SessionDep``) and the checks live in one
place. Every check that refuses also tells the audit draft why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader
from sqlalchemy import Row, bindparam, select
from sqlalchemy.orm import Session

from server.config import PlatformSettings
from server.errors import ApiError
from server.platform.audit import AuditDraft
from server.platform.db import Database
from server.platform.records import StoreRecords
from server.platform.scoring import PlatformScorer
from server.platform.security import parse_key, verify_secret
from server.platform.tables import ApiKey, Authorization, Institution, Role

__all__ = [
    "AnyCaller",
    "AuditDep",
    "BankCaller",
    "Caller",
    "Consent",
    "OperatorCaller",
    "PlatformState",
    "ProviderOrOperator",
    "REFUSAL_TEXT",
    "RecordsDep",
    "ScorerDep",
    "SessionDep",
    "StateDep",
    "find_consent",
    "require_roles",
]


@dataclass
class PlatformState:
    """What the app factory built once and every request shares."""

    settings: PlatformSettings
    database: Database
    scorer: PlatformScorer
    records: StoreRecords


def _state(request: Request) -> PlatformState:
    """The app's shared state (a plain function: see :func:`get_session`)."""
    return request.app.state.platform


async def get_state(request: Request) -> PlatformState:
    """The app's shared state."""
    return _state(request)


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A database session per request, committed when the route function returns.

    Scoped to the function (not the whole request): the commit must happen
    before the answer is sent — a client told "201 created" must find the row —
    and before the audit middleware writes, which would otherwise wait on this
    transaction's lock.

    The hot-path dependencies read the state from the request instead of
    depending on :func:`get_state`: each dependency FastAPI resolves costs
    about as much as a store query, and every request resolves these.
    """
    with _state(request).database.session() as session:
        yield session


async def get_audit(request: Request) -> AuditDraft:
    """The audit draft the middleware opened for this request."""
    return request.state.audit


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
AuditDep = Annotated[AuditDraft, Depends(get_audit)]
StateDep = Annotated[PlatformState, Depends(get_state)]


async def get_scorer(request: Request) -> PlatformScorer:
    """The platform's served model parts."""
    return _state(request).scorer


async def get_records(request: Request) -> StoreRecords:
    """The catalog records (lab.store) behind plain queries and reports."""
    return _state(request).records


ScorerDep = Annotated[PlatformScorer, Depends(get_scorer)]
RecordsDep = Annotated[StoreRecords, Depends(get_records)]

_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="The institution's API key, `clk_<id>_<secret>`.")
_CHALLENGE = {"WWW-Authenticate": 'APIKey header="X-API-Key"'}


@dataclass(frozen=True)
class Caller:
    """The authenticated institution behind a request."""

    institution_id: str
    name: str
    role: Role
    key_id: str


#: One query per authentication (built once): the key's digest and state and its owner.
_KEY_LOOKUP = (select(ApiKey.digest, ApiKey.revoked_at, ApiKey.expires_at,
                      Institution.id.label("institution_id"), Institution.name, Institution.role)
               .join(Institution, Institution.id == ApiKey.institution_id)
               .where(ApiKey.id == bindparam("key_id")))


async def current_caller(request: Request, session: SessionDep, audit: AuditDep,
                         presented: Annotated[str | None, Security(_api_key)] = None
                         ) -> Caller:
    """Authenticate the ``X-API-Key`` header; 401 with a reason code otherwise."""
    if not presented:
        raise ApiError(401, "no_key", "no API key: send your institution's key in the "
                       "X-API-Key header", _CHALLENGE)
    parsed = parse_key(presented)
    if parsed is None:
        raise ApiError(401, "bad_key", "the API key is malformed; keys read clk_<id>_<secret> "
                       "as issued", _CHALLENGE)
    key_id, secret = parsed
    audit.key_id = key_id
    row = session.connection().execute(_KEY_LOOKUP, {"key_id": key_id}).first()
    pepper = _state(request).settings.key_pepper.get_secret_value()
    if row is None or not verify_secret(secret, row.digest, pepper):
        raise ApiError(401, "bad_key", "the API key is not valid; check it was copied whole "
                       "or ask the operator for a new one", _CHALLENGE)
    now = datetime.now(UTC)
    if row.revoked_at is not None and row.revoked_at <= now:
        raise ApiError(401, "revoked_key", "this API key was revoked; use your current key "
                       "or ask the operator for a new one", _CHALLENGE)
    if row.expires_at is not None and row.expires_at <= now:
        raise ApiError(401, "expired_key", "this API key has expired; use the key that "
                       "replaced it or ask the operator for a new one", _CHALLENGE)
    audit.institution_id = row.institution_id
    audit.role = row.role.value
    return Caller(institution_id=row.institution_id, name=row.name, role=row.role,
                  key_id=key_id)


AnyCaller = Annotated[Caller, Depends(current_caller)]


def require_roles(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency that admits only callers with one of ``roles`` (403 ``wrong_role``)."""
    allowed = ", ".join(r.value for r in roles)

    async def check(caller: AnyCaller) -> Caller:
        if caller.role not in roles:
            raise ApiError(403, "wrong_role", f"this route is for role {allowed}; your "
                           f"institution has role {caller.role.value}")
        return caller

    return check


BankCaller = Annotated[Caller, Depends(require_roles(Role.bank))]
OperatorCaller = Annotated[Caller, Depends(require_roles(Role.operator))]
ProviderOrOperator = Annotated[Caller, Depends(require_roles(Role.provider, Role.operator))]


@dataclass
class Consent:
    """The live authorizations of one institution for one subject and purpose.

    ``refusal`` is the reason code when there is none: ``authorization_revoked``
    or ``authorization_expired`` if the institution had one that ended, else
    ``no_authorization`` (also when only *another* institution holds one:
    authorizations are per institution, and their existence is not told).
    """

    authorizations: list[Row] = field(default_factory=list)
    refusal: str | None = None

    @property
    def ids(self) -> list[str]:
        """Ids of the live authorizations."""
        return [a.id for a in self.authorizations]

    @property
    def items(self) -> set[int]:
        """Catalog items covered by any live authorization."""
        return {int(i) for a in self.authorizations for i in a.items}

    def scoring(self) -> Row | None:
        """A live authorization that allows partial scoring, if any."""
        return next((a for a in self.authorizations if a.scoring), None)

    def covers(self, item: int) -> bool:
        """Whether ``item``'s sensitive fields may be shown (and item 2 served)."""
        return item in self.items


REFUSAL_TEXT = {
    "no_authorization": "no authorization of this subject for your institution and purpose is "
                        "on file; have the subject sign one and the operator record it",
    "authorization_expired": "your authorization for this subject and purpose has expired; "
                             "have the subject renew it",
    "authorization_revoked": "your authorization for this subject and purpose was revoked; "
                             "a new one is needed",
    "not_authorized_for_scoring": "your authorization for this subject does not allow joint "
                                  "scoring; have the subject sign one that does",
    "item_not_authorized": "your authorization for this subject does not cover this catalog "
                           "item; have the subject extend it",
}


#: Core rows with the authorization's columns (no ORM objects: this runs on every query).
_CONSENT_LOOKUP = select(Authorization.__table__).where(
    Authorization.institution_id == bindparam("institution"),
    Authorization.subject_id == bindparam("subject"),
    Authorization.purpose == bindparam("purpose"))


def find_consent(session: Session, institution_id: str, subject: str, purpose: str,
                 now: datetime | None = None) -> Consent:
    """Look up the live authorizations of ``institution_id`` for ``subject`` and ``purpose``."""
    now = now or datetime.now(UTC)
    rows = session.connection().execute(_CONSENT_LOOKUP, {
        "institution": institution_id, "subject": subject, "purpose": purpose}).all()
    live = [a for a in rows
            if a.revoked_at is None and a.granted_at <= now < a.expires_at]
    if live:
        return Consent(authorizations=live)
    if any(a.revoked_at is not None for a in rows):
        return Consent(refusal="authorization_revoked")
    if any(a.expires_at <= now for a in rows):
        return Consent(refusal="authorization_expired")
    return Consent(refusal="no_authorization")
