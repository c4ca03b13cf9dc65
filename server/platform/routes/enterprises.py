"""Plain queries and credit reports on a subject (an enterprise, or a natural-person operator).

Rules (plan §4(2), CATALOG.md): every query names its purpose and is checked
against the caller's authorizations for that subject and purpose. Without
one covering an item, the item's sensitive (P) fields are masked; item 2
(medical insurance arrears) is served only with an authorization covering
it — without one even the number of its records is withheld, since that
number alone says whether the subject is in arrears.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from lab.catalog import CATALOG, PROVIDERS, Item, get_item, mask_value
from server.errors import ApiError
from server.platform.audit import AuditDraft
from server.platform.deps import (
    REFUSAL_TEXT,
    AuditDep,
    BankCaller,
    Consent,
    RecordsDep,
    SessionDep,
    find_consent,
)
from server.platform.records import HistoryEvent, StoreRecords, SubjectRecords
from server.platform.report_html import render_report
from server.platform.schemas import (
    CreditReportOut,
    DataDates,
    EnterpriseOut,
    HistoryOut,
    ItemHeader,
    ItemRecordsOut,
    ItemSummary,
    Purpose,
    RecordOut,
    ReportFormat,
    SubjectId,
    subject_kind,
)

router = APIRouter(tags=["queries and reports"])

#: Items served only under an authorization covering them (the plan: 经信息主体授权).
AUTHORIZATION_ONLY = frozenset({2})

SubjectPath = Annotated[SubjectId, Path(description="USCC, or a natural person's resident id")]
PurposeQuery = Annotated[Purpose, Query(description="why you ask; must match an authorization "
                                                    "to see sensitive fields")]


def item_header(item: Item) -> ItemHeader:
    """The catalog facts about an item a reader needs (labels in Chinese)."""
    return ItemHeader(
        item=item.number, code=item.code, name_zh=item.name_zh, name_en=item.name_en,
        category_zh=item.category_zh, providers=[PROVIDERS[c].name_zh for c in item.providers],
        labels={f.name: f.header for f in item.fields},
        sensitive_fields=[f.name for f in item.fields if f.is_personal],
        requires_authorization=item.number in AUTHORIZATION_ONLY)


def _history(events: list[HistoryEvent]) -> list[HistoryOut]:
    return [HistoryOut(at=e.at, action=e.action, kind=e.kind, reason=e.reason)  # type: ignore[arg-type]
            for e in events]


@functools.cache
def _header_fields(number: int) -> dict[str, object]:
    """:func:`item_header` as keyword arguments, made once per item (hot path)."""
    return item_header(get_item(number)).model_dump()


def item_records_out(subject: str, found: SubjectRecords, consent: Consent,
                     audit: AuditDraft) -> ItemRecordsOut:
    """One item's answer: refused, empty, or records masked as the consent requires."""
    item = found.item
    covered = consent.covers(item.number)
    header = _header_fields(item.number)
    if item.number in AUTHORIZATION_ONLY and not covered:
        return ItemRecordsOut(**header, subject=subject, status="not_authorized", masked=True,
                              records=[], data_dates=None, disputes=[], repairs=[],
                              withdrawn_records=0, authorization_ids=[])
    records = []
    for record in found.records:
        id_type = record.values.get("id_type")
        values = {name: mask_value(item, name, value, authorised=covered,
                                   id_type=str(id_type) if id_type else None)
                  for name, value in record.values.items()}
        records.append(RecordOut(
            record_id=record.record_id, data_date=record.data_date.isoformat(),
            provider=record.provider,
            provider_name=PROVIDERS[record.provider].name_zh if record.provider in PROVIDERS
            else record.provider,
            version=record.version, disputed=record.disputed, values=values))  # type: ignore[arg-type]
    dates = sorted(r.data_date for r in records)
    used_ids = consent.ids if covered else []
    if records:
        audit.use(item.number, masked=not covered)
        for authorization_id in used_ids:
            if authorization_id not in audit.authorization_ids:
                audit.authorization_ids.append(authorization_id)
    return ItemRecordsOut(
        **header, subject=subject, status="shown" if records else "no_records",
        masked=not covered, records=records,
        data_dates=DataDates(earliest=dates[0], latest=dates[-1]) if dates else None,
        disputes=_history(found.disputes), repairs=_history(found.repairs),
        withdrawn_records=found.withdrawn, authorization_ids=used_ids)


def _open(audit: AuditDraft, action: str, subject: str, purpose: Purpose) -> None:
    audit.action = action
    audit.subjects = [subject]
    audit.purpose = purpose.value


@router.get("/v1/enterprises/{subject}", response_model=EnterpriseOut)
async def enterprise(subject: SubjectPath, purpose: PurposeQuery, caller: BankCaller,
                     session: SessionDep, records: RecordsDep, audit: AuditDep) -> EnterpriseOut:
    """What the platform holds on a subject: per item, how many records and how recent."""
    _open(audit, "enterprise_summary", subject, purpose)
    consent = find_consent(session, caller.institution_id, subject, purpose.value)
    items = []
    for item in CATALOG:
        covered = consent.covers(item.number)
        hidden = item.number in AUTHORIZATION_ONLY and not covered
        found = records.item_records(subject, item, history=False)
        latest = max((r.data_date for r in found.records), default=None)
        items.append(ItemSummary(
            item=item.number, code=item.code, name_zh=item.name_zh,
            records=None if hidden else len(found.records),
            latest_data_date=None if hidden or latest is None else latest.isoformat(),
            disputed=None if hidden else sum(r.disputed for r in found.records),
            requires_authorization=item.number in AUTHORIZATION_ONLY, authorized=covered))
    name = _name(records, subject, consent)
    if name is None and not any(s.records for s in items):
        raise ApiError(404, "subject_not_found", "the platform holds no record on this "
                       "subject; check the id")
    audit.authorization_ids = consent.ids
    return EnterpriseOut(subject=subject, subject_kind=subject_kind(subject), name=name,
                         purpose=purpose, items=items, request_id=audit.request_id)


@router.get("/v1/enterprises/{subject}/items/{item}", response_model=ItemRecordsOut)
async def enterprise_item(
    subject: SubjectPath, purpose: PurposeQuery, caller: BankCaller, session: SessionDep,
    records: RecordsDep, audit: AuditDep,
    item: Annotated[str, Path(max_length=40, description="item number 1-10 or code, e.g. "
                                                         "9 or electricity")],
) -> ItemRecordsOut:
    """A subject's records of one catalog item (403 for item 2 without authorization)."""
    _open(audit, "item_query", subject, purpose)
    try:
        spec = get_item(item)
    except KeyError as exc:
        raise ApiError(404, "unknown_item", str(exc.args[0])) from exc
    audit.action = f"item_query:{spec.number}"
    consent = find_consent(session, caller.institution_id, subject, purpose.value)
    if spec.number in AUTHORIZATION_ONLY and not consent.covers(spec.number):
        code = consent.refusal or "item_not_authorized"
        raise ApiError(403, code, f"item {spec.number} ({spec.name_zh}) is served only with the "
                       f"subject's authorization: {REFUSAL_TEXT[code]}")
    return item_records_out(subject, records.item_records(subject, spec), consent, audit)


@router.get("/v1/enterprises/{subject}/report", response_model=CreditReportOut,
            responses={200: {"content": {"text/html": {}}}})
async def credit_report(
    request: Request, subject: SubjectPath, purpose: PurposeQuery, caller: BankCaller,
    session: SessionDep, records: RecordsDep, audit: AuditDep,
    format: Annotated[ReportFormat, Query(description="json, or html for a printable "
                                                      "page")] = ReportFormat.json,
) -> CreditReportOut | HTMLResponse:
    """The subject's credit report over every catalog item, as JSON or an HTML page."""
    _open(audit, f"credit_report:{format.value}", subject, purpose)
    consent = find_consent(session, caller.institution_id, subject, purpose.value)
    items = [item_records_out(subject, records.item_records(subject, item), consent, audit)
             for item in CATALOG]
    name = _name(records, subject, consent)
    if name is None and not any(i.records for i in items):
        raise ApiError(404, "subject_not_found", "the platform holds no record on this "
                       "subject; check the id")
    report = CreditReportOut(
        subject=subject, subject_kind=subject_kind(subject), name=name,
        generated_at=datetime.now(UTC), institution_id=caller.institution_id,
        institution_name=caller.name, purpose=purpose, authorization_ids=audit.authorization_ids,
        items=items, request_id=audit.request_id)
    if format is ReportFormat.html:
        return HTMLResponse(render_report(report))
    return report


def _name(records: StoreRecords, subject: str, consent: Consent) -> str | None:
    """The subject's name, masked when it is a person's and no authorization covers it."""
    hidden = {i for i in AUTHORIZATION_ONLY if not consent.covers(i)}
    found = records.subject_name(subject, skip=hidden)
    if found is None:
        return None
    name, item, field, id_type = found
    return str(mask_value(item, field, name, id_type=id_type,
                          authorised=consent.covers(item.number)))
