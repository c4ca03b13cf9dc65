"""Objections, corrections and credit repair (lab.repair), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lab.catalog import get_item
from lab.cli import cli
from lab.features import load_snapshot, take_snapshot
from lab.ingest import ingest_file
from lab.repair import (
    RepairError,
    correct,
    current_records,
    dispute,
    history,
    resolve_dispute,
    withdraw,
)
from lab.store import Store
from lab.store.models import AuditEvent, QuarantinedRow, record_model
from lab.store.testing import BACKENDS, temporary_store

USCC = "914403001922038216"
OTHER = "9144030071526726XG"
AS_OF = dt.date(2025, 6, 30)


def _write(code: str, rows: list[dict[str, str]], path: Path) -> Path:
    item = get_item(code)
    frame = pd.DataFrame({f.header: [r.get(f.name, "") for r in rows] for f in item.fields})
    frame.to_csv(path, index=False)
    return path


def _electricity(uscc: str, month: int, *, arrears: float) -> dict[str, str]:
    end = (dt.date(2025, month % 12 + 1, 1) if month < 12 else dt.date(2026, 1, 1)) - dt.timedelta(
        days=1)
    return {"enterprise_name": "天津某某商贸有限公司", "uscc": uscc,
            "grid_account_no": f"12{uscc[-6:]}", "address": "天津市河西区友谊路1号",
            "operating_capacity_kva": "60", "contract_capacity_kva": "100",
            "arrears_amount": f"{arrears}", "in_arrears_now": "是" if arrears else "否",
            "avg_spend_3m": "900", "avg_spend_6m": "950", "avg_spend_12m": "1000",
            "violations_2y": "1", "stat_date": end.isoformat()}


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with temporary_store(request.param, tmp_path) as opened:
        rows = [_electricity(USCC, m, arrears=0.0) for m in range(1, 6)]
        rows.append(_electricity(USCC, 6, arrears=2500.0))
        rows += [_electricity(OTHER, m, arrears=0.0) for m in range(1, 7)]
        ingest_file(opened, "electricity", _write("electricity", rows, tmp_path / "e.csv"),
                    received_at=dt.datetime(2025, 7, 10, tzinfo=dt.UTC))
        yield opened


def _latest_id(store: Store, uscc: str = USCC) -> int:
    model = record_model("electricity")
    with store.session() as session:
        return session.scalar(select(model.id).where(
            model.entity_key == uscc, model.state == "current").order_by(
            model.stat_date.desc()).limit(1))


def test_repaired_record_leaves_queries_and_the_next_snapshot_but_stays_in_history(
        store: Store, tmp_path: Path) -> None:
    record = _latest_id(store)
    before = take_snapshot(store, AS_OF)
    _, features_before = load_snapshot(store, before.id)
    assert features_before.loc[USCC, "elec_in_arrears_now"] == 1.0
    assert features_before.loc[USCC, "elec_arrears_amount_latest"] == 2500.0
    assert features_before.loc[USCC, "elec_arrears_months_12m"] == 1.0
    assert len(current_records(store, "electricity", USCC)) == 6

    withdraw(store, "electricity", record, actor="repair-desk",
             reason="信用修复: arrears paid and repair approved")

    shown = current_records(store, "electricity", USCC)
    assert len(shown) == 5 and record not in [v.id for v in shown]
    after = take_snapshot(store, AS_OF)
    _, features_after = load_snapshot(store, after.id)
    # the enterprise's latest electricity row is now May's: no arrears
    assert features_after.loc[USCC, "elec_in_arrears_now"] == 0.0
    assert features_after.loc[USCC, "elec_arrears_amount_latest"] == 0.0
    assert features_after.loc[USCC, "elec_arrears_months_12m"] == 0.0
    assert features_after.loc[USCC, "utility_arrears_now"] == 0.0
    # the other enterprise is untouched, and the earlier snapshot is kept as it was
    assert features_after.loc[OTHER].equals(features_before.loc[OTHER])
    _, reloaded = load_snapshot(store, before.id)
    assert reloaded.loc[USCC, "elec_in_arrears_now"] == 1.0
    assert after.content_sha256 != before.content_sha256

    chain = history(store, "electricity", record)
    assert [(v.id, v.state) for v in chain.versions] == [(record, "withdrawn")]
    assert chain.versions[0].values["arrears_amount"] == 2500.0
    assert chain.versions[0].values["address"] == "天津市河西区****"  # masked in history too
    [event] = chain.events
    assert (event.action, event.actor) == ("withdraw", "repair-desk")
    assert event.reason.startswith("信用修复")

    # the provider's next delivery of the same record does not bring it back
    again = ingest_file(store, "electricity", _write(
        "electricity", [_electricity(USCC, 6, arrears=2500.0)], tmp_path / "again.csv"))
    assert (again.rows_stored, again.rows_quarantined) == (0, 1)
    assert again.quarantine_by_reason == {"withdrawn_by_repair": 1}
    assert len(current_records(store, "electricity", USCC)) == 5


def test_dispute_flags_and_keeps_the_record_until_resolved(store: Store) -> None:
    record = _latest_id(store)
    dispute(store, "electricity", record, actor="企业", reason="arrears were paid on 2025-06-28")
    [flagged] = [v for v in current_records(store, "electricity", USCC) if v.id == record]
    assert flagged.disputed and flagged.state == "current"
    with pytest.raises(RepairError, match="already disputed"):
        dispute(store, "electricity", record, actor="企业", reason="again")
    resolve_dispute(store, "electricity", record, actor="analyst", reason="grid confirms arrears")
    [kept] = [v for v in current_records(store, "electricity", USCC) if v.id == record]
    assert not kept.disputed
    assert [e.action for e in history(store, "electricity", record).events] == [
        "dispute", "resolve_dispute"]


def test_correction_makes_a_new_version_and_keeps_the_old(store: Store) -> None:
    record = _latest_id(store)
    dispute(store, "electricity", record, actor="企业", reason="paid")
    new_id = correct(store, "electricity", record, {"欠费金额": "0", "in_arrears_now": "否"},
                     actor="analyst", reason="grid corrected its export")
    chain = history(store, "electricity", new_id)
    assert [(v.id, v.version, v.state, v.values["arrears_amount"], v.disputed)
            for v in chain.versions] == [(record, 1, "superseded", 2500.0, True),
                                         (new_id, 2, "current", 0.0, False)]
    assert chain.versions[1].supersedes_id == record
    correction = chain.events[-1]
    assert correction.action == "correct" and correction.new_record_id == new_id
    assert correction.detail == {"changed": {"arrears_amount": ["2500.0", "0.0"],
                                             "in_arrears_now": ["是", "否"]},
                                 "resolved_dispute": True}
    features = take_snapshot(store, AS_OF)
    _, frame = load_snapshot(store, features.id)
    assert frame.loc[USCC, "elec_in_arrears_now"] == 0.0


def test_a_redelivery_does_not_undo_a_correction(store: Store, tmp_path: Path) -> None:
    """The provider's old values came back as a new version, silently undoing the objection."""
    record = _latest_id(store)
    new_id = correct(store, "electricity", record, {"欠费金额": "0", "in_arrears_now": "否"},
                     actor="analyst", reason="异议核实")
    old = ingest_file(store, "electricity", _write(
        "electricity", [_electricity(USCC, 6, arrears=2500.0)], tmp_path / "old.csv"))
    assert (old.rows_stored, old.rows_superseding, old.rows_quarantined) == (0, 0, 1)
    assert old.quarantine_by_reason == {"differs_from_correction": 1}
    assert [v.id for v in current_records(store, "electricity", USCC)
            if v.values["stat_date"] == dt.date(2025, 6, 30)] == [new_id]
    agreed = ingest_file(store, "electricity", _write(
        "electricity", [_electricity(USCC, 6, arrears=0.0)], tmp_path / "agreed.csv"))
    assert (agreed.rows_stored, agreed.rows_unchanged, agreed.rows_quarantined) == (0, 1, 0)


@pytest.mark.parametrize(("changes", "message"), [
    ({"统计日期": "2025-05-31"}, "part of the record's key"),
    ({"欠费金额": "-1"}, "is negative"),
    ({"colour": "red"}, "has no field"),
    ({"欠费金额": "2500"}, "the ones stored"),
    ({}, "no changes"),
    ({"欠费金额": "0", "arrears_amount": "5"}, "given twice"),
])
def test_bad_corrections_are_refused_with_a_remedy(
        store: Store, changes: dict[str, str], message: str) -> None:
    with pytest.raises(RepairError, match=message):
        correct(store, "electricity", _latest_id(store), changes, actor="a", reason="b")


def test_only_current_versions_can_be_acted_on_and_who_and_why_are_required(store: Store) -> None:
    record = _latest_id(store)
    new_id = correct(store, "electricity", record, {"欠费金额": "1"}, actor="a", reason="b")
    with pytest.raises(RepairError, match=f"superseded by record {new_id}"):
        withdraw(store, "electricity", record, actor="a", reason="b")
    with pytest.raises(RepairError, match="does not exist"):
        dispute(store, "electricity", 999_999, actor="a", reason="b")
    with pytest.raises(RepairError, match="--by"):
        dispute(store, "electricity", new_id, actor=" ", reason="b")
    with pytest.raises(RepairError, match="--reason"):
        dispute(store, "electricity", new_id, actor="a", reason="")
    with store.session() as session:
        assert session.scalars(select(AuditEvent.action).where(
            AuditEvent.action != "ingest")).all() == ["correct"]
        assert session.scalar(select(QuarantinedRow.id)) is None


def test_cli_repair_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITLAB_DB_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    path = _write("electricity", [_electricity(USCC, 6, arrears=10.0)], tmp_path / "e.csv")
    result = runner.invoke(cli, ["ingest", "electricity", str(path)])
    assert result.exit_code == 0, result.output
    assert "stored 1" in result.output
    shown = runner.invoke(cli, ["records", "electricity", "--entity", USCC])
    assert '"grid_account_no": "12****16"' in shown.output
    assert runner.invoke(cli, ["dispute", "electricity", "1", "--by", "企业", "--reason",
                               "paid"]).exit_code == 0
    corrected = runner.invoke(cli, ["correct", "electricity", "1", "--by", "analyst", "--reason",
                                    "fixed", "--set", "欠费金额=0", "--set", "当前是否欠费=否"])
    assert "new version is record 2" in corrected.output
    repaired = runner.invoke(cli, ["repair", "electricity", "2", "--by", "desk", "--reason",
                                   "信用修复"])
    assert "withdrawn" in repaired.output
    assert runner.invoke(cli, ["records", "electricity", "--entity", USCC]).output.strip() == "[]"
    assert '"state": "withdrawn"' in runner.invoke(cli, ["history", "electricity", "1"]).output
    refused = runner.invoke(cli, ["repair", "electricity", "2", "--by", "desk", "--reason", "x"])
    assert refused.exit_code == 2 and "is withdrawn" in refused.output
