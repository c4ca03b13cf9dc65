"""The synthetic city (lab.generate): layout, identifiers, populations, determinism, signal."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crypto.identifiers import organisation_code_is_valid, resident_id_is_valid, uscc_is_valid
from lab.catalog import ID_TYPE_RESIDENT, ID_TYPE_USCC, get_item, header_key
from lab.cli import cli
from lab.generate import BANK_FEATURES, CityManifest, generate_city
from lab.ingest import Reason, read_table


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CityManifest]:
    folder = tmp_path_factory.mktemp("city")
    return folder, generate_city(folder, enterprises=1500, seed=5, dirty_rate=0.02)


def _clean(folder: Path, manifest: CityManifest, code: str) -> pd.DataFrame:
    """A generated file's rows that the manifest calls clean, by field name."""
    entry = manifest.files[code]
    table = read_table(folder / entry.file)
    item = get_item(code)
    by_key = {header_key(f.header): f.name for f in item.fields}
    frame = table.frame.copy()
    frame.columns = [by_key[header_key(h)] for h in table.headers]
    dirty = {d["row"] for d in entry.dirty} | {d["row"] for d in entry.normalised}
    return frame[~(frame.index + 2).isin(dirty)]


def test_files_have_the_catalog_layout_encoding_and_row_counts(
        city: tuple[Path, CityManifest]) -> None:
    folder, manifest = city
    assert set(manifest.files) == {
        "medical_contributions", "medical_arrears", "medical_changes", "designated_institutions",
        "agri_insurance", "agri_subsidies", "large_growers", "water", "electricity", "gas"}
    for code, entry in manifest.files.items():
        table = read_table(folder / entry.file)
        assert table.headers == list(get_item(code).headers), code
        assert len(table.frame) == entry.rows, code
        expected = {"utf-8": "utf-8", "utf-8-sig": "utf-8-sig", "gbk": "gb18030", None: None}
        assert table.encoding == expected[entry.encoding], code
    gbk = (folder / manifest.files["gas"].file).read_bytes()
    with pytest.raises(UnicodeDecodeError):
        gbk.decode("utf-8")


def test_identifiers_are_valid_tianjin_codes(city: tuple[Path, CityManifest]) -> None:
    folder, manifest = city
    power = _clean(folder, manifest, "electricity")
    usccs = power["uscc"].unique()
    assert all(uscc_is_valid(code) for code in usccs)
    assert all(code[2:4] == "12" for code in usccs)  # division code 12xxxx: Tianjin
    assert {code[:2] for code in usccs} <= {"91", "92", "93"}
    valid_org = sum(organisation_code_is_valid(code[8:17]) for code in usccs)
    assert valid_org >= len(usccs) - manifest.population["organisation_code_warnings"]
    growers = _clean(folder, manifest, "large_growers")
    persons = growers[growers["id_type"] == ID_TYPE_RESIDENT]["id_number"]
    assert len(persons) > 0
    assert all(resident_id_is_valid(code) and code.startswith("12") for code in persons)
    organisations = growers[growers["id_type"] == ID_TYPE_USCC]["id_number"]
    assert all(uscc_is_valid(code) and code.startswith("93") or code.startswith("91")
               for code in organisations)


def test_not_every_firm_has_every_item(city: tuple[Path, CityManifest]) -> None:
    folder, manifest = city
    firms = {code: set(_clean(folder, manifest, code)["uscc"]) for code in
             ("electricity", "water", "gas", "medical_contributions", "designated_institutions")}
    n = manifest.enterprises
    assert 0.90 * n < len(firms["electricity"]) <= n
    assert 0.70 * n < len(firms["water"]) < 0.88 * n
    assert 0.15 * n < len(firms["gas"]) < 0.50 * n
    assert 0.70 * n < len(firms["medical_contributions"]) < 0.95 * n
    assert 0 < len(firms["designated_institutions"]) < 0.05 * n
    contributions = _clean(folder, manifest, "medical_contributions")
    assert contributions.groupby("uscc")["period"].nunique().max() == 24
    assert sorted(contributions["period"].unique())[-1] == "2025-06"


def test_dirty_rows_are_recorded_with_reasons_at_the_stated_rate(
        city: tuple[Path, CityManifest]) -> None:
    _, manifest = city
    total_rows = sum(e.rows for e in manifest.files.values())
    dirty = [d for e in manifest.files.values() for d in e.dirty]
    assert 0.015 < len(dirty) / total_rows < 0.025
    reasons = {Reason(d["reason"]) for d in dirty}
    assert {Reason.USCC_CHECK, Reason.DUPLICATE_KEY, Reason.IMPOSSIBLE_DATE, Reason.NEGATIVE,
            Reason.FULL_WIDTH, Reason.MISSING_REQUIRED} <= reasons
    for entry in manifest.files.values():
        rows = [d["row"] for d in entry.dirty]
        assert len(rows) == len(set(rows)) and all(2 <= r <= entry.rows + 1 for r in rows)
        assert not {d["row"] for d in entry.normalised} & set(rows)


def test_loan_books_have_real_signal(city: tuple[Path, CityManifest]) -> None:
    folder, manifest = city
    assert [b["bank"] for b in manifest.banks] == ["bank_1", "bank_2", "bank_3"]
    book = pd.read_csv(folder / manifest.banks[0]["file"], dtype={"uscc": str})
    assert list(book.columns) == ["uscc", "loan_id", *BANK_FEATURES, "default_12m"]
    assert book["uscc"].is_unique and book["loan_id"].is_unique
    rate = book["default_12m"].mean()
    assert 0.04 < rate < 0.2
    # the bank's own rating separates defaults, but only partly
    low = book[book["internal_rating"] >= 7]["default_12m"].mean()
    high = book[book["internal_rating"] <= 3]["default_12m"].mean()
    assert low > 2 * high
    # and the platform's arrears flags carry signal the bank does not have
    power = _clean(folder, manifest, "electricity")
    in_arrears = set(power[power["in_arrears_now"] == "是"]["uscc"])
    flagged = book["uscc"].isin(in_arrears)
    assert book[flagged]["default_12m"].mean() > 1.5 * book[~flagged]["default_12m"].mean()


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".xlsx"}


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    one = generate_city(tmp_path / "a", enterprises=200, seed=9, banks=1)
    two = generate_city(tmp_path / "b", enterprises=200, seed=9, banks=1)
    other = generate_city(tmp_path / "c", enterprises=200, seed=10, banks=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["electricity.csv"] != _digest(tmp_path / "c")[
        "electricity.csv"]
    for name in ("designated_institutions.xlsx", "large_growers.xlsx"):
        a = read_table(tmp_path / "a" / name).frame
        assert a.equals(read_table(tmp_path / "b" / name).frame)
    assert one.to_json() == two.to_json() != other.to_json()


def test_clean_option_and_argument_checks(tmp_path: Path) -> None:
    manifest = generate_city(tmp_path, enterprises=100, seed=1, dirty_rate=0.0,
                             items=("electricity",), csv_only=True, banks=0,
                             as_of=dt.date(2024, 12, 31))
    assert list(manifest.files) == ["electricity"]
    assert manifest.files["electricity"].dirty == [] and manifest.banks == []
    frame = pd.read_csv(tmp_path / "electricity.csv", dtype=str)
    assert frame["统计日期"].max() == "2024-12-31"
    with pytest.raises(ValueError, match="at least 1"):
        generate_city(tmp_path, enterprises=0)
    with pytest.raises(ValueError, match="dirty_rate"):
        generate_city(tmp_path, enterprises=5, dirty_rate=0.7)


def test_cli_generate(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["generate", "--enterprises", "50", "--seed", "2",
                                      "--out", str(tmp_path / "c"), "--banks", "1"])
    assert result.exit_code == 0, result.output
    assert "electricity.csv" in result.output and "banks/bank_1.csv" in result.output
    manifest = CityManifest.load(tmp_path / "c" / "manifest.json")
    assert manifest.enterprises == 50 and manifest.seed == 2
    assert np.isclose(manifest.dirty_rate, 0.01)
