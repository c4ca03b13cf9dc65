"""Reading the access record (operator) and the providers' usage feedback.

``GET /v1/audit`` lets the operator review every access, refusals included.
``GET /v1/usage`` is the plan's regular feedback to providers (定期反馈数据使用
情况): how often each of the provider's items was used, by which institution,
for what purpose, and whether sensitive fields were shown. A provider sees
only its own data's use; the operator may ask for any provider.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from lab.catalog import PROVIDERS
from server.errors import ApiError
from server.platform.deps import AuditDep, OperatorCaller, ProviderOrOperator, SessionDep
from server.platform.schemas import AuditEventOut, UsageOut, UsageRow, UtcDatetime
from server.platform.tables import AuditEvent, DataUse, Institution, Role

router = APIRouter(tags=["audit and usage"])
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@router.get("/v1/audit", response_model=list[AuditEventOut])
async def read_audit(
    caller: OperatorCaller, session: SessionDep, audit: AuditDep,
    after_id: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    institution_id: Annotated[str | None, Query(max_length=32)] = None,
    outcome: Annotated[str | None, Query(pattern="^(served|refused|error)$")] = None,
) -> list[AuditEvent]:
    """Audit rows after ``after_id``, oldest first (page with the last id you saw)."""
    audit.action = "read_audit"
    query = select(AuditEvent).where(AuditEvent.id > after_id).order_by(AuditEvent.id)
    if institution_id is not None:
        query = query.where(AuditEvent.institution_id == institution_id)
    if outcome is not None:
        query = query.where(AuditEvent.outcome == outcome)
    return list(session.scalars(query.limit(limit)))


@router.get("/v1/usage", response_model=UsageOut)
async def usage(
    caller: ProviderOrOperator, session: SessionDep, audit: AuditDep,
    provider: Annotated[str | None, Query(max_length=64,
                                          description="operator only: the provider code")] = None,
    since: Annotated[UtcDatetime | None, Query(description="start, with its UTC offset")] = None,
    until: Annotated[UtcDatetime | None, Query(description="end, with its UTC offset")] = None,
) -> UsageOut:
    """How a provider's data was used over a period (default: the last 30 days)."""
    audit.action = "usage"
    if caller.role is Role.provider:
        institution = session.get(Institution, caller.institution_id)
        assert institution is not None
        if provider is not None and provider != institution.provider:
            raise ApiError(403, "other_provider", "a provider sees the use of its own data only")
        provider = institution.provider
    if provider not in PROVIDERS:
        raise ApiError(422, "unknown_provider",
                       f"name a catalog provider code: {', '.join(PROVIDERS)}")
    until = until or datetime.now(UTC)
    since = since or max(until, _EARLIEST + timedelta(days=30)) - timedelta(days=30)
    if since > until:
        raise ApiError(422, "empty_period", "since must not lie after until")
    query = (select(DataUse.item, DataUse.action, DataUse.institution_id, Institution.name,
                    DataUse.purpose, DataUse.masked, func.count())
             .join(Institution, Institution.id == DataUse.institution_id)
             .where(DataUse.provider == provider, DataUse.at >= since, DataUse.at <= until)
             .group_by(DataUse.item, DataUse.action, DataUse.institution_id, Institution.name,
                       DataUse.purpose, DataUse.masked)
             .order_by(DataUse.item, DataUse.action, Institution.name))
    rows = [UsageRow(item=i, action=a, institution_id=inst, institution_name=name, purpose=p,
                     masked=m, uses=n) for i, a, inst, name, p, m, n in session.execute(query)]
    return UsageOut(provider=provider, since=since, until=until,
                    total_uses=sum(r.uses for r in rows), rows=rows)

