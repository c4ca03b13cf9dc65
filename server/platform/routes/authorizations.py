"""Authorizations: a subject's consent for one institution, purpose, scope and period.

The operator records them from signed consents (``evidence`` names the
document) and revokes them when the subject withdraws. A bank may list and
read its own; another institution's authorizations are invisible to it (404,
as if absent), so a bank cannot learn who else a subject deals with.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from server.errors import ApiError
from server.platform.deps import AnyCaller, AuditDep, OperatorCaller, SessionDep
from server.platform.schemas import (
    AuthorizationCreate,
    AuthorizationOut,
    AuthorizationRevoke,
    SubjectId,
    subject_kind,
)
from server.platform.tables import Authorization, Institution, Role

router = APIRouter(tags=["authorizations"])


def authorization_out(row: Authorization, now: datetime | None = None) -> AuthorizationOut:
    """The wire form of an authorization, with its status at ``now``."""
    now = now or datetime.now(UTC)
    if row.revoked_at is not None:
        status = "revoked"
    elif row.expires_at <= now:
        status = "expired"
    elif row.granted_at > now:
        status = "not_yet_valid"
    else:
        status = "active"
    return AuthorizationOut(
        id=row.id, subject_kind=row.subject_kind, subject_id=row.subject_id,
        institution_id=row.institution_id, purpose=row.purpose, items=sorted(row.items),
        scoring=row.scoring, evidence=row.evidence, granted_at=row.granted_at,
        expires_at=row.expires_at, revoked_at=row.revoked_at,
        revoked_reason=row.revoked_reason, status=status)


def _visible(session: SessionDep, caller: AnyCaller, authorization_id: str) -> Authorization:
    row = session.get(Authorization, authorization_id)
    if row is None or (caller.role is not Role.operator
                       and row.institution_id != caller.institution_id):
        raise ApiError(404, "authorization_not_found",
                       "no authorization with this id among those you may see")
    return row


@router.post("/v1/authorizations", status_code=201, response_model=AuthorizationOut)
async def create_authorization(body: AuthorizationCreate, caller: OperatorCaller,
                               session: SessionDep, audit: AuditDep) -> AuthorizationOut:
    """Record a subject's signed authorization of an institution."""
    audit.action = "create_authorization"
    audit.subjects = [body.subject_id]
    audit.purpose = body.purpose.value
    institution = session.get(Institution, body.institution_id)
    if institution is None or institution.role is not Role.bank:
        raise ApiError(422, "not_a_bank", "authorizations are given to a registered "
                       "institution with role bank; check institution_id")
    now = datetime.now(UTC)
    granted = body.granted_at or now
    if body.expires_at <= granted:
        raise ApiError(422, "expiry_before_grant", "expires_at must lie after granted_at")
    row = Authorization(
        id=uuid.uuid4().hex, subject_kind=subject_kind(body.subject_id),
        subject_id=body.subject_id, institution_id=body.institution_id,
        purpose=body.purpose.value, items=sorted(set(body.items)), scoring=body.scoring,
        evidence=body.evidence, granted_at=granted, expires_at=body.expires_at,
        created_by=caller.institution_id)
    session.add(row)
    session.flush()
    audit.authorization_ids = [row.id]
    return authorization_out(row, now)


@router.get("/v1/authorizations", response_model=list[AuthorizationOut])
async def list_authorizations(
    caller: AnyCaller, session: SessionDep, audit: AuditDep,
    subject_id: Annotated[SubjectId | None, Query()] = None,
    institution_id: Annotated[str | None, Query(max_length=32)] = None,
) -> list[AuthorizationOut]:
    """Authorizations you may see (a bank: its own), optionally of one subject."""
    audit.action = "list_authorizations"
    if caller.role not in (Role.operator, Role.bank):
        raise ApiError(403, "wrong_role", "authorizations are visible to banks (their own) "
                       "and to the operator")
    query = select(Authorization).order_by(Authorization.granted_at)
    if caller.role is Role.bank:
        query = query.where(Authorization.institution_id == caller.institution_id)
    elif institution_id is not None:
        query = query.where(Authorization.institution_id == institution_id)
    if subject_id is not None:
        audit.subjects = [subject_id]
        query = query.where(Authorization.subject_id == subject_id)
    now = datetime.now(UTC)
    return [authorization_out(row, now) for row in session.scalars(query.limit(1000))]


@router.get("/v1/authorizations/{authorization_id}", response_model=AuthorizationOut)
async def get_authorization(authorization_id: str, caller: AnyCaller, session: SessionDep,
                            audit: AuditDep) -> AuthorizationOut:
    """One authorization (a bank: only its own)."""
    audit.action = "get_authorization"
    row = _visible(session, caller, authorization_id)
    audit.subjects = [row.subject_id]
    audit.authorization_ids = [row.id]
    return authorization_out(row)


@router.post("/v1/authorizations/{authorization_id}/revoke", response_model=AuthorizationOut)
async def revoke_authorization(authorization_id: str, body: AuthorizationRevoke,
                               caller: OperatorCaller, session: SessionDep,
                               audit: AuditDep) -> AuthorizationOut:
    """End an authorization now (the subject withdrew it); it stays on file as revoked."""
    audit.action = "revoke_authorization"
    row = _visible(session, caller, authorization_id)
    audit.subjects = [row.subject_id]
    audit.authorization_ids = [row.id]
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        row.revoked_reason = body.reason
    return authorization_out(row)
