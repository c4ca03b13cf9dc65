"""The data-quality report (lab.quality): exact figures per provider and item, JSON and HTML."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from lab.catalog import get_item
from lab.cli import cli
from lab.ingest import BatchRefused, ingest_file
from lab.quality import quality_report, render_html, write_report
from lab.repair import correct, dispute, withdraw
from lab.store import Store
from lab.store.models import record_model
from lab.store.testing import BACKENDS, temporary_store

USCCS = ["914403001922038216", "9144030071526726XG", "91110000802100433B"]
RECEIVED = dt.datetime(2025, 7, 15, 8, tzinfo=dt.UTC)


def _rows() -> list[dict[str, str]]:
    rows = []
    for i in range(8):
        rows.append({"enterprise_name": "天津某某商贸有限公司", "uscc": USCCS[i % 3],
                     "grid_account_no": f"1200{i}", "address": "天津市南开区卫津路9号",
                     "stat_date": "2025-06-30" if i < 6 else "2025-05-31",
                     "violations_2y": "1" if i % 2 else "", "arrears_amount": "0"})
    rows.append(dict(rows[0]))  # a duplicate of row 2
    rows.append({**rows[1], "grid_account_no": "12009", "uscc": USCCS[1][:17] + "0"})
    return rows


def _write(rows: list[dict[str, str]], path: Path) -> Path:
    item = get_item("electricity")
    pd.DataFrame({f.header: [r.get(f.name, "") for r in rows] for f in item.fields}).to_csv(
        path, index=False)
    return path


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with temporary_store(request.param, tmp_path) as opened:
        ingest_file(opened, "electricity", _write(_rows(), tmp_path / "power.csv"),
                    received_at=RECEIVED)
        (tmp_path / "broken.csv").write_text("统一社会信用代码,金额\n1,2\n", encoding="utf-8")
        with pytest.raises(BatchRefused):
            ingest_file(opened, "electricity", tmp_path / "broken.csv", received_at=RECEIVED)
        yield opened


def test_figures_per_provider_and_item(store: Store) -> None:
    model = record_model("electricity")
    with store.session() as session:
        ids = session.scalars(select(model.id).order_by(model.id)).all()
    dispute(store, "electricity", ids[0], actor="企业", reason="objection")
    correct(store, "electricity", ids[1], {"欠费金额": "5"}, actor="a", reason="fix")
    withdraw(store, "electricity", ids[2], actor="desk", reason="信用修复")

    report = quality_report(store)
    [entry] = report.entries
    assert (entry.provider, entry.item, entry.provider_name) == (
        "state_grid_tianjin", "electricity", "国网天津市电力公司")
    assert (entry.batches, entry.batches_refused) == (1, 1)
    assert "missing columns" in entry.refusals[0]
    assert (entry.rows_delivered, entry.rows_stored, entry.rows_quarantined) == (10, 8, 2)
    assert entry.validity == 0.8
    assert entry.uniqueness == 0.9
    assert {(r.reason_code, r.count, tuple(r.example_rows)) for r in entry.quarantine_reasons} == {
        ("duplicate_key", 1, (10,)), ("uscc_check_character", 1, (11,))}
    # 8 current records: the correction replaced one, the withdrawal removed one
    assert entry.records_current == 7
    by_field = entry.completeness_by_field
    assert by_field["address"] == 1.0 and by_field["remarks"] == 0.0
    assert by_field["violations_2y"] == pytest.approx(4 / 7, abs=1e-4)  # odd rows; 1 corrected
    assert entry.completeness == pytest.approx(sum(by_field.values()) / len(by_field), abs=1e-4)
    # data dates 2025-06-30 (6 rows) and 2025-05-31 (2 rows), received 2025-07-15
    assert (entry.timeliness_days_median, entry.timeliness_days_p90,
            entry.timeliness_days_max) == (15.0, 45.0, 45.0)
    assert entry.records_by_month == {"2025-05": 2, "2025-06": 5}
    assert (entry.disputed_now, entry.corrections, entry.withdrawals) == (1, 1, 1)


def test_json_and_html_are_written_and_identify_no_one(store: Store, tmp_path: Path) -> None:
    report = quality_report(store)
    json_path, html_path = write_report(report, tmp_path / "q")
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert data["entries"][0]["validity"] == 0.8
    page = html_path.read_text(encoding="utf-8")
    assert page == render_html(report)
    assert "电费信息" in page and "<svg" in page and "uscc_check_character" in page
    for secret in [*USCCS, "卫津路", "12003"]:
        assert secret not in page and secret not in json_path.read_text(encoding="utf-8")


def test_cli_quality(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITLAB_DB_URL", f"sqlite:///{tmp_path / 'q.db'}")
    runner = CliRunner()
    path = _write(_rows(), tmp_path / "p.csv")
    assert runner.invoke(cli, ["ingest", "electricity", str(path)]).exit_code == 0
    result = runner.invoke(cli, ["quality", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "validity 80.00%" in result.output and "uniqueness 90.00%" in result.output
    assert (tmp_path / "out" / "quality.html").is_file()
    listed = runner.invoke(cli, ["quarantine", "1"])
    assert "p.csv:10 电网户号 [duplicate_key]" in listed.output
    assert "p.csv:11 统一社会信用代码 [uscc_check_character]" in listed.output
    assert "2 of 2 quarantine entries shown" in listed.output
    absent = runner.invoke(cli, ["quarantine", "999"])
    assert absent.exit_code == 2 and "there is no batch 999 in this store" in absent.output
