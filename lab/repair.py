"""Objections, corrections and credit repair (异议, 更正, 信用修复) of stored records.

The plan asks for records kept "true, accurate, complete" with timely
correction and credit repair. Three actions, each audited (who, when, why)
and none destructive:

* :func:`dispute` — the subject objects; the record is flagged and kept
  (still current, still used) until the objection is resolved, by
  :func:`resolve_dispute` (the record stands), a correction or a withdrawal.
* :func:`correct` — a new version with the corrected values, validated by
  exactly the ingestion rules; the old version becomes ``superseded`` and
  stays in history.
* :func:`withdraw` — credit repair: from that moment the record is not shown
  (:func:`current_records`), not shared and not used for derived features
  (:mod:`lab.features` reads current records only), and stays in history
  (:func:`history`). Ingestion refuses to let the same key back in.

The natural key of a record (e.g. account number and statistics date) cannot
be corrected: a record with another key is another record; withdraw this one
and have the provider deliver the right one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from lab.catalog import Item, Kind, Sensitivity, get_item, header_key, mask_value
from lab.errors import CreditLabError
from lab.ingest import record_data_dates, validate_frame
from lab.store.engine import Store
from lab.store.models import (
    STATE_CURRENT,
    STATE_SUPERSEDED,
    STATE_WITHDRAWN,
    AuditEvent,
    RecordBase,
    record_model,
)

__all__ = [
    "RecordView",
    "RepairError",
    "correct",
    "current_records",
    "dispute",
    "history",
    "resolve_dispute",
    "withdraw",
]


class RepairError(CreditLabError):
    """A repair action cannot be done as asked (the message says what to do instead)."""


class RecordView(BaseModel):
    """One record as shown to a user: bookkeeping plus item values (masked unless authorised)."""

    item: str
    id: int
    version: int
    state: str
    disputed: bool
    batch_id: int
    provider: str
    data_date: dt.date
    supersedes_id: int | None
    values: dict[str, Any]


def _item(ref: str | Item) -> Item:
    if isinstance(ref, Item):
        return ref
    try:
        return get_item(ref)
    except KeyError as exc:
        raise RepairError(f"{exc.args[0]}. Remedy: `creditlab catalog` lists the items") from exc


def _view(item: Item, row: RecordBase, *, authorised: bool) -> RecordView:
    id_type = getattr(row, "id_type", None)
    values = {f.name: mask_value(item, f.name, getattr(row, f.name), id_type=id_type,
                                 authorised=authorised) for f in item.fields}
    return RecordView(item=item.code, id=row.id, version=row.version, state=row.state,
                      disputed=row.disputed, batch_id=row.batch_id, provider=row.provider,
                      data_date=row.data_date, supersedes_id=row.supersedes_id, values=values)


def _load(session: Session, item: Item, record_id: int, *, current: bool = True) -> RecordBase:
    """The record, which must exist and (by default) be the current version."""
    model = record_model(item)
    row = session.get(model, record_id)
    if row is None:
        raise RepairError(
            f"{item.code} record {record_id} does not exist. Remedy: find the record id with "
            f"`creditlab records {item.code} --entity <USCC or id number>`")
    if current and row.state != STATE_CURRENT:
        newer = session.scalar(select(model.id).where(model.supersedes_id == record_id))
        hint = f" by record {newer}; act on that one" if newer else ""
        raise RepairError(f"{item.code} record {record_id} is {row.state}{hint}. Remedy: only "
                          "the current version of a record can be disputed, corrected or "
                          "withdrawn")
    return row


def _audit(session: Session, *, actor: str, action: str, item: Item, record_id: int,
           reason: str, new_record_id: int | None = None,
           detail: Mapping[str, Any] | None = None) -> AuditEvent:
    if not actor.strip():
        raise RepairError("no actor given. Remedy: say who acts (--by NAME)")
    if not reason.strip():
        raise RepairError("no reason given. Remedy: say why (--reason TEXT); the audit log "
                          "keeps it")
    event = AuditEvent(actor=actor.strip(), action=action, item=item.code, record_id=record_id,
                       new_record_id=new_record_id, reason=reason.strip(),
                       detail=json.dumps(dict(detail), ensure_ascii=False) if detail else None)
    session.add(event)
    session.flush()
    return event


def dispute(store: Store, item_ref: str | Item, record_id: int, *, actor: str,
            reason: str) -> int:
    """Flag a record as under objection (it stays current); return the audit event id."""
    item = _item(item_ref)
    with store.session() as session:
        row = _load(session, item, record_id)
        if row.disputed:
            raise RepairError(f"{item.code} record {record_id} is already disputed. Remedy: "
                              "resolve, correct or withdraw it")
        row.disputed = True
        return _audit(session, actor=actor, action="dispute", item=item, record_id=record_id,
                      reason=reason).id


def resolve_dispute(store: Store, item_ref: str | Item, record_id: int, *, actor: str,
                    reason: str) -> int:
    """Close an objection with the record unchanged; return the audit event id."""
    item = _item(item_ref)
    with store.session() as session:
        row = _load(session, item, record_id)
        if not row.disputed:
            raise RepairError(f"{item.code} record {record_id} is not disputed. Remedy: nothing "
                              "to resolve")
        row.disputed = False
        return _audit(session, actor=actor, action="resolve_dispute", item=item,
                      record_id=record_id, reason=reason).id


def withdraw(store: Store, item_ref: str | Item, record_id: int, *, actor: str,
             reason: str) -> int:
    """Credit repair: the record stops being shown, shared and used; return the audit event id."""
    item = _item(item_ref)
    with store.session() as session:
        row = _load(session, item, record_id)
        row.state = STATE_WITHDRAWN
        return _audit(session, actor=actor, action="withdraw", item=item, record_id=record_id,
                      reason=reason, detail={"was_disputed": row.disputed}).id


def _as_cell(value: object, kind: Kind) -> str:
    """A stored value back as the text a provider file would hold (to re-validate it)."""
    if value is None:
        return ""
    if kind is Kind.BOOL:
        return "是" if value else "否"
    if isinstance(value, dt.date):
        return value.isoformat()
    if kind in (Kind.AMOUNT, Kind.QUANTITY, Kind.RATE):
        return repr(float(value))  # SQLite's NUMERIC affinity hands 2500.0 back as 2500
    return str(value)


def correct(store: Store, item_ref: str | Item, record_id: int, changes: Mapping[str, str], *,
            actor: str, reason: str) -> int:
    """Store a corrected version of a record; return the new record's id.

    Parameters
    ----------
    changes : mapping
        Field (identifier or Chinese header) → new value as text, written as
        in a provider file (e.g. ``{"欠费金额": "0"}``).

    Raises
    ------
    RepairError
        Unknown field, a key field, no actual change, or a value that fails
        the ingestion rules (the message is the quarantine reason).
    """
    item = _item(item_ref)
    by_header = {header_key(f.header): f for f in item.fields}
    resolved: dict[str, str] = {}
    for name, value in changes.items():
        spec = by_header.get(header_key(name))
        if spec is None:
            try:
                spec = item.field(name)
            except KeyError:
                raise RepairError(
                    f"{item.name_zh} has no field {name!r}. Remedy: use one of: "
                    + ", ".join(f"{f.name} ({f.header})" for f in item.fields)) from None
        if spec.name in item.key:
            raise RepairError(
                f"{spec.header} is part of the record's key and cannot be corrected. Remedy: "
                "withdraw this record and have the provider deliver the right one")
        if spec.name in resolved:
            raise RepairError(f"{spec.header} ({spec.name}) is given twice. Remedy: give each "
                              "field once")
        resolved[spec.name] = value
    if not resolved:
        raise RepairError("no changes given. Remedy: name at least one FIELD=VALUE")
    model = record_model(item)
    with store.session() as session:
        old = _load(session, item, record_id)
        cells = {f.name: _as_cell(getattr(old, f.name), f.kind) for f in item.fields}
        cells.update(resolved)
        frame = pd.DataFrame({name: pd.Series([value], dtype="str")
                              for name, value in cells.items()})
        validated = validate_frame(item, frame, received=dt.date.today())
        problems = [check.problems[check.problem[0]].message
                    for check in validated.checks.values() if check.problem[0] >= 0]
        if problems:
            raise RepairError("the corrected record would be rejected: " + "; ".join(problems))
        if int(validated.content_hash[0]) == old.content_hash:
            raise RepairError("the values given are the ones stored. Remedy: nothing to correct")
        new = model(**{f.name: validated.checks[f.name].values[0] for f in item.fields})
        for spec in item.fields:
            if spec.kind is Kind.DATE and getattr(new, spec.name) is not None:
                setattr(new, spec.name, dt.date.fromisoformat(getattr(new, spec.name)))
        new.batch_id = old.batch_id
        new.provider = old.provider
        new.data_date = dt.date.fromisoformat(str(
            record_data_dates(item, validated, old.data_date)[0]))
        new.source_row = None
        new.entity_key = str(validated.checks[item.entity].values[0])
        new.record_key = old.record_key
        new.content_hash = int(validated.content_hash[0])
        new.version = old.version + 1
        new.state = STATE_CURRENT
        new.disputed = False
        new.supersedes_id = old.id
        old.state = STATE_SUPERSEDED
        session.flush()  # the old version leaves the "one current per key" index first
        session.add(new)
        session.flush()
        changed = {}
        for name in resolved:
            spec = item.field(name)
            before, after = getattr(old, name), getattr(new, name)
            if spec.sensitivity is not Sensitivity.PUBLIC:
                before = mask_value(item, name, _as_cell(before, spec.kind))
                after = mask_value(item, name, _as_cell(after, spec.kind))
            changed[name] = [_as_cell(before, spec.kind), _as_cell(after, spec.kind)]
        _audit(session, actor=actor, action="correct", item=item, record_id=old.id,
               new_record_id=new.id, reason=reason,
               detail={"changed": changed, "resolved_dispute": old.disputed})
        return new.id


def current_records(store: Store, item_ref: str | Item, entity: str, *,
                    authorised: bool = False) -> list[RecordView]:
    """What may be shown about an entity in one item: current versions only, masked.

    Withdrawn and superseded versions never appear here; personal fields are
    masked unless ``authorised`` (an authorization covering the request).
    """
    from crypto.identifiers import normalise_id

    item = _item(item_ref)
    model = record_model(item)
    with store.session() as session:
        rows = session.scalars(select(model).where(
            model.entity_key == normalise_id(entity), model.state == STATE_CURRENT
        ).order_by(model.data_date, model.id)).all()
        return [_view(item, row, authorised=authorised) for row in rows]


class HistoryEntry(BaseModel):
    """One audit event of a record's chain."""

    at: dt.datetime
    actor: str
    action: str
    record_id: int | None
    new_record_id: int | None
    reason: str
    detail: dict[str, Any] | None


class RecordHistory(BaseModel):
    """Every version of a record (oldest first) and every audited change to them."""

    versions: list[RecordView]
    events: list[HistoryEntry]


def history(store: Store, item_ref: str | Item, record_id: int) -> RecordHistory:
    """The full chain of a record: all versions, whatever their state, and the audit trail."""
    item = _item(item_ref)
    model = record_model(item)
    with store.session() as session:
        row = _load(session, item, record_id, current=False)
        chain = session.scalars(select(model).where(
            model.record_key == row.record_key).order_by(model.version, model.id)).all()
        ids = [r.id for r in chain]
        events = session.scalars(select(AuditEvent).where(
            AuditEvent.item == item.code, AuditEvent.record_id.in_(ids)
        ).order_by(AuditEvent.at, AuditEvent.id)).all()
        return RecordHistory(
            versions=[_view(item, r, authorised=False) for r in chain],
            events=[HistoryEntry(at=e.at, actor=e.actor, action=e.action, record_id=e.record_id,
                                 new_record_id=e.new_record_id, reason=e.reason,
                                 detail=json.loads(e.detail) if e.detail else None)
                    for e in events])
