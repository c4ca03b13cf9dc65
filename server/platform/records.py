"""Reading catalog records for queries and reports, from the platform store (``lab.store``).

What a financial institution may see of a subject is the *current* version
of each record: superseded versions (replaced by a correction) and withdrawn
ones (信用修复, credit repair) are history — they are never shown, though the
report says that a correction or repair happened and when. Disputed records
(异议) stay shown, flagged. Masking is not done here but by the route, with
:func:`lab.catalog.mask_value`, because it depends on the caller's consent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select

from lab.catalog import CATALOG, Item
from lab.store import Store
from lab.store.models import STATE_CURRENT, STATE_WITHDRAWN, record_model
from lab.store.models import AuditEvent as StoreEvent

__all__ = ["HistoryEvent", "RecordView", "StoreRecords", "SubjectRecords"]

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class RecordView:
    """One current record: its item's field values and its bookkeeping."""

    record_id: int
    item: Item
    values: dict[str, Scalar]
    data_date: dt.date
    provider: str
    version: int
    disputed: bool
    recorded_at: dt.datetime


@dataclass(frozen=True)
class HistoryEvent:
    """A dispute, correction or repair of one of the subject's records."""

    at: dt.datetime
    action: str
    kind: str
    reason: str
    record_id: int | None


@dataclass
class SubjectRecords:
    """Everything the store holds on one subject for one item."""

    item: Item
    records: list[RecordView] = field(default_factory=list)
    disputes: list[HistoryEvent] = field(default_factory=list)
    repairs: list[HistoryEvent] = field(default_factory=list)
    withdrawn: int = 0


def event_kind(action: str) -> str:
    """``dispute`` for objections and their resolution, ``repair`` for corrections and
    withdrawals, ``other`` otherwise (ingestion events are not about one subject)."""
    name = action.lower()
    if "dispute" in name or "objection" in name:
        return "dispute"
    if any(word in name for word in ("correct", "withdraw", "repair", "supersede")):
        return "repair"
    return "other"


def _plain(value: object) -> Scalar:
    """A stored cell as a JSON scalar (dates as ISO text)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


class StoreRecords:
    """Read access to the catalog records of the platform store.

    Parameters
    ----------
    store : lab.store.Store
        The opened (migrated) store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        # Statements built once with bound parameters: building a select costs more
        # than running it on SQLite, and this is the plain-query hot path.
        self._records = {item.code: select(record_model(item).__table__).where(
            record_model(item).__table__.c.entity_key == bindparam("subject"))
            for item in CATALOG}
        # The subject's events by a subquery, not an expanding IN list: an IN list
        # of varying length is compiled anew on every request.
        events = StoreEvent.__table__
        self._events = {item.code: select(events).where(
            events.c.item == item.code,
            events.c.record_id.in_(select(record_model(item).__table__.c.id).where(
                record_model(item).__table__.c.entity_key == bindparam("subject"))),
        ).order_by(events.c.at) for item in CATALOG}

    def item_records(self, subject: str, item: Item, *, history: bool = True) -> SubjectRecords:
        """The subject's current records of ``item`` (newest data first) and their history."""
        out = SubjectRecords(item=item)
        names = [f.name for f in item.fields]
        with self.store.engine.connect() as connection:
            rows = connection.execute(self._records[item.code], {"subject": subject}).all()
            for row in rows:
                if row.state == STATE_WITHDRAWN:
                    out.withdrawn += 1
                if row.state != STATE_CURRENT:
                    continue
                cells = row._mapping
                out.records.append(RecordView(
                    record_id=row.id, item=item,
                    values={name: _plain(cells[name]) for name in names},
                    data_date=row.data_date, provider=row.provider, version=row.version,
                    disputed=bool(row.disputed), recorded_at=_aware(row.recorded_at)))
            if history and rows:
                events = connection.execute(self._events[item.code],
                                            {"subject": subject}).all()
                for event in events:
                    kind = event_kind(event.action)
                    view = HistoryEvent(at=_aware(event.at), action=event.action, kind=kind,
                                        reason=event.reason, record_id=event.record_id)
                    if kind == "dispute":
                        out.disputes.append(view)
                    elif kind == "repair":
                        out.repairs.append(view)
        out.records.sort(key=lambda r: (r.data_date, r.record_id), reverse=True)
        return out

    def subject_name(self, subject: str, skip: Collection[int] = ()
                     ) -> tuple[str, Item, str, str | None] | None:
        """The subject's name as the first item holding one records it (items in ``skip``
        are not looked at: their mere existence may be withheld from the caller).

        Returns ``(name, item, field name, id_type)`` — enough for the caller to
        mask a natural person's name — or None when no current record has one.
        """
        with self.store.sessions() as session:
            for item in CATALOG:
                if item.number in skip:
                    continue
                model = record_model(item)
                column = next((f.name for f in item.fields if f.name in _NAME_FIELDS), None)
                if column is None:
                    continue
                id_type = getattr(model, "id_type", None)
                query = select(getattr(model, column), id_type if id_type is not None
                               else getattr(model, column)).where(
                    model.entity_key == subject, model.state == STATE_CURRENT).limit(1)
                found = session.execute(query).first()
                if found is not None and found[0]:
                    return str(found[0]), item, column, (
                        str(found[1]) if id_type is not None else None)
        return None


#: Fields that hold the subject's name, by item kind.
_NAME_FIELDS = ("enterprise_name", "operator_name", "grower_name")
