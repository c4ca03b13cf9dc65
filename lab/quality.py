"""Data-quality report per provider and item: JSON for tools, an HTML page for people.

The plan asks for data-quality governance and regular feedback to each
provider (定期反馈数据使用情况). For every (provider, item) pair with
deliveries, :func:`quality_report` measures

* **validity** — share of delivered rows accepted (stored or unchanged),
  with the quarantine reasons that make up the rest, and example rows;
* **completeness** — per field, share of current records with a value; the
  item's figure is the mean over its fields;
* **uniqueness** — 1 − share of delivered rows that repeated a natural key
  within their file;
* **timeliness** — lag in days from a record's data date to the day its
  batch was received (median, 90th percentile, maximum);
* **volume over time** — current records per data month, and rows per batch;
* **repair activity** — records under objection, corrected, withdrawn.

Refused batches (wrong headers or encoding) are counted with their reason.
Nothing in the report identifies a person or enterprise.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import func, select

from lab.catalog import CATALOG, PROVIDERS, get_item
from lab.store.engine import Store
from lab.store.models import (
    STATE_CURRENT,
    AuditEvent,
    Batch,
    QuarantinedRow,
    record_model,
)

__all__ = ["ProviderItemQuality", "QualityReport", "quality_report", "write_report"]


class ReasonCount(BaseModel):
    """Quarantined cells of one field and reason, with a few row numbers to look at."""

    field: str | None
    header: str | None
    reason_code: str
    count: int
    example_rows: list[int]
    example_file: str


class ProviderItemQuality(BaseModel):
    """The quality figures of one provider's deliveries of one item."""

    provider: str
    provider_name: str
    item: str
    item_name: str
    batches: int
    batches_refused: int
    refusals: list[str]
    rows_delivered: int
    rows_stored: int
    rows_unchanged: int
    rows_quarantined: int
    rows_normalised: int
    rows_warned: int
    validity: float | None
    uniqueness: float | None
    completeness: float | None
    completeness_by_field: dict[str, float]
    timeliness_days_median: float | None
    timeliness_days_p90: float | None
    timeliness_days_max: float | None
    records_current: int
    records_by_month: dict[str, int]
    rows_by_batch: list[dict[str, Any]]
    quarantine_reasons: list[ReasonCount]
    disputed_now: int
    corrections: int
    withdrawals: int


class QualityReport(BaseModel):
    """The whole report."""

    generated_at: dt.datetime
    store: str
    entries: list[ProviderItemQuality]


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, q * cumulative[-1])])


def quality_report(store: Store) -> QualityReport:
    """Measure every (provider, item) pair that has at least one delivery."""
    entries: list[ProviderItemQuality] = []
    with store.session() as session:
        pairs = session.execute(select(Batch.provider, Batch.item).distinct()).all()
        order = {item.code: item.number for item in CATALOG}
        for provider, code in sorted(pairs, key=lambda p: (order.get(p[1], 99), p[0])):
            item = get_item(code)
            model = record_model(item)
            batches = session.scalars(select(Batch).where(
                Batch.provider == provider, Batch.item == code).order_by(Batch.id)).all()
            done = [b for b in batches if b.status == "complete"]
            refused = [b for b in batches if b.status == "refused"]
            delivered = sum(b.rows_total for b in done)
            quarantined = sum(b.rows_quarantined for b in done)
            batch_ids = [b.id for b in done]
            received = {b.id: b.received_at.date() for b in done}

            reasons: list[ReasonCount] = []
            duplicates = 0
            if batch_ids:
                grouped = session.execute(
                    select(QuarantinedRow.field, QuarantinedRow.header,
                           QuarantinedRow.reason_code, func.count(), func.min(QuarantinedRow.id))
                    .where(QuarantinedRow.batch_id.in_(batch_ids))
                    .group_by(QuarantinedRow.field, QuarantinedRow.header,
                              QuarantinedRow.reason_code)
                    .order_by(func.count().desc())).all()
                for field, header, reason, count, _ in grouped:
                    examples = session.execute(
                        select(QuarantinedRow.row, QuarantinedRow.file_name).where(
                            QuarantinedRow.batch_id.in_(batch_ids),
                            QuarantinedRow.reason_code == reason,
                            QuarantinedRow.field == field).order_by(QuarantinedRow.id).limit(5)
                    ).all()
                    reasons.append(ReasonCount(
                        field=field, header=header, reason_code=reason, count=int(count),
                        example_rows=[r for r, _ in examples],
                        example_file=examples[0][1] if examples else ""))
                    if reason == "duplicate_key":
                        duplicates += int(count)

            live = (model.provider == provider) & (model.state == STATE_CURRENT)
            current = session.scalar(select(func.count()).select_from(model).where(live)) or 0
            fills: dict[str, float] = {}
            if current:
                counts = session.execute(select(*[
                    func.count(getattr(model, f.name)) for f in item.fields]).where(live)).one()
                fills = {f.name: round(int(c) / current, 4)
                         for f, c in zip(item.fields, counts, strict=True)}

            lags: list[tuple[float, int]] = []
            by_month: dict[str, int] = defaultdict(int)
            if batch_ids:
                spread = session.execute(
                    select(model.batch_id, model.data_date, func.count())
                    .where(model.provider == provider, model.batch_id.in_(batch_ids))
                    .group_by(model.batch_id, model.data_date)).all()
                for batch_id, data_date, count in spread:
                    lags.append(((received[batch_id] - data_date).days, int(count)))
                current_months = session.execute(
                    select(model.data_date, func.count()).where(live)
                    .group_by(model.data_date)).all()
                for data_date, count in current_months:
                    by_month[data_date.strftime("%Y-%m")] += int(count)
            lag_values = np.array([v for v, _ in lags], dtype=float)
            lag_weights = np.array([w for _, w in lags], dtype=float)

            repairs = dict(session.execute(
                select(AuditEvent.action, func.count()).where(
                    AuditEvent.item == code,
                    AuditEvent.action.in_(("correct", "withdraw")),
                    AuditEvent.record_id.in_(select(model.id).where(model.provider == provider)))
                .group_by(AuditEvent.action)).all())
            disputed = session.scalar(select(func.count()).select_from(model).where(
                live, model.disputed.is_(True))) or 0

            entries.append(ProviderItemQuality(
                provider=provider, provider_name=PROVIDERS[provider].name_zh, item=code,
                item_name=item.name_zh, batches=len(done), batches_refused=len(refused),
                refusals=[b.refusal or "" for b in refused],
                rows_delivered=delivered, rows_stored=sum(b.rows_stored for b in done),
                rows_unchanged=sum(b.rows_unchanged for b in done), rows_quarantined=quarantined,
                rows_normalised=sum(b.rows_normalised for b in done),
                rows_warned=sum(b.rows_warned for b in done),
                validity=round(1 - quarantined / delivered, 4) if delivered else None,
                uniqueness=round(1 - duplicates / delivered, 4) if delivered else None,
                completeness=round(float(np.mean(list(fills.values()))), 4) if fills else None,
                completeness_by_field=fills,
                timeliness_days_median=_weighted_quantile(lag_values, lag_weights, 0.5)
                if lags else None,
                timeliness_days_p90=_weighted_quantile(lag_values, lag_weights, 0.9)
                if lags else None,
                timeliness_days_max=float(lag_values.max()) if lags else None,
                records_current=int(current), records_by_month=dict(sorted(by_month.items())),
                rows_by_batch=[{"batch": b.id, "received": b.received_at.date().isoformat(),
                                "file": b.file_name, "rows": b.rows_total,
                                "quarantined": b.rows_quarantined} for b in done],
                quarantine_reasons=reasons, disputed_now=int(disputed),
                corrections=int(repairs.get("correct", 0)),
                withdrawals=int(repairs.get("withdraw", 0)),
            ))
    return QualityReport(generated_at=dt.datetime.now(dt.UTC),
                         store=store.engine.url.render_as_string(), entries=entries)


# --------------------------------------------------------------------------- HTML


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _bars(by_month: dict[str, int]) -> str:
    """Inline SVG bar chart of records per data month (no scripts, no external assets)."""
    if not by_month:
        return "<p>no current records</p>"
    months = list(by_month)[-36:]
    peak = max(by_month[m] for m in months) or 1
    width, height, gap = 14, 60, 2
    bars = []
    for i, month in enumerate(months):
        h = max(1, round(height * by_month[month] / peak))
        bars.append(f'<rect x="{i * (width + gap)}" y="{height - h}" width="{width}" '
                    f'height="{h}"><title>{html.escape(month)}: {by_month[month]:,}</title></rect>')
    total_width = len(months) * (width + gap)
    return (f'<svg class="bars" width="{total_width}" height="{height}" role="img" '
            f'aria-label="records per data month">{"".join(bars)}</svg>'
            f'<div class="axis">{html.escape(months[0])} … {html.escape(months[-1])}</div>')


def render_html(report: QualityReport) -> str:
    """The report as one self-contained HTML page."""
    parts = [
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>",
        "<title>CreditLab data quality</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}",
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;",
        "padding:.25em .6em;text-align:right}th{background:#f4f4f4}td.l,th.l{text-align:left}",
        ".bars rect{fill:#4a78b0}.axis{font-size:.8em;color:#666}h2{margin-top:2em}",
        "</style></head><body>",
        "<h1>Data quality by provider and item</h1>",
        f"<p>Generated {html.escape(report.generated_at.isoformat(timespec='seconds'))}.</p>",
        "<table><tr><th class='l'>provider</th><th class='l'>item</th><th>batches</th>"
        "<th>refused</th><th>rows delivered</th><th>validity</th><th>completeness</th>"
        "<th>uniqueness</th><th>lag median (days)</th><th>lag p90</th><th>current</th>"
        "<th>disputed</th><th>corrected</th><th>withdrawn</th></tr>",
    ]
    for e in report.entries:
        parts.append(
            f"<tr><td class='l'>{html.escape(e.provider_name)}</td>"
            f"<td class='l'><a href='#{e.provider}-{e.item}'>{html.escape(e.item_name)}</a></td>"
            f"<td>{e.batches}</td><td>{e.batches_refused}</td><td>{e.rows_delivered:,}</td>"
            f"<td>{_pct(e.validity)}</td><td>{_pct(e.completeness)}</td>"
            f"<td>{_pct(e.uniqueness)}</td><td>{_num(e.timeliness_days_median)}</td>"
            f"<td>{_num(e.timeliness_days_p90)}</td><td>{e.records_current:,}</td>"
            f"<td>{e.disputed_now}</td><td>{e.corrections}</td><td>{e.withdrawals}</td></tr>")
    parts.append("</table>")
    for e in report.entries:
        parts.append(f"<h2 id='{e.provider}-{e.item}'>{html.escape(e.provider_name)} — "
                     f"{html.escape(e.item_name)}</h2>")
        parts.append("<h3>Records per data month</h3>" + _bars(e.records_by_month))
        if e.quarantine_reasons:
            parts.append("<h3>Quarantine reasons</h3><table><tr><th class='l'>field</th>"
                         "<th class='l'>reason</th><th>rows</th><th class='l'>examples "
                         "(file, row)</th></tr>")
            for r in e.quarantine_reasons:
                rows = ", ".join(str(x) for x in r.example_rows)
                parts.append(f"<tr><td class='l'>{html.escape(r.header or '')}</td>"
                             f"<td class='l'>{html.escape(r.reason_code)}</td><td>{r.count:,}"
                             f"</td><td class='l'>{html.escape(r.example_file)}: {rows}</td></tr>")
            parts.append("</table>")
        if e.refusals:
            parts.append("<h3>Refused batches</h3><ul>" + "".join(
                f"<li>{html.escape(r)}</li>" for r in e.refusals) + "</ul>")
        item = get_item(e.item)
        parts.append("<h3>Completeness by field</h3><table><tr><th class='l'>field</th>"
                     "<th>filled</th></tr>")
        for f in item.fields:
            parts.append(f"<tr><td class='l'>{html.escape(f.header)}</td>"
                         f"<td>{_pct(e.completeness_by_field.get(f.name))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def write_report(report: QualityReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``quality.json`` and ``quality.html`` into ``out_dir``; return both paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, html_path = folder / "quality.json", folder / "quality.html"
    json_path.write_text(json.dumps(report.model_dump(mode="json"), ensure_ascii=False,
                                    indent=2), encoding="utf-8")
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path
