"""Pydantic schemas of the platform API's requests and answers.

Apart from the storage models (:mod:`server.platform.tables`): the wire
never carries a key digest, and a stored row never needs to know how it is
shown. Subject ids are validated here (GB 32100 USCC, or a resident id for
a natural-person operator) with :mod:`crypto.identifiers`, after the same
normalisation the alignment uses.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from crypto.identifiers import normalise_id, resident_id_is_valid, uscc_is_valid
from server.platform.tables import Role

__all__ = [
    "UtcDatetime",
    "AuditEventOut",
    "AuthorizationCreate",
    "AuthorizationOut",
    "AuthorizationRevoke",
    "CatalogItemNumber",
    "InstitutionCreate",
    "InstitutionOut",
    "ItemContribution",
    "KeyCreate",
    "KeyIssued",
    "KeyOut",
    "KeyRotate",
    "PartialScoreOut",
    "PartialScoreRefusal",
    "PartialScoreRequest",
    "PartialScoresOut",
    "Purpose",
    "SubjectId",
    "Uscc",
    "UsageOut",
    "UsageRow",
    "subject_kind",
]


class Purpose(enum.StrEnum):
    """Why an institution asks (it must match the authorization's purpose)."""

    loan_approval = "loan_approval"
    """贷款审批: deciding a loan application."""
    post_loan_monitoring = "post_loan_monitoring"
    """贷后管理: monitoring an existing loan."""
    guarantee_review = "guarantee_review"
    """担保审查: reviewing a guarantor."""


def _in_utc(value: datetime) -> datetime:
    """The instant in UTC; one whose UTC date falls outside years 1-9999 is refused (not a 500)."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the date lies outside the years 1-9999 in UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""A date-time with its UTC offset (``2030-01-01T00:00:00+08:00``), held in UTC."""


def _uscc(value: str) -> str:
    code = normalise_id(value)
    if not uscc_is_valid(code):
        raise ValueError("not a valid unified social credit code (GB 32100-2015: 18 characters, "
                         "check character at position 18)")
    return code


def _subject(value: str) -> str:
    code = normalise_id(value)
    if not (uscc_is_valid(code) or resident_id_is_valid(code)):
        raise ValueError("not a valid unified social credit code (GB 32100-2015) nor a resident "
                         "id (GB 11643)")
    return code


def subject_kind(subject: str) -> Literal["uscc", "resident_id"]:
    """Which kind of id a validated subject is."""
    return "uscc" if uscc_is_valid(subject) else "resident_id"


#: A normalised, checked USCC.
Uscc = Annotated[str, Field(min_length=18, max_length=40, examples=["914403001922038216"]),
                 AfterValidator(_uscc)]
#: A USCC, or a resident id for natural-person agricultural operators.
SubjectId = Annotated[str, Field(min_length=18, max_length=40, examples=["914403001922038216"]),
                      AfterValidator(_subject)]
#: A catalog item number.
CatalogItemNumber = Annotated[int, Field(ge=1, le=10)]

_Name = Annotated[str, Field(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InstitutionCreate(_In):
    """A new institution. ``provider`` is the catalog provider a provider-role institution is."""

    name: _Name
    role: Role
    provider: Annotated[str, Field(min_length=1, max_length=100)] | None = None


class InstitutionOut(BaseModel):
    """An institution as the operator sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    role: Role
    provider: str | None
    created_at: datetime


class KeyIssued(BaseModel):
    """A new key, shown once: store ``api_key`` now, the platform keeps only its digest."""

    key_id: str
    api_key: str
    institution_id: str
    created_at: datetime
    expires_at: datetime | None


class KeyOut(BaseModel):
    """A key's metadata (never the key)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    institution_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaced_by: str | None


class KeyCreate(_In):
    """Options for a new key (an expiry must carry its UTC offset, e.g. ``+08:00``)."""

    expires_at: UtcDatetime | None = None


class KeyRotate(_In):
    """Rotation: the calling key stays valid ``grace_seconds`` longer (0: ends now)."""

    grace_seconds: Annotated[int, Field(ge=0, le=7 * 24 * 3600)] = 0


class AuthorizationCreate(_In):
    """A subject's signed consent, recorded by the operator.

    ``items`` are the catalog items whose sensitive fields may be shown (and
    item 2 at all); ``scoring`` lets the platform compute its partial score of
    the subject for this institution; ``evidence`` references the signed
    document the operator keeps. Dates must carry their UTC offset
    (``2030-01-01T00:00:00+08:00``): a consent's end read in the wrong zone
    would be off by hours, so a date without one is refused, not guessed.
    """

    subject_id: SubjectId
    institution_id: Annotated[str, Field(min_length=1, max_length=32)]
    purpose: Purpose
    items: Annotated[list[CatalogItemNumber], Field(max_length=10)] = []
    scoring: bool = False
    evidence: Annotated[str, Field(min_length=1, max_length=200)]
    granted_at: UtcDatetime | None = None
    expires_at: UtcDatetime


class AuthorizationRevoke(_In):
    """Why an authorization ends early (the subject withdrew it, it was signed in error …)."""

    reason: Annotated[str, Field(min_length=1, max_length=200)]


class AuthorizationOut(BaseModel):
    """An authorization and its state now."""

    id: str
    subject_kind: str
    subject_id: str
    institution_id: str
    purpose: Purpose
    items: list[int]
    scoring: bool
    evidence: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None
    status: Literal["active", "expired", "revoked", "not_yet_valid"]


class PartialScoreRequest(_In):
    """The bank asks for the platform's part of the score of some subjects."""

    model_id: Annotated[str, Field(min_length=1, max_length=64)]
    usccs: Annotated[list[Uscc], Field(min_length=1, max_length=100)]
    purpose: Purpose = Purpose.loan_approval


class ItemContribution(BaseModel):
    """The platform's contribution to the logit of default from one catalog item."""

    item: int
    contribution: float


class PartialScoreOut(BaseModel):
    """``u_p`` of one authorized subject."""

    uscc: str
    partial_logit: float
    items: list[ItemContribution]
    authorization_id: str


class PartialScoreRefusal(BaseModel):
    """A subject the platform did not score, and why (``no_authorization`` …)."""

    uscc: str
    code: str
    message: str


class PartialScoresOut(BaseModel):
    """The answer to :class:`PartialScoreRequest`: each subject is scored or refused."""

    model_id: str
    model_sha256: str
    scores: list[PartialScoreOut]
    refused: list[PartialScoreRefusal]
    request_id: str


class AuditEventOut(BaseModel):
    """One audit row."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    request_id: str
    institution_id: str | None
    key_id: str | None
    role: str | None
    method: str
    route: str
    action: str
    subjects: list[str]
    purpose: str | None
    authorization_ids: list[str]
    items: list[int]
    outcome: str
    status_code: int
    reason: str | None


class UsageRow(BaseModel):
    """How often one item of the provider was used, by whom, for what."""

    item: int
    action: str
    institution_id: str
    institution_name: str
    purpose: str | None
    masked: bool
    uses: int


class UsageOut(BaseModel):
    """A provider's usage feedback over a period (plan: 定期反馈数据使用情况)."""

    provider: str
    since: datetime
    until: datetime
    total_uses: int
    rows: list[UsageRow]



# --------------------------------------------------------------------------- catalog queries

#: A stored cell as sent: text, number, boolean or null (dates as ISO text).
CellValue = str | int | float | bool | None


class ReportFormat(enum.StrEnum):
    """How a credit report is returned."""

    json = "json"
    html = "html"


class DataDates(BaseModel):
    """Earliest and latest data date among the records shown."""

    earliest: str
    latest: str


class HistoryOut(BaseModel):
    """A dispute (异议), correction (更正) or repair (信用修复) of the subject's records."""

    at: datetime
    action: str
    kind: Literal["dispute", "repair"]
    reason: str


class RecordOut(BaseModel):
    """One current record; sensitive fields masked unless an authorization covers the item."""

    record_id: int
    data_date: str
    provider: str
    provider_name: str
    version: int
    disputed: bool
    values: dict[str, CellValue]


class ItemHeader(BaseModel):
    """What a catalog item is, for the reader of an answer."""

    item: int
    code: str
    name_zh: str
    name_en: str
    category_zh: str
    providers: list[str]
    labels: dict[str, str]
    sensitive_fields: list[str]
    requires_authorization: bool


class ItemRecordsOut(ItemHeader):
    """A subject's records of one item, with their dates, disputes and repairs."""

    subject: str
    status: Literal["shown", "not_authorized", "no_records"]
    masked: bool
    records: list[RecordOut]
    data_dates: DataDates | None
    disputes: list[HistoryOut]
    repairs: list[HistoryOut]
    withdrawn_records: int
    authorization_ids: list[str]


class ItemSummary(BaseModel):
    """How many records of an item the platform holds on a subject (null: not authorized)."""

    item: int
    code: str
    name_zh: str
    records: int | None
    latest_data_date: str | None
    disputed: int | None
    requires_authorization: bool
    authorized: bool


class EnterpriseOut(BaseModel):
    """An overview of what the platform holds on a subject."""

    subject: str
    subject_kind: str
    name: str | None
    purpose: Purpose
    items: list[ItemSummary]
    request_id: str


class CreditReportOut(BaseModel):
    """A credit report: every catalog item with its records, data dates, disputes and
    repairs (a score is the bank's to compute and is not part of it)."""

    subject: str
    subject_kind: str
    name: str | None
    generated_at: datetime
    institution_id: str
    institution_name: str
    purpose: Purpose
    authorization_ids: list[str]
    items: list[ItemRecordsOut]
    request_id: str
