"""Institutions and their API keys (operator-administered; rotation by the holder).

Keys are shown once, when issued; the platform keeps a peppered digest only
(:mod:`server.platform.security`). Rotating returns a new key and ends the
old one (at once, or after a grace period so a fleet of loan systems can
switch over); revoking ends a key at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from lab.catalog import PROVIDERS
from server.errors import ApiError
from server.platform.deps import AnyCaller, AuditDep, OperatorCaller, SessionDep, StateDep
from server.platform.schemas import (
    InstitutionCreate,
    InstitutionOut,
    KeyCreate,
    KeyIssued,
    KeyOut,
    KeyRotate,
)
from server.platform.security import issue_key
from server.platform.tables import ApiKey, Institution, Role

router = APIRouter(tags=["institutions and keys"])


def _new_key(session: SessionDep, state: StateDep, institution_id: str,
             expires_at: datetime | None) -> KeyIssued:
    issued = issue_key(state.settings.key_pepper.get_secret_value())
    now = datetime.now(UTC)
    session.add(ApiKey(id=issued.key_id, institution_id=institution_id, digest=issued.digest,
                       created_at=now, expires_at=expires_at))
    return KeyIssued(key_id=issued.key_id, api_key=issued.plaintext,
                     institution_id=institution_id, created_at=now, expires_at=expires_at)


def _institution(session: SessionDep, institution_id: str) -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise ApiError(404, "institution_not_found",
                       "no institution with this id; list them with GET /v1/institutions")
    return institution


@router.post("/v1/institutions", status_code=201, response_model=InstitutionOut)
async def create_institution(body: InstitutionCreate, caller: OperatorCaller,
                             session: SessionDep, audit: AuditDep) -> Institution:
    """Register a bank, a data provider or another operator."""
    audit.action = "create_institution"
    if body.role is Role.provider and body.provider not in PROVIDERS:
        raise ApiError(422, "unknown_provider", "a provider institution names its catalog "
                       f"provider code, one of: {', '.join(PROVIDERS)}")
    if body.role is not Role.provider and body.provider is not None:
        raise ApiError(422, "provider_for_non_provider",
                       "only institutions with role provider name a catalog provider")
    institution = Institution(id=uuid.uuid4().hex, name=body.name, role=body.role,
                              provider=body.provider, created_at=datetime.now(UTC))
    session.add(institution)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ApiError(409, "institution_exists",
                       "an institution with this name exists already") from exc
    return institution


@router.get("/v1/institutions", response_model=list[InstitutionOut])
async def list_institutions(caller: OperatorCaller, session: SessionDep,
                            audit: AuditDep) -> list[Institution]:
    """Every registered institution."""
    audit.action = "list_institutions"
    return list(session.scalars(select(Institution).order_by(Institution.created_at)))


@router.post("/v1/institutions/{institution_id}/keys", status_code=201,
             response_model=KeyIssued)
async def issue_institution_key(institution_id: str, body: KeyCreate, caller: OperatorCaller,
                                session: SessionDep, state: StateDep, audit: AuditDep) -> KeyIssued:
    """Issue a new key to an institution (shown once in the answer)."""
    audit.action = "issue_key"
    _institution(session, institution_id)
    if body.expires_at is not None and body.expires_at <= datetime.now(UTC):
        raise ApiError(422, "expiry_in_past", "expires_at must lie in the future")
    return _new_key(session, state, institution_id, body.expires_at)


@router.get("/v1/institutions/{institution_id}/keys", response_model=list[KeyOut])
async def list_institution_keys(institution_id: str, caller: OperatorCaller, session: SessionDep,
                                audit: AuditDep) -> list[ApiKey]:
    """An institution's keys: ids and dates, never the keys."""
    audit.action = "list_keys"
    _institution(session, institution_id)
    return list(session.scalars(select(ApiKey).where(ApiKey.institution_id == institution_id)
                                .order_by(ApiKey.created_at)))


@router.post("/v1/keys/rotate", status_code=201, response_model=KeyIssued)
async def rotate_key(body: KeyRotate, caller: AnyCaller, session: SessionDep, state: StateDep,
                     audit: AuditDep) -> KeyIssued:
    """Replace the calling key with a new one; the old one ends after ``grace_seconds``."""
    audit.action = "rotate_key"
    old = session.get(ApiKey, caller.key_id)
    assert old is not None
    issued = _new_key(session, state, caller.institution_id, old.expires_at)
    now = datetime.now(UTC)
    if body.grace_seconds == 0:
        old.revoked_at = now
    else:
        end = now + timedelta(seconds=body.grace_seconds)
        old.expires_at = end if old.expires_at is None else min(old.expires_at, end)
    old.replaced_by = issued.key_id
    return issued


@router.post("/v1/keys/{key_id}/revoke", response_model=KeyOut)
async def revoke_key(key_id: str, caller: AnyCaller, session: SessionDep,
                     audit: AuditDep) -> ApiKey:
    """End a key now. The operator may revoke any key, an institution its own."""
    audit.action = "revoke_key"
    key = session.get(ApiKey, key_id)
    if key is None or (caller.role is not Role.operator
                       and key.institution_id != caller.institution_id):
        raise ApiError(404, "key_not_found", "no key with this id among those you may revoke")
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
    return key
