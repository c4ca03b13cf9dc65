"""The access record: one audit row per request, written before the answer leaves.

How it works: :class:`AuditMiddleware` wraps every ``/v1`` request. It puts an
:class:`AuditDraft` in ``request.state.audit``; the dependencies fill it in as
they learn things (who called, with which key, about which subject, for which
purpose, under which authorization, which catalog items were used, why a
refusal). When the app starts its answer, the middleware writes the row (and
the :class:`~server.platform.tables.DataUse` rows of a served request) and
only then lets the answer go. If the row cannot be written the caller gets a
503 instead of the data: an access that is not recorded does not happen.

Refused requests are recorded the same way — a missing key, a bad key, a
wrong role and a missing authorization all leave a row with the reason — so
"N requests, N rows" holds whatever the outcome.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qs

from sqlalchemy import insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crypto.identifiers import normalise_id, resident_id_is_valid, uscc_is_valid
from server.platform.db import Database
from server.platform.schemas import Purpose
from server.platform.tables import AuditEvent, DataUse

__all__ = ["AuditDraft", "AuditMiddleware", "outcome_of"]

logger = logging.getLogger("creditlab.audit")

_PURPOSES = frozenset(p.value for p in Purpose)


@dataclass
class AuditDraft:
    """What one request did, filled in while it runs (no secrets, no feature values)."""

    request_id: str
    at: datetime
    method: str
    institution_id: str | None = None
    key_id: str | None = None
    role: str | None = None
    action: str = ""
    subjects: list[str] = field(default_factory=list)
    purpose: str | None = None
    authorization_ids: list[str] = field(default_factory=list)
    items: list[int] = field(default_factory=list)
    uses: list[tuple[int, bool]] = field(default_factory=list)
    reason: str | None = None

    def use(self, item: int, *, masked: bool) -> None:
        """Record that catalog ``item`` was served (``masked``: sensitive fields hidden)."""
        self.uses.append((item, masked))
        if item not in self.items:
            self.items.append(item)


#: Built once: Core inserts, no ORM unit of work on the path every request takes.
_INSERT_EVENT = insert(AuditEvent.__table__).returning(AuditEvent.__table__.c.id)
_INSERT_USE = insert(DataUse.__table__)


def _fill_from_request(scope: Scope, draft: AuditDraft) -> None:
    """For a request refused before its route ran: what it asked, from the URL.

    The subject (a valid id only — junk is not stored) and the purpose, so that a
    refused look at a subject is on that subject's record too.
    """
    raw = scope.get("path_params", {}).get("subject")
    if not draft.subjects and isinstance(raw, str):
        subject = normalise_id(raw)
        if uscc_is_valid(subject) or resident_id_is_valid(subject):
            draft.subjects = [subject]
    if draft.purpose is None:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("purpose", [])
        if values and values[0] in _PURPOSES:
            draft.purpose = values[0]


def outcome_of(status: int) -> str:
    """``served`` (2xx/3xx), ``refused`` (4xx) or ``error`` (5xx)."""
    if status < 400:
        return "served"
    return "refused" if status < 500 else "error"


class AuditMiddleware:
    """ASGI middleware that records every ``/v1`` request before its answer is sent.

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    database : Database
        Where the rows go.
    providers_of : callable
        Catalog item number → the providers whose data it is (for usage feedback).
    """

    def __init__(self, app: ASGIApp, database: Database,
                 providers_of: Callable[[int], Sequence[str]]) -> None:
        self.app = app
        self.database = database
        self.providers_of = providers_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            await self.app(scope, receive, send)
            return
        draft = AuditDraft(request_id=uuid.uuid4().hex, at=datetime.now(UTC),
                           method=scope["method"])
        state = scope.setdefault("state", {})
        state["audit"] = draft
        state["request_id"] = draft.request_id
        written = False
        swallow = False

        async def send_recorded(message: Message) -> None:
            nonlocal written, swallow
            if message["type"] == "http.response.start" and not written:
                written = True
                status = int(message["status"])
                if not self._write(scope, draft, status):
                    swallow = True
                    await self._unrecorded(send, draft.request_id)
                    return
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", draft.request_id.encode()))
                message = {**message, "headers": headers}
            if swallow:
                return
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        except Exception:
            if not written:
                written = True
                draft.reason = draft.reason or "internal_error"
                self._write(scope, draft, 500)
            raise

    def _write(self, scope: Scope, draft: AuditDraft, status: int) -> bool:
        """Insert the audit row (and data-use rows); False if the database refused."""
        route = scope.get("route")
        template = getattr(route, "path", None) or "(unrouted)"
        outcome = outcome_of(status)
        _fill_from_request(scope, draft)
        try:
            with self.database.audit_engine.begin() as connection:
                audit_id = connection.execute(_INSERT_EVENT, {
                    "at": draft.at, "request_id": draft.request_id,
                    "institution_id": draft.institution_id, "key_id": draft.key_id,
                    "role": draft.role, "method": draft.method, "route": template,
                    "action": draft.action or getattr(route, "name", "") or "unknown",
                    "subjects": draft.subjects, "purpose": draft.purpose,
                    "authorization_ids": draft.authorization_ids,
                    "items": sorted(draft.items) if outcome == "served" else [],
                    "outcome": outcome, "status_code": status, "reason": draft.reason,
                }).scalar_one()
                uses = [{"audit_id": audit_id, "at": draft.at, "item": item,
                         "action": draft.action, "provider": provider,
                         "institution_id": draft.institution_id, "purpose": draft.purpose,
                         "masked": masked}
                        for item, masked in draft.uses for provider in self.providers_of(item)]
                if outcome == "served" and draft.institution_id is not None and uses:
                    connection.execute(_INSERT_USE, uses)
        except Exception as exc:  # the database is down or refused: answer 503, log why
            logger.error("audit write failed (%s); request %s refused",
                         type(exc).__name__, draft.request_id)
            return False
        return True

    @staticmethod
    async def _unrecorded(send: Send, request_id: str) -> None:
        body = json.dumps({"error": {
            "code": "audit_unavailable",
            "message": "the access could not be recorded, so it was not served; retry later",
            "request_id": request_id}}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", b"5"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
