"""Derived enterprise features (lab.features): exact values, no look-ahead, snapshots, export."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lab.catalog import ID_TYPE_USCC, get_item
from lab.features import (
    DEFINITIONS,
    DEFINITIONS_VERSION,
    FEATURE_NAMES,
    SnapshotError,
    compute_features,
    export_snapshot,
    load_snapshot,
    take_snapshot,
)
from lab.ingest import ingest_file
from lab.store import Store
from lab.store.testing import BACKENDS, temporary_store

A, B, C = "914403001922038216", "9144030071526726XG", "91110000802100433B"
AS_OF = dt.date(2025, 6, 30)
RECEIVED = dt.datetime(2025, 8, 15, tzinfo=dt.UTC)


def _month_end(period: str) -> str:
    year, month = int(period[:4]), int(period[5:])
    following = dt.date(year + (month == 12), month % 12 + 1, 1)
    return (following - dt.timedelta(days=1)).isoformat()


def _periods(first: str, count: int) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year, month + 1) if month < 12 else (year + 1, 1)
    return out


def _ingest(store: Store, tmp: Path, code: str, rows: list[dict[str, str]], **kw: object) -> None:
    item = get_item(code)
    frame = pd.DataFrame({f.header: [r.get(f.name, "") for r in rows] for f in item.fields})
    path = tmp / f"{code}.csv"
    frame.to_csv(path, index=False)
    report = ingest_file(store, item, path, received_at=RECEIVED, **kw)  # type: ignore[arg-type]
    assert report.rows_quarantined == 0, report.quarantine_by_reason


def _populate(store: Store, tmp: Path) -> None:
    firm = {"enterprise_name": "天津某某制造有限公司"}
    medical = []
    for period, headcount in zip(_periods("2025-01", 7), [320, 160, 80, 40, 20, 10, 1],
                                 strict=True):
        deferred = {"2025-02": "200", "2025-05": "300"}.get(period, "0")
        medical.append({**firm, "uscc": A, "period": period, "insured_headcount": str(headcount),
                        "contribution_amount": "1000", "deferred_amount": deferred,
                        "last_normal_payment_month": "2025-03" if period == "2025-06" else ""})
    medical.append({**firm, "uscc": A, "period": "2024-06", "insured_headcount": "400",
                    "contribution_amount": "1000", "deferred_amount": "1000"})
    _ingest(store, tmp, "medical_contributions", medical)
    _ingest(store, tmp, "medical_arrears", [
        {**firm, "uscc": A, "arrears_period": p, "arrears_amount": a}
        for p, a in (("2023-06", "999"), ("2024-01", "100"), ("2025-06", "50"))],
        provider="tax_bureau")
    _ingest(store, tmp, "medical_changes", [
        {**firm, "uscc": A, "stat_time": t, "headcount_change_rate_q": r,
         "contribution_change_rate_q": "0"}
        for t, r in (("2024-03-31", "10"), ("2025-06-30", "-5.5"))])

    def power(account: str, day: str, *, arrears: str, s3: str, s6: str, s12: str, op: str,
              violations: str) -> dict[str, str]:
        return {**firm, "uscc": A, "grid_account_no": account, "stat_date": day,
                "arrears_amount": arrears, "in_arrears_now": "是" if arrears != "0" else "否",
                "avg_spend_3m": s3, "avg_spend_6m": s6, "avg_spend_12m": s12,
                "operating_capacity_kva": op, "contract_capacity_kva": "100",
                "violations_2y": violations}

    _ingest(store, tmp, "electricity", [
        power("E1", "2025-05-31", arrears="10", s3="80", s6="90", s12="100", op="20",
              violations="1"),
        power("E1", "2025-06-30", arrears="0", s3="90", s6="95", s12="100", op="30",
              violations="1"),
        power("E2", "2025-06-30", arrears="40", s3="240", s6="235", s12="200", op="70",
              violations="2"),
        power("E2", "2025-07-31", arrears="9999", s3="1", s6="1", s12="1", op="1",
              violations="9"),
    ])
    water = []
    for period in _periods("2024-07", 12):
        water.append({**firm, "uscc": A, "account_name": "某公司", "account_no": "W1",
                      "billing_period": period, "stat_date": _month_end(period),
                      "payment_details": "130" if period >= "2025-04" else "100",
                      "in_arrears_now": "是" if period == "2025-04" else "否",
                      "avg_usage_3m": "12" if period == "2025-06" else "10", "avg_usage_6m": "10"})
    _ingest(store, tmp, "water", water, provider="water_group")
    _ingest(store, tmp, "gas", [
        {"enterprise_name": "某餐饮", "uscc": B, "account_name": "某餐饮", "account_no": "G1",
         "billing_period": p, "stat_date": _month_end(p), "payment_details": "50",
         "in_arrears_now": "是" if p == "2025-06" else "否"} for p in ("2025-05", "2025-06")])
    coop = {"operator_name": "某合作社", "id_type": ID_TYPE_USCC, "id_number": C}
    _ingest(store, tmp, "agri_insurance", [
        {**coop, "is_insured": "是", "insurance_type": "种植业保险",
         "policy_valid_from": "2024-10-01", "policy_valid_to": "2025-09-30"}])
    _ingest(store, tmp, "agri_subsidies", [
        {**coop, "subsidy_type": t, "subsidy_amount": a, "stat_time": s}
        for t, a, s in (("农机购置补贴", "500", "2025-03-01"), ("其他", "300", "2024-05-01"))])
    _ingest(store, tmp, "designated_institutions", [
        {**firm, "uscc": A, "practice_license_no": "PDY1"}], data_date=AS_OF)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with temporary_store(request.param, tmp_path) as opened:
        _populate(opened, tmp_path)
        yield opened


def test_feature_values_follow_their_definitions(store: Store) -> None:
    frame = compute_features(store, AS_OF)
    assert list(frame.columns) == list(FEATURE_NAMES)
    assert list(frame.index) == sorted([A, B, C])
    a = frame.loc[A]
    assert a["med_has_insurance"] == 1.0
    assert a["med_headcount_latest"] == 10.0  # June; July is after the as-of date
    assert a["med_headcount_trend_24m"] == pytest.approx(
        # 2024-06 (400) and 2025-01…06 (320 … 10) on the month axis
        pd.Series([math.log(v) for v in (400, 320, 160, 80, 40, 20, 10)]).pipe(
            lambda y: _slope([0, 7, 8, 9, 10, 11, 12], list(y))))
    assert a["med_months_since_normal_payment"] == 3.0
    assert a["med_deferred_amount_12m"] == 500.0  # 2024-06 is 12 months back: outside
    assert a["med_deferred_months_12m"] == 2.0
    assert a["med_arrears_amount_24m"] == 150.0  # 2023-06 is outside M-23…M
    assert a["med_arrears_months_24m"] == 2.0
    assert a["med_headcount_change_rate_q"] == -5.5
    assert a["elec_has_account"] == 1.0
    assert a["elec_in_arrears_now"] == 1.0
    assert a["elec_arrears_months_12m"] == 2.0
    assert a["elec_arrears_amount_latest"] == 40.0
    assert a["elec_spend_trend_3_12"] == pytest.approx(330 / 300 - 1)
    assert a["elec_spend_trend_6_12"] == pytest.approx(330 / 300 - 1)
    assert a["elec_log_spend_12m"] == pytest.approx(math.log(301))
    assert a["elec_capacity_utilisation"] == pytest.approx(0.5)
    assert a["elec_violations_2y"] == 3.0
    assert a["water_has_account"] == 1.0 and a["water_in_arrears_now"] == 0.0
    assert a["water_arrears_months_12m"] == 1.0
    assert a["water_spend_trend_3_12"] == pytest.approx(130 / 107.5 - 1)
    assert a["water_usage_trend_3_6"] == pytest.approx(0.2)
    assert a["utility_arrears_now"] == 1.0 and a["designated_institution"] == 1.0
    b = frame.loc[B]
    assert b["gas_in_arrears_now"] == 1.0 and b["utility_arrears_now"] == 1.0
    assert b["gas_spend_trend_3_12"] == 0.0
    assert b[["med_has_insurance", "elec_has_account", "med_headcount_latest"]].tolist() == [0] * 3
    c = frame.loc[C]
    assert c["agri_insured_now"] == 1.0 and c["agri_subsidy_amount_12m"] == 500.0
    assert frame.notna().all().all()


def _slope(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    return sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum(
        (a - mx) ** 2 for a in x)


def test_nothing_after_the_as_of_date_is_used(store: Store) -> None:
    may = compute_features(store, dt.date(2025, 5, 31)).loc[A]
    assert may["elec_in_arrears_now"] == 1.0 and may["elec_arrears_amount_latest"] == 10.0
    assert may["elec_capacity_utilisation"] == pytest.approx(0.2)  # only E1 existed
    assert may["med_headcount_latest"] == 20.0
    assert may["med_arrears_amount_24m"] == 1099.0  # the window M-23…M now starts 2023-06
    mid_june = compute_features(store, dt.date(2025, 6, 15)).loc[A]
    assert mid_june.equals(may)  # June is not complete on 15 June
    early = compute_features(store, dt.date(2023, 12, 31))
    assert list(early.index) == [A]  # only the 2023-06 arrears existed then
    assert early.loc[A, "med_arrears_amount_24m"] == 999.0
    assert early.loc[A, "elec_has_account"] == 0.0


def test_snapshots_are_versioned_stable_and_exportable(store: Store, tmp_path: Path) -> None:
    first = take_snapshot(store, AS_OF, actor="analyst", note="first")
    second = take_snapshot(store, AS_OF)
    assert second.id == first.id + 1
    assert first.content_sha256 == second.content_sha256
    assert first.definitions_version == DEFINITIONS_VERSION
    info, frame = load_snapshot(store, first.id)
    assert (info.n_entities, info.note, info.created_by) == (3, "first", "analyst")
    assert frame.loc[A, "elec_arrears_amount_latest"] == 40.0
    out = export_snapshot(store, first.id, tmp_path / "platform.csv",
                          features=["elec_in_arrears_now", "med_headcount_latest"])
    exported = pd.read_csv(out, dtype={"uscc": str})
    assert list(exported.columns) == ["uscc", "elec_in_arrears_now", "med_headcount_latest"]
    assert exported.set_index("uscc").loc[A].tolist() == [1.0, 10.0]
    sidecar = json.loads((tmp_path / "platform.csv.snapshot.json").read_text())
    assert sidecar["id"] == first.id and sidecar["as_of"] == "2025-06-30"
    assert sidecar["content_sha256"] == first.content_sha256


def test_a_future_or_empty_snapshot_is_refused(store: Store, tmp_path: Path) -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(SnapshotError, match="lies in the future"):
        take_snapshot(store, tomorrow)
    (tmp_path / "empty").mkdir()
    with temporary_store("sqlite", tmp_path / "empty") as empty, \
            pytest.raises(SnapshotError, match="the snapshot would be empty"):
        take_snapshot(empty, dt.date(2025, 6, 30))
    assert take_snapshot(store, dt.date.today()).n_entities > 0


def test_every_feature_has_a_written_definition() -> None:
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == len(DEFINITIONS)
    for definition in DEFINITIONS:
        assert len(definition.definition) > 20 and definition.sources
        for source in definition.sources:
            get_item(source)
    assert DEFINITIONS_VERSION.startswith("2025.1-") and len(DEFINITIONS_VERSION) == 15


def test_cli_features_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lab.cli import cli

    with temporary_store("sqlite", tmp_path) as opened:
        _populate(opened, tmp_path)
    monkeypatch.setenv("CREDITLAB_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    runner = CliRunner()
    taken = runner.invoke(cli, ["features", "snapshot", "--as-of", "2025-06-30", "--note", "n"])
    assert taken.exit_code == 0, taken.output
    assert "snapshot 1: 3 enterprises × 32 features as of 2025-06-30" in taken.output
    listed = runner.invoke(cli, ["features", "list"])
    assert "as of 2025-06-30" in listed.output and DEFINITIONS_VERSION in listed.output
    out = tmp_path / "platform.csv"
    exported = runner.invoke(cli, ["features", "export", "1", str(out)])
    assert exported.exit_code == 0 and out.is_file()
    assert pd.read_csv(out, dtype={"uscc": str}).shape == (3, 33)
    described = runner.invoke(cli, ["features", "definitions"])
    assert "elec_capacity_utilisation" in described.output and "Σ 运行容量" in described.output
    missing = runner.invoke(cli, ["features", "export", "9", str(out)])
    assert missing.exit_code == 2 and "no feature snapshot 9" in missing.output
    bad_date = runner.invoke(cli, ["features", "snapshot", "--as-of", "30/06/2025"])
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output


# --------------------------------------------------------------------------- snapshot as source


def _experiment_naming(tmp_path: Path, platform_lines: str) -> Path:
    bank = tmp_path / "bank.csv"
    pd.DataFrame({"uscc": [A, B, C], "y": [1, 0, 1], "x0": [0.1, 0.2, 0.3]}).to_csv(
        bank, index=False)
    toml = tmp_path / "exp.toml"
    toml.write_text(f"""
[experiment]
name = "snap"
[bank]
data = "bank.csv"
id_column = "uscc"
label_column = "y"
features = ["x0"]
[platform]
id_column = "uscc"
features = ["elec_in_arrears_now", "med_headcount_latest"]
{platform_lines}
[crypto]
key_bits = 1024
test_only_keys = true
""")
    return toml


def test_an_experiment_names_a_snapshot_as_the_platform_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab.datasets import load_party_table
    from lab.errors import ExperimentError
    from lab.experiment import load_experiment
    from lab.tracking import experiment_params

    url = f"sqlite:///{tmp_path / 'platform.db'}"
    with temporary_store("sqlite", tmp_path) as seeded:
        _populate(seeded, tmp_path)
        seeded_url = seeded.engine.url.render_as_string(hide_password=False)
        snapshot = take_snapshot(seeded, AS_OF)
    monkeypatch.setenv("CREDITLAB_DB_URL", seeded_url)
    toml = _experiment_naming(tmp_path, f"snapshot = {snapshot.id}")

    experiment = load_experiment(toml)
    csv = tmp_path / "snapshots" / f"platform-snapshot-{snapshot.id}.csv"
    assert experiment.platform.data == csv and experiment.platform.snapshot == snapshot.id
    sidecar = json.loads(csv.with_name(csv.name + ".snapshot.json").read_text())
    assert sidecar["content_sha256"] == snapshot.content_sha256
    table = load_party_table(csv, id_column="uscc",
                             features=list(experiment.platform.features))
    assert table.n_rows == 3
    assert experiment_params(experiment)["platform.snapshot"] == str(snapshot.id)

    # An edited export is never trained on: the next load exports the snapshot again.
    original = csv.read_bytes()
    csv.write_text(csv.read_text().replace("10", "99"))
    load_experiment(toml)
    assert csv.read_bytes() == original

    # A snapshot the store does not hold, a store that does not exist, two sources, none.
    cases = {
        "snapshot = 99": ("platform.snapshot", "snapshot 99 is not in the store"),
        f'snapshot = {snapshot.id}\nstore = "sqlite:///{tmp_path / "nope.db"}"':
            ("platform.snapshot", "does not exist"),
        f'snapshot = {snapshot.id}\ndata = "bank.csv"': ("platform.data", "both data and"),
        "": ("platform.data", "neither data nor snapshot"),
        f'data = "bank.csv"\nstore = "{url}"': ("platform.store", "no snapshot is named"),
    }
    for lines, (key, problem) in cases.items():
        with pytest.raises(ExperimentError, match=problem) as info:
            load_experiment(_experiment_naming(tmp_path, lines))
        assert info.value.key == key
