"""The 10-item catalog as code (lab.catalog): content, lookups, masking, derived schema, CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Boolean, Date, Numeric
from typer.testing import CliRunner

from lab.catalog import (
    CATALOG,
    ID_TYPE_RESIDENT,
    ID_TYPE_USCC,
    PROVIDERS,
    Delivery,
    Kind,
    Sensitivity,
    catalog_as_json,
    catalog_as_markdown,
    get_item,
    header_key,
    mask_value,
)
from lab.cli import cli
from lab.store.models import record_model


def test_ten_items_in_catalog_order_with_their_official_names() -> None:
    assert [item.number for item in CATALOG] == list(range(1, 11))
    assert [item.name_zh for item in CATALOG] == [
        "职工医疗保险费基本信息", "职工医疗保险费欠缴信息", "职工医疗保险费变动信息",
        "医保定点民营医疗机构信息", "保险信息", "补贴信息", "种植大户清单信息", "水费信息",
        "电费信息", "燃气费信息"]


def test_providers_and_delivery_follow_the_annex() -> None:
    assert get_item(2).providers == ("medical_security_bureau", "tax_bureau")
    assert get_item(2).delivery is Delivery.TABLE_OR_AUTHORISED_API
    assert get_item(8).providers == ("water_authority", "water_group")
    assert PROVIDERS[get_item(9).providers[0]].name_zh == "国网天津市电力公司"
    assert PROVIDERS[get_item(10).providers[0]].name_zh == "市城市管理委"
    assert all(item.delivery is Delivery.TABLE for item in CATALOG if item.number != 2)


def test_every_item_has_data_code_first_and_remarks_last() -> None:
    for item in CATALOG:
        assert item.fields[0].header == "数据编码" and item.fields[0].name == "data_code"
        assert item.fields[-1].header == "备注" and item.fields[-1].name == "remarks"


def test_personal_fields_are_exactly_the_catalogs_p_fields() -> None:
    personal = {item.code: sorted(f.name for f in item.fields if f.is_personal)
                for item in CATALOG}
    assert personal["agri_insurance"] == ["id_number", "operator_name"]
    assert personal["agri_subsidies"] == ["id_number", "operator_name"]
    assert personal["large_growers"] == ["address", "grower_name", "id_number"]
    assert personal["water"] == ["account_name", "account_no", "address"]
    assert personal["gas"] == ["account_name", "account_no", "address"]
    assert personal["electricity"] == ["address", "grid_account_no"]
    for code in ("medical_contributions", "medical_arrears", "medical_changes",
                 "designated_institutions"):
        assert personal[code] == []
    assert get_item(5).field("operator_name").sensitivity is Sensitivity.PERSONAL_IF_PERSON
    assert get_item(7).field("grower_name").sensitivity is Sensitivity.PERSONAL


def test_headers_cover_the_catalog_field_labels() -> None:
    electricity = get_item("electricity").headers
    for label in ("统一社会信用代码", "电网户号", "运行容量", "合同容量", "近两年违约次数",
                  "地区地方名（省级）", "近一年月均用电金额", "统计基准日期"):
        assert label in electricity
    assert get_item(1).field("period").kind is Kind.PERIOD
    assert get_item(1).key == ("uscc", "period")
    assert get_item(9).key == ("grid_account_no", "stat_date")


@pytest.mark.parametrize("ref", ["electricity", "9", 9, "电费信息", " 电费信息 "])
def test_get_item_accepts_code_number_and_chinese_name(ref: object) -> None:
    assert get_item(ref).code == "electricity"  # type: ignore[arg-type]


def test_get_item_names_the_valid_codes_when_unknown() -> None:
    with pytest.raises(KeyError, match="9 electricity"):
        get_item("power")


def test_header_key_ignores_bracket_width_spaces_and_bom() -> None:
    assert header_key("\ufeff地区地方名(省级) ") == header_key("地区地方名（省级）")


def test_masking_rules() -> None:
    insurance, growers, water = get_item(5), get_item(7), get_item(8)
    assert mask_value(insurance, "id_number", "11010519491231002X") == "11**************2X"
    assert mask_value(insurance, "operator_name", "张三丰", id_type=ID_TYPE_RESIDENT) == "张**"
    assert mask_value(insurance, "operator_name", "天津某某合作社", id_type=ID_TYPE_USCC) == (
        "天津某某合作社")
    assert mask_value(insurance, "operator_name", "张三丰") == "张**"  # unknown: protect
    assert mask_value(growers, "address", "天津市和平区南京路100号") == "天津市和平区****"
    assert mask_value(water, "account_no", "SW0000001234") == "SW********34"
    assert mask_value(water, "arrears_amount", 12.5) == 12.5
    assert mask_value(growers, "address", "天津市和平区南京路100号", authorised=True) == (
        "天津市和平区南京路100号")


def test_storage_schema_is_derived_from_the_catalog() -> None:
    table = record_model("electricity").__table__
    for spec in get_item("electricity").fields:
        column = table.c[spec.name]
        assert column.comment == spec.header
        assert column.nullable is (not spec.required)
    assert isinstance(table.c.stat_date.type, Date)
    assert isinstance(table.c.in_arrears_now.type, Boolean)
    assert isinstance(table.c.arrears_amount.type, Numeric)
    assert table.c.grid_account_no.type.length == 32
    for meta in ("batch_id", "provider", "data_date", "state", "disputed", "supersedes_id"):
        assert meta in table.c


def test_documentation_is_generated_from_the_definition() -> None:
    markdown = catalog_as_markdown()
    for item in CATALOG:
        assert f"## {item.number}. {item.name_zh}" in markdown
        for spec in item.fields:
            assert f"| {spec.header} | `{spec.name}` |" in markdown
    data = json.loads(catalog_as_json())
    assert [entry["code"] for entry in data] == [item.code for item in CATALOG]
    assert data[8]["fields"][3] == {
        "header": "电网户号", "name": "grid_account_no", "kind": "code", "required": True,
        "unit": "", "sensitivity": "P", "choices": [], "description": "grid account number"}


def test_cli_catalog_prints_items_and_fails_clearly_on_unknown() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["catalog", "electricity"])
    assert result.exit_code == 0
    assert "电费信息 electricity" in result.output and "电网户号" in result.output
    assert "required P" in result.output
    as_json = runner.invoke(cli, ["catalog", "--format", "json"])
    assert len(json.loads(as_json.output)) == 10
    bad = runner.invoke(cli, ["catalog", "power"])
    assert bad.exit_code == 2
