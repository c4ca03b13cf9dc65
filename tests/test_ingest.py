"""Provider ingestion (lab.ingest): validation rules, quarantine, refusal, idempotency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from crypto.identifiers import USCC_ALPHABET, uscc_check_char
from lab.catalog import ID_TYPE_RESIDENT, ID_TYPE_USCC, PROVIDERS, Item, get_item
from lab.errors import CreditLabError
from lab.generate import CityManifest, _org_code, generate_city
from lab.ingest import BatchRefused, FieldCheck, Reason, ingest_file, validate_frame
from lab.store import Store
from lab.store.models import Batch, BatchWarning, QuarantinedRow, record_model
from lab.store.testing import BACKENDS, temporary_store

REAL_USCCS = ["914403001922038216", "9144030071526726XG", "91110000802100433B"]
REAL_RESIDENT_ID = "11010519491231002X"
RECEIVED = dt.date(2025, 7, 15)


def _frame(item: Item, rows: list[dict[str, str]]) -> pd.DataFrame:
    """A table of text cells in the item's columns (missing cells empty)."""
    return pd.DataFrame({f.name: pd.Series([r.get(f.name, "") for r in rows], dtype="str")
                         for f in item.fields})


def _write(item: Item, rows: list[dict[str, str]], path: Path, encoding: str = "utf-8") -> Path:
    frame = _frame(item, rows)
    frame.columns = list(item.headers)
    if path.suffix == ".xlsx":
        frame.to_excel(path, index=False)
    else:
        frame.to_csv(path, index=False, encoding=encoding)
    return path


def _arrears(uscc: str, period: str = "2025-05", amount: str = "100.5") -> dict[str, str]:
    return {"enterprise_name": "天津某公司", "uscc": uscc, "arrears_amount": amount,
            "arrears_period": period}


def _reason(check: FieldCheck) -> str | None:
    """The reason code of the first row's problem, None if the cell is fine."""
    index = int(check.problem[0])
    return check.problems[index].code.value if index >= 0 else None


def _problems(item: Item, rows: list[dict[str, str]]) -> list[set[tuple[str, str]]]:
    """Per row, the (field, reason code) pairs validation finds."""
    checked = validate_frame(item, _frame(item, rows), received=RECEIVED)
    out: list[set[tuple[str, str]]] = [set() for _ in rows]
    for name, check in checked.checks.items():
        for i, index in enumerate(check.problem.tolist()):
            if index >= 0:
                out[i].add((name, check.problems[index].code.value))
    for i, first in enumerate(checked.duplicate_of.tolist()):
        if first >= 0:
            out[i].add((item.key[0], Reason.DUPLICATE_KEY.value))
    return out


# --------------------------------------------------------------------------- acceptance: ids


def test_real_published_usccs_pass_and_every_single_character_change_fails() -> None:
    item = get_item("medical_arrears")
    rows, variants = [], []
    for code in REAL_USCCS:
        rows.append(_arrears(code))
        for position in range(18):
            for replacement in (USCC_ALPHABET[(USCC_ALPHABET.index(code[position]) + 1) % 31],
                                "I"):  # another valid character, and one outside the alphabet
                changed = code[:position] + replacement + code[position + 1:]
                variants.append(changed)
                period = f"20{10 + len(variants) % 15}-0{1 + len(variants) % 9}"
                rows.append(_arrears(changed, period=period))
    found = _problems(item, rows)
    valid_rows = [i for i, r in enumerate(rows) if r["uscc"] in REAL_USCCS]
    assert [found[i] for i in valid_rows] == [set(), set(), set()]
    for i, row in enumerate(rows):
        if i in valid_rows:
            continue
        reasons = {reason for field, reason in found[i] if field == "uscc"}
        assert reasons in ({"uscc_check_character"}, {"uscc_character"}), row["uscc"]
    assert len(variants) == 3 * 18 * 2


def test_resident_id_passes_and_single_character_changes_fail() -> None:
    item = get_item("agri_subsidies")
    base = {"operator_name": "张三", "id_type": ID_TYPE_RESIDENT, "subsidy_type": "其他",
            "subsidy_amount": "500", "stat_time": "2025-03-01"}
    rows = [{**base, "id_number": REAL_RESIDENT_ID}]
    for position in range(18):
        digit = "0123456789"[(int(REAL_RESIDENT_ID[position]) + 3) % 10] if position < 17 else "3"
        changed = REAL_RESIDENT_ID[:position] + digit + REAL_RESIDENT_ID[position + 1:]
        rows.append({**base, "id_number": changed, "stat_time": f"2025-0{1 + position % 6}-01"})
    found = _problems(item, rows)
    assert found[0] == set()
    for position, problems in enumerate(found[1:]):
        assert {f for f, _ in problems} == {"id_number"}, position
        assert problems <= {("id_number", "resident_id_check_character"),
                             ("id_number", "resident_id_birth_date")}


def test_id_number_is_checked_as_the_row_says() -> None:
    item = get_item("large_growers")
    found = _problems(item, [
        {"grower_name": "某合作社", "id_type": ID_TYPE_USCC, "id_number": REAL_USCCS[0]},
        {"grower_name": "李四", "id_type": ID_TYPE_RESIDENT, "id_number": REAL_RESIDENT_ID},
        {"grower_name": "王五", "id_type": ID_TYPE_RESIDENT, "id_number": REAL_USCCS[1]},
        {"grower_name": "赵六", "id_type": "护照", "id_number": "E12345678"},
    ])
    assert found[0] == set() and found[1] == set()
    assert found[2] == {("id_number", "resident_id_character")}
    assert found[3] == {("id_type", "not_in_choices")}


def test_usccs_are_normalised_like_alignment_does() -> None:
    item = get_item("medical_arrears")
    spellings = ["９１４４０３００１９２２０３８２１６", "9144\u200b03001922038216",
                 " 9144030071526726xg ", "\u300091110000802100433B"]
    rows = [_arrears(s, period=f"2025-0{i + 1}") for i, s in enumerate(spellings)]
    checked = validate_frame(item, _frame(item, rows), received=RECEIVED)
    assert checked.row_ok.all()
    assert checked.checks["uscc"].values.tolist() == [
        "914403001922038216", "914403001922038216", "9144030071526726XG", "91110000802100433B"]
    assert checked.checks["uscc"].normalised.tolist() == [True, True, True, True]


def test_a_failing_embedded_organisation_code_is_a_warning_not_a_rejection() -> None:
    body = _org_code("12345678", valid=False)
    first17 = "91120116" + body
    code = first17 + uscc_check_char(first17)
    item = get_item("medical_arrears")
    checked = validate_frame(item, _frame(item, [_arrears(code), _arrears(REAL_USCCS[0])]),
                             received=RECEIVED)
    assert checked.row_ok.tolist() == [True, True]
    [(mask, problem)] = checked.checks["uscc"].warnings
    assert mask.tolist() == [True, False]
    assert problem.code is Reason.ORGANISATION_CODE


# --------------------------------------------------------------------------- other kinds


@pytest.mark.parametrize(("field", "cell", "reason", "stored"), [
    ("stat_date", "2025-02-30", "impossible_date", None),
    ("stat_date", "2025-13-01", "impossible_date", None),
    ("stat_date", "2025/6/30", None, "2025-06-30"),
    ("stat_date", "20250630", None, "2025-06-30"),
    ("stat_date", "2025-06-30 00:00:00", None, "2025-06-30"),
    ("stat_date", "30/06/2025", "not_a_date", None),
    ("stat_date", "２０２５-06-30", "not_a_date", None),
    ("stat_date", "2025-07-16", "date_after_receipt", None),
    ("first_supply_date", "1899-12-31", "impossible_date", None),
    ("arrears_amount", "-5", "negative_value", None),
    ("arrears_amount", "1,234.5", "not_a_number", None),
    ("arrears_amount", "１２", "not_a_number", None),
    ("arrears_amount", "1e3", "not_a_number", None),
    ("arrears_amount", "1234.50", None, 1234.5),
    ("violations_2y", "1.5", "not_a_whole_number", None),
    ("violations_2y", "3", None, 3),
    ("operating_capacity_kva", "-0.1", "negative_value", None),
    ("in_arrears_now", "是", None, True),
    ("in_arrears_now", "否", None, False),
    ("in_arrears_now", "Y", "not_in_choices", None),
    ("account_status", "正常", None, "正常"),
    ("account_status", "冻结", "not_in_choices", None),
    ("grid_account_no", "１２００００１", "full_width_characters", None),
    ("grid_account_no", "1200\t01", "not_printable", None),
    ("grid_account_no", "9" * 33, "too_long", None),
    ("province", "天津市天津市天津市天津市天津市天津市天津市", "too_long", None),
    ("enterprise_name", "ＡＢＣ（天津）有限公司", None, "ABC(天津)有限公司"),
    ("enterprise_name", "", "missing_required", None),
    ("enterprise_name", "NULL", "missing_required", None),
])
def test_field_rules(field: str, cell: str, reason: str | None, stored: object) -> None:
    item = get_item("electricity")
    row = {"enterprise_name": "天津某公司", "uscc": REAL_USCCS[0], "grid_account_no": "1200001",
           "stat_date": "2025-06-30", field: cell}
    checked = validate_frame(item, _frame(item, [row]), received=RECEIVED)
    check = checked.checks[field]
    if reason is None:
        assert check.problem.tolist() == [-1]
        assert check.values[0] == stored
    else:
        assert check.problems[check.problem[0]].code.value == reason
        assert "Remedy:" in check.problems[check.problem[0]].message


@pytest.mark.parametrize(("cell", "reason", "stored"), [
    ("2025-05", None, "2025-05"), ("202505", None, "2025-05"),
    ("2025-13", "impossible_period", None), ("2025-5", "not_a_period", None),
    ("2026-01", "date_after_receipt", None)])
def test_periods(cell: str, reason: str | None, stored: str | None) -> None:
    item = get_item("medical_arrears")
    check = validate_frame(item, _frame(item, [_arrears(REAL_USCCS[0], period=cell)]),
                           received=RECEIVED).checks["arrears_period"]
    assert _reason(check) == reason
    assert check.values[0] == stored


@pytest.mark.parametrize(("cell", "reason", "stored"), [
    ("-12.5%", None, -12.5), ("3.25", None, 3.25), ("-150", "out_of_range", None)])
def test_rates_are_percent(cell: str, reason: str | None, stored: float | None) -> None:
    item = get_item("medical_changes")
    row = {"enterprise_name": "某公司", "uscc": REAL_USCCS[0], "headcount_change_rate_q": cell,
           "contribution_change_rate_q": "0", "stat_time": "2025-06-30"}
    check = validate_frame(item, _frame(item, [row]), received=RECEIVED).checks[
        "headcount_change_rate_q"]
    assert _reason(check) == reason
    assert check.values[0] == stored


def test_policy_end_before_start_is_rejected_and_duplicates_keep_the_first() -> None:
    item = get_item("agri_insurance")
    base = {"operator_name": "某合作社", "id_type": ID_TYPE_USCC, "id_number": REAL_USCCS[2],
            "is_insured": "是", "insurance_type": "种植业保险", "policy_valid_from": "2025-01-01",
            "policy_valid_to": "2025-12-31"}
    found = _problems(item, [base, {**base, "policy_valid_to": "2024-12-31",
                                    "insurance_type": "农机保险"}, base])
    assert found == [set(), {("policy_valid_to", "date_order")},
                     {("id_number", "duplicate_key")}]


# --------------------------------------------------------------------------- whole files


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with temporary_store(request.param, tmp_path) as opened:
        yield opened


def _electricity_rows(n: int = 4) -> list[dict[str, str]]:
    return [{"data_code": f"D{i}", "enterprise_name": "天津和平某某商贸有限公司",
             "uscc": REAL_USCCS[i % 3], "grid_account_no": f"12000000000{i}",
             "address": "天津市和平区南京路100号", "stat_date": "2025-06-30",
             "arrears_amount": f"{10 * i}.5", "in_arrears_now": "是" if i % 2 else "否",
             "usage_type": "一般工商业用电"} for i in range(n)]


def test_encodings_and_xlsx_store_the_same_records(store: Store, tmp_path: Path) -> None:
    item = get_item("electricity")
    rows = _electricity_rows()
    received = dt.datetime(2025, 7, 15, tzinfo=dt.UTC)
    files = [_write(item, rows, tmp_path / "a.csv", "utf-8"),
             _write(item, rows, tmp_path / "b.csv", "utf-8-sig"),
             _write(item, rows, tmp_path / "c.csv", "gbk"),
             _write(item, rows, tmp_path / "d.xlsx")]
    model = record_model(item)
    hashes = []
    for path, encoding in zip(files, ["utf-8", "utf-8-sig", "gb18030", None], strict=True):
        report = ingest_file(store, item, path, received_at=received)
        assert report.encoding == encoding
        assert (report.rows_total, report.rows_quarantined) == (4, 0)
        with store.session() as session:
            hashes.append(sorted(session.scalars(select(model.content_hash).where(
                model.batch_id == report.batch_id, model.state == "current")).all()))
    # the first file stored 4 records; the same content in other encodings is unchanged
    assert hashes[0] and all(h in ([], hashes[0]) for h in hashes[1:])
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(model)) == 4
        assert session.scalars(select(Batch.rows_unchanged).order_by(Batch.id)).all() == [
            0, 4, 4, 4]


def test_each_record_keeps_provider_batch_and_data_date(store: Store, tmp_path: Path) -> None:
    item = get_item("designated_institutions")
    path = _write(item, [{"enterprise_name": "某医院", "uscc": REAL_USCCS[0],
                          "practice_license_no": "PDY0000001"}], tmp_path / "d.csv")
    report = ingest_file(store, item, path, data_date=dt.date(2025, 6, 30))
    with store.session() as session:
        row = session.scalars(select(record_model(item))).one()
        assert (row.provider, row.batch_id, row.data_date) == (
            "medical_security_bureau", report.batch_id, dt.date(2025, 6, 30))
        assert row.source_row == 2 and row.version == 1 and row.state == "current"


def test_reingesting_the_same_file_changes_nothing(store: Store, tmp_path: Path) -> None:
    item = get_item("electricity")
    path = _write(item, _electricity_rows(), tmp_path / "e.csv")
    first = ingest_file(store, item, path)
    second = ingest_file(store, item, path)
    assert second.already_ingested and second.batch_id == first.batch_id
    assert second.rows_stored == first.rows_stored == 4
    with store.session() as session:
        assert session.scalar(select(func.count()).select_from(Batch)) == 1
        assert session.scalar(select(func.count()).select_from(record_model(item))) == 4


def test_a_redelivered_changed_row_supersedes_and_the_old_version_stays(
        store: Store, tmp_path: Path) -> None:
    item = get_item("electricity")
    rows = _electricity_rows()
    ingest_file(store, item, _write(item, rows, tmp_path / "e1.csv"))
    rows[1]["arrears_amount"] = "0"
    rows[1]["in_arrears_now"] = "否"
    report = ingest_file(store, item, _write(item, rows, tmp_path / "e2.csv"))
    assert (report.rows_stored, report.rows_unchanged, report.rows_superseding) == (1, 3, 1)
    model = record_model(item)
    with store.session() as session:
        chain = session.scalars(select(model).where(
            model.grid_account_no == "120000000001").order_by(model.version)).all()
        assert [(r.version, r.state, r.arrears_amount) for r in chain] == [
            (1, "superseded", 10.5), (2, "current", 0.0)]
        assert chain[1].supersedes_id == chain[0].id


def test_items_with_several_providers_need_the_provider_named(store: Store, tmp_path: Path) -> None:
    item = get_item("medical_arrears")
    path = _write(item, [_arrears(REAL_USCCS[0])], tmp_path / "m.csv")
    with pytest.raises(CreditLabError, match="--provider"):
        ingest_file(store, item, path)
    with pytest.raises(CreditLabError, match="does not provide"):
        ingest_file(store, item, path, provider="state_grid_tianjin")
    assert ingest_file(store, item, path, provider="tax_bureau").provider == "tax_bureau"


def test_a_provider_may_be_named_as_the_catalog_writes_it(store: Store, tmp_path: Path) -> None:
    """The refusal lists providers with their Chinese names, so those names are accepted too."""
    item = get_item("medical_arrears")
    path = _write(item, [_arrears(REAL_USCCS[0])], tmp_path / "m.csv")
    chinese = PROVIDERS["tax_bureau"].name_zh
    assert ingest_file(store, item, path, provider=f" {chinese} ").provider == "tax_bureau"


def test_wrong_headers_refuse_the_whole_batch(store: Store, tmp_path: Path) -> None:
    water = get_item("water")
    path = tmp_path / "water.csv"
    _write(water, [{"enterprise_name": "某公司", "uscc": REAL_USCCS[0], "account_name": "某公司",
                    "account_no": "SW1", "billing_period": "2025-05",
                    "stat_date": "2025-05-31"}], path)
    with pytest.raises(BatchRefused, match="ingest water") as refused:
        ingest_file(store, "electricity", path)
    assert "missing columns: 电网户号" in str(refused.value)
    frame = pd.read_csv(path, dtype=str).drop(columns=["备注"])
    frame.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(BatchRefused, match="missing columns: 备注"):
        ingest_file(store, water, tmp_path / "short.csv", provider="water_group")
    with store.session() as session:
        statuses = session.scalars(select(Batch.status)).all()
        assert statuses == ["refused", "refused"]
        assert session.scalar(select(func.count()).select_from(record_model(water))) == 0


@pytest.mark.parametrize(("content", "message"), [
    ("\ufeff数据编码,企业名称\n".encode("utf-16"), "UTF-16"),
    (b"PK\x03\x04 not a workbook", "not a readable XLSX"),
    (b"", "empty"),
])
def test_unreadable_files_are_refused_with_a_remedy(
        tmp_path: Path, content: bytes, message: str) -> None:
    suffix = ".xlsx" if content.startswith(b"PK") else ".csv"
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(content)
    with temporary_store("sqlite", tmp_path) as store, pytest.raises(BatchRefused,
                                                                      match=message) as refused:
        ingest_file(store, "electricity", path)
    assert "Remedy:" in str(refused.value)


def test_a_folder_or_missing_path_is_refused_saying_which(tmp_path: Path) -> None:
    with temporary_store("sqlite", tmp_path) as store:
        with pytest.raises(BatchRefused, match="is a folder, not a file"):
            ingest_file(store, "electricity", tmp_path)
        with pytest.raises(BatchRefused, match="there is no such file"):
            ingest_file(store, "electricity", tmp_path / "absent.csv")


def test_quarantine_names_file_row_field_reason_and_masks_values(
        store: Store, tmp_path: Path) -> None:
    item = get_item("electricity")
    rows = _electricity_rows(3)
    rows[1]["uscc"] = REAL_USCCS[1][:17] + "0"
    rows[2]["grid_account_no"] = "１２３４５６７８９"
    report = ingest_file(store, item, _write(item, rows, tmp_path / "e.csv"))
    assert (report.rows_stored, report.rows_quarantined) == (1, 2)
    with store.session() as session:
        found = session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.row)).all()
    assert [(q.file_name, q.row, q.field, q.header, q.reason_code) for q in found] == [
        ("e.csv", 3, "uscc", "统一社会信用代码", "uscc_check_character"),
        ("e.csv", 4, "grid_account_no", "电网户号", "full_width_characters")]
    assert found[0].value_masked == "91**************X0"
    assert REAL_USCCS[1][:17] not in found[0].reason
    assert "Remedy:" in found[1].reason


def _damaged_electricity(tmp_path: Path, rows: int, encoding: str,
                         damage: Callable[[list[str]], None]) -> Path:
    """A valid electricity file whose text lines ``damage`` then edits in place."""
    path = _write(get_item("electricity"), _electricity_rows(rows), tmp_path / "e.csv",
                  encoding=encoding)
    lines = path.read_text(encoding=encoding).splitlines()
    damage(lines)
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_a_short_row_is_quarantined_naming_the_first_absent_field(
        store: Store, tmp_path: Path, encoding: str) -> None:
    """A row with fewer fields than the header was padded and stored; now it is quarantined."""
    item = get_item("electricity")

    def damage(lines: list[str]) -> None:
        lines[2] = ",".join(lines[2].split(",")[:-2])  # the file's line 3 lacks 2 fields
        lines.insert(3, "")                            # and a blank line is a row too

    path = _damaged_electricity(tmp_path, 3, encoding, damage)
    report = ingest_file(store, item, path)
    assert (report.rows_total, report.rows_stored, report.rows_quarantined) == (4, 2, 2)
    with store.session() as session:
        found = session.execute(select(QuarantinedRow.row, QuarantinedRow.header,
                                       QuarantinedRow.reason_code, QuarantinedRow.reason)
                                .order_by(QuarantinedRow.row, QuarantinedRow.field)).all()
    width = len(item.headers)
    short = [f for f in found if f.row == 3]
    assert [(f.header, f.reason_code) for f in short] == [(item.headers[-2], "short_row")]
    assert f"{width - 2} of the header's {width} fields" in short[0].reason
    assert {f.reason_code for f in found if f.row == 4} == {"missing_required"}


def test_a_row_longer_than_the_header_refuses_the_batch_naming_the_line(
        store: Store, tmp_path: Path) -> None:
    item = get_item("electricity")

    def damage(lines: list[str]) -> None:
        lines[3] += ",多余"

    path = _damaged_electricity(tmp_path, 3, "gbk", damage)
    width = len(item.headers)
    with pytest.raises(BatchRefused, match=f"line 4 has {width + 1} fields but the header "
                                           f"{width}.*Remedy: check that the header"):
        ingest_file(store, item, path)


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_an_unclosed_quote_refuses_the_batch_naming_its_line(
        store: Store, tmp_path: Path, encoding: str) -> None:
    """Read leniently, the quote swallowed every later row into one quarantined cell."""
    item = get_item("electricity")

    def damage(lines: list[str]) -> None:
        lines[2] = '"' + lines[2]

    path = _damaged_electricity(tmp_path, 5, encoding, damage)
    with pytest.raises(BatchRefused, match="the record that begins on line 3 is not "
                                           "well-formed CSV.*Remedy: check its quotes"):
        ingest_file(store, item, path)


# --------------------------------------------------------------------------- the generator's city


@pytest.fixture(scope="module")
def small_city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CityManifest]:
    folder = tmp_path_factory.mktemp("city")
    return folder, generate_city(folder, enterprises=700, seed=11, dirty_rate=0.03, banks=1)


def test_generated_city_quarantine_is_exactly_the_manifest(
        store: Store, small_city: tuple[Path, CityManifest]) -> None:
    folder, manifest = small_city
    for code, entry in manifest.files.items():
        report = ingest_file(store, code, folder / entry.file, provider=entry.provider,
                             data_date=dt.date(2025, 6, 30))
        with store.session() as session:
            found = session.execute(select(QuarantinedRow.row, QuarantinedRow.field,
                                           QuarantinedRow.reason_code).where(
                QuarantinedRow.batch_id == report.batch_id)).all()
            warned = session.scalar(select(func.coalesce(func.sum(BatchWarning.rows), 0)).where(
                BatchWarning.batch_id == report.batch_id))
        expected = {(d["row"], d["field"], d["reason"]) for d in entry.dirty}
        assert set(found) == expected, code
        assert len(found) == len(expected) == report.rows_quarantined, code
        assert report.rows_stored == entry.rows - len(entry.dirty), code
        assert report.rows_normalised == len(entry.normalised), code
        assert warned == entry.warning_rows == report.rows_warned, code
    all_reasons = {d["reason"] for e in manifest.files.values() for d in e.dirty}
    assert {"uscc_check_character", "duplicate_key", "impossible_date", "negative_value",
            "full_width_characters", "missing_required"} <= all_reasons


def test_big_batches_look_up_their_keys_through_a_temporary_table(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.ingest

    monkeypatch.setattr(lab.ingest, "_SMALL_BATCH", 0)
    item = get_item("electricity")
    rows = _electricity_rows()
    ingest_file(store, item, _write(item, rows, tmp_path / "e1.csv"))
    rows[2]["arrears_amount"] = "7"
    rows.append({**rows[0], "grid_account_no": "120000000009"})
    again = ingest_file(store, item, _write(item, rows, tmp_path / "e2.csv"))
    assert (again.rows_unchanged, again.rows_superseding, again.rows_stored) == (3, 1, 2)
    third = ingest_file(store, item, _write(item, rows, tmp_path / "e3.csv", "gbk"))
    assert (third.rows_unchanged, third.rows_stored) == (5, 0)
