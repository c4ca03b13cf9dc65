"""The platform's 10-item credit information catalog, as one declarative definition.

Why a module and not a document
-------------------------------
Annex 2 of the plan (``shared/CATALOG.md``) is the collection standard every
provider delivers against. Everything that depends on it — the headers a
file must carry, how each cell is validated (:mod:`lab.ingest`), the columns
of the storage tables (:mod:`lab.store.models`), which values are masked in
any response (:func:`mask_value`) and the documentation (``creditlab
catalog``) — is *derived* from :data:`CATALOG` here, so the standard cannot
drift between them. Change a field here, write an Alembic migration, and
every consumer follows.

Vocabulary
----------
* An :class:`Item` is one collection item (归集事项), e.g. 电费信息, delivered
  by one or more :class:`Provider` (责任单位) as a table (库表) or, with the
  information subject's authorization, through an API.
* A :class:`CatalogField` is one column: its official Chinese label (the
  header providers use), the identifier code uses, a :class:`Kind` that
  fixes how it is validated and stored, a unit, whether it is required and
  its :class:`Sensitivity` (the **P** fields of the catalog).
* ``key`` names the fields that identify one record within an item (its
  natural grain, e.g. one row per electricity account and statistics date);
  ``entity`` names the field that says whom the record is about (a USCC, or
  an id number for agricultural operators and growers).
* ``data_date`` names the field whose date is the record's data date (the
  day the facts describe); items without one take the batch's data date.

Conventions that are ours, not the plan's (it names fields, not formats):
dates ``YYYY-MM-DD`` (also ``YYYY/MM/DD`` and ``YYYYMMDD``), periods ``YYYY-MM``
(also ``YYYYMM``), money in yuan (元) without thousands separators, rates in
percent (a trailing ``%`` is allowed), booleans ``是``/``否``, every item also
carrying 数据编码 (``data_code``, the record's code in the provider's system)
and 备注 (``remarks``).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum

from crypto.identifiers import mask_id

__all__ = [
    "CATALOG",
    "PROVIDERS",
    "CatalogField",
    "Delivery",
    "Item",
    "Kind",
    "Provider",
    "Sensitivity",
    "ID_TYPE_RESIDENT",
    "ID_TYPE_USCC",
    "catalog_as_json",
    "catalog_as_markdown",
    "get_item",
    "header_key",
    "mask_value",
]


class Kind(StrEnum):
    """How a field is validated and stored (see :mod:`lab.ingest` for the exact rules)."""

    TEXT = "text"  # free text (names, addresses): NFKC-normalised, length-checked
    CODE = "code"  # half-width code (account, licence, data codes): printable ASCII only
    USCC = "uscc"  # unified social credit code, GB 32100-2015 (+ GB 11714 warning)
    ID_TYPE = "id_type"  # 证件类型: says whether id_number is a USCC or a resident id
    ID_NUMBER = "id_number"  # a USCC or a resident id, per the row's id_type
    DATE = "date"  # a calendar date
    PERIOD = "period"  # a month, YYYY-MM
    AMOUNT = "amount"  # money in yuan, ≥ 0
    QUANTITY = "quantity"  # a measured quantity (kVA, tonnes, m³, mu), ≥ 0
    COUNT = "count"  # a whole number ≥ 0
    RATE = "rate"  # a change rate in percent, ≥ -100
    ENUM = "enum"  # one of a fixed list of labels
    BOOL = "bool"  # 是 / 否


class Sensitivity(StrEnum):
    """Whether a field is personal/sensitive (the catalog's **P**), plan §4(2)."""

    PUBLIC = "public"
    PERSONAL = "P"
    #: Personal only when the record is about a natural person (id_type 居民身份证).
    PERSONAL_IF_PERSON = "P if natural person"


class Delivery(StrEnum):
    """How a provider delivers an item (the catalog's 归集方式)."""

    TABLE = "库表 table"
    TABLE_OR_AUTHORISED_API = (
        "库表或接口（经信息主体授权）table, or API with the subject's authorization"
    )


def header_key(header: str) -> str:
    """The form headers are compared in: NFKC (full-width brackets), no spaces or BOM.

    Providers' exports differ in bracket width (（ vs ``(``) and stray spaces;
    neither changes which column is meant.
    """
    text = unicodedata.normalize("NFKC", header).replace("\ufeff", "")
    return "".join(text.split())


#: 证件类型 values: a USCC for an organisation, a resident id for a natural person.
ID_TYPE_USCC = "统一社会信用代码"
ID_TYPE_RESIDENT = "居民身份证"


@dataclass(frozen=True)
class Provider:
    """A data provider (责任单位)."""

    code: str
    name_zh: str
    name_en: str


PROVIDERS: dict[str, Provider] = {
    p.code: p
    for p in (
        Provider("medical_security_bureau", "市医保局", "Municipal Medical Security Bureau"),
        Provider("tax_bureau", "天津市税务局", "Tianjin Tax Bureau"),
        Provider("agriculture_commission", "市农业农村委", "Municipal Agriculture Commission"),
        Provider("water_authority", "市水务局", "Municipal Water Authority"),
        Provider("water_group", "水务集团", "Water Group"),
        Provider("state_grid_tianjin", "国网天津市电力公司", "State Grid Tianjin"),
        Provider("city_management_commission", "市城市管理委", "City Management Commission"),
    )
}


@dataclass(frozen=True)
class CatalogField:
    """One column of an item.

    Attributes
    ----------
    header : str
        The official Chinese label, used as the column header in delivered files.
    name : str
        The identifier code and the storage schema use.
    kind : Kind
        How the value is validated and stored.
    description : str
        What the value means, in English, for the documentation.
    required : bool
        A row without it is quarantined.
    unit : str
        Unit of measure ("" when none).
    sensitivity : Sensitivity
        Whether the value is masked in responses.
    choices : tuple of str
        Allowed labels of an ENUM field.
    max_length : int
        Longest accepted text (characters), for TEXT and CODE fields.
    not_after_receipt : bool
        A DATE/PERIOD that describes the past (a statistics date, a first
        supply date) must not lie after the day the batch was received.
    """

    header: str
    name: str
    kind: Kind
    description: str
    required: bool = False
    unit: str = ""
    sensitivity: Sensitivity = Sensitivity.PUBLIC
    choices: tuple[str, ...] = ()
    max_length: int = 200
    not_after_receipt: bool = False

    @property
    def is_personal(self) -> bool:
        """Whether the field can hold personal data (always or for natural persons)."""
        return self.sensitivity is not Sensitivity.PUBLIC


@dataclass(frozen=True)
class Item:
    """One collection item of the catalog.

    Attributes
    ----------
    number : int
        1-10, the catalog's order.
    code : str
        Identifier, also the storage table's suffix and the CLI's ITEM argument.
    name_zh, name_en : str
        The item's official name and a translation.
    category_zh, category_en : str
        The catalog category (信息类别).
    providers : tuple of str
        Codes of the providers responsible (:data:`PROVIDERS`).
    delivery : Delivery
        How the item is delivered.
    fields : tuple of CatalogField
        Columns in file order, 数据编码 first and 备注 last.
    key : tuple of str
        Field names that identify one record (its grain).
    entity : str
        The field naming whom the record is about (a USCC or an id number).
    data_date : str or None
        The field whose value is the record's data date; None → the batch's.
    grain : str
        The grain in words, for the documentation.
    """

    number: int
    code: str
    name_zh: str
    name_en: str
    category_zh: str
    category_en: str
    providers: tuple[str, ...]
    delivery: Delivery
    fields: tuple[CatalogField, ...]
    key: tuple[str, ...]
    entity: str
    data_date: str | None
    grain: str
    _by_name: dict[str, CatalogField] = dataclass_field(
        default_factory=dict, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        by_name = {f.name: f for f in self.fields}
        if len(by_name) != len(self.fields):
            raise ValueError(f"item {self.code}: a field name is used twice")
        if len({header_key(f.header) for f in self.fields}) != len(self.fields):
            raise ValueError(f"item {self.code}: a header is used twice")
        for name in (*self.key, self.entity, *([self.data_date] if self.data_date else [])):
            if name not in by_name:
                raise ValueError(f"item {self.code}: {name!r} is not one of its fields")
        for code in self.providers:
            if code not in PROVIDERS:
                raise ValueError(f"item {self.code}: unknown provider {code!r}")
        self._by_name.update(by_name)

    def field(self, name: str) -> CatalogField:
        """The field called ``name`` (KeyError if there is none)."""
        return self._by_name[name]

    @property
    def headers(self) -> tuple[str, ...]:
        """The column headers a delivered file must have, in order."""
        return tuple(f.header for f in self.fields)

    @property
    def is_about_persons(self) -> bool:
        """Whether records may be about natural persons (keyed by id_type + id_number)."""
        return any(f.kind is Kind.ID_TYPE for f in self.fields)

    @property
    def table_name(self) -> str:
        """The storage table of this item's records."""
        return f"rec_{self.code}"


# --------------------------------------------------------------------------- the fields

_BOOL = ("是", "否")


def _data_code() -> CatalogField:
    return CatalogField(
        "数据编码", "data_code", Kind.CODE, "the record's code in the provider's system",
        max_length=64,
    )


def _remarks() -> CatalogField:
    return CatalogField("备注", "remarks", Kind.TEXT, "provider's remarks", max_length=500)


def _enterprise() -> tuple[CatalogField, CatalogField]:
    return (
        CatalogField("企业名称", "enterprise_name", Kind.TEXT, "registered name of the enterprise",
                     required=True),
        CatalogField("统一社会信用代码", "uscc", Kind.USCC,
                     "unified social credit code (18 characters, GB 32100-2015)", required=True),
    )


def _subject(name_header: str, name: str, always_personal: bool) -> tuple[CatalogField, ...]:
    """Name, 证件类型 and 证件号码 of an operator or grower (organisation or natural person)."""
    return (
        CatalogField(
            name_header, name, Kind.TEXT, "name of the operator (a person's name is personal data)",
            required=True,
            sensitivity=Sensitivity.PERSONAL if always_personal else Sensitivity.PERSONAL_IF_PERSON,
        ),
        CatalogField("证件类型", "id_type", Kind.ID_TYPE,
                     f"{ID_TYPE_USCC} for an organisation, {ID_TYPE_RESIDENT} for a person",
                     required=True, choices=(ID_TYPE_USCC, ID_TYPE_RESIDENT)),
        CatalogField("证件号码", "id_number", Kind.ID_NUMBER,
                     "the USCC or the 18-character resident id (ISO 7064 MOD 11-2)",
                     required=True, sensitivity=Sensitivity.PERSONAL),
    )


def _utility(kind_zh: str, usage_unit: str, usage_zh: str) -> tuple[CatalogField, ...]:
    """The shared layout of water (水费) and gas (燃气费): one row per account and bill."""
    return (
        _data_code(),
        *_enterprise(),
        CatalogField("户名", "account_name", Kind.TEXT, f"{kind_zh} account holder name",
                     required=True, sensitivity=Sensitivity.PERSONAL),
        CatalogField("户号", "account_no", Kind.CODE, f"{kind_zh} account number",
                     required=True, sensitivity=Sensitivity.PERSONAL, max_length=32),
        CatalogField("开户日期", "account_opened_on", Kind.DATE, "date the account was opened",
                     not_after_receipt=True),
        CatalogField("用户地址", "address", Kind.TEXT, "address of the supply point",
                     sensitivity=Sensitivity.PERSONAL),
        CatalogField("预交金额", "prepaid_amount", Kind.AMOUNT, "amount paid in advance",
                     unit="元"),
        CatalogField("欠费金额", "arrears_amount", Kind.AMOUNT, "amount overdue", unit="元"),
        CatalogField("是否一户一表", "one_meter_per_account", Kind.BOOL,
                     "whether the account has its own meter", choices=_BOOL),
        CatalogField(f"缴纳{kind_zh}明细", "payment_details", Kind.AMOUNT,
                     "amount paid against this period's bill (one row per bill)", unit="元"),
        CatalogField("缴费所属期", "billing_period", Kind.PERIOD, "the month the bill is for",
                     required=True, not_after_receipt=True),
        CatalogField(f"近3个月月均{usage_zh}", "avg_usage_3m", Kind.QUANTITY,
                     "monthly average usage over the last 3 months", unit=usage_unit),
        CatalogField(f"近6个月月均{usage_zh}", "avg_usage_6m", Kind.QUANTITY,
                     "monthly average usage over the last 6 months", unit=usage_unit),
        CatalogField("当前是否欠费", "in_arrears_now", Kind.BOOL,
                     "whether the account is in arrears on the statistics date", choices=_BOOL),
        CatalogField("统计日期", "stat_date", Kind.DATE, "date the row was compiled",
                     required=True, not_after_receipt=True),
        CatalogField("统计基准日期", "stat_reference_date", Kind.DATE,
                     "reference date the statistics refer to", not_after_receipt=True),
        _remarks(),
    )


CATALOG: tuple[Item, ...] = (
    Item(
        1, "medical_contributions", "职工医疗保险费基本信息",
        "employee medical insurance contributions",
        "医疗保险信息", "medical insurance", ("medical_security_bureau",), Delivery.TABLE,
        (
            _data_code(),
            *_enterprise(),
            CatalogField("费款所属期", "period", Kind.PERIOD, "the month the contribution is for",
                         required=True, not_after_receipt=True),
            CatalogField("近两年每月参保人数", "insured_headcount", Kind.COUNT,
                         "employees insured in that month (monthly, last 24 months)",
                         required=True, unit="人"),
            CatalogField("缴费金额", "contribution_amount", Kind.AMOUNT,
                         "contribution paid for that month", required=True, unit="元"),
            CatalogField("最近一次正常缴费月份", "last_normal_payment_month", Kind.PERIOD,
                         "latest month paid on time, as of that month", not_after_receipt=True),
            CatalogField("近两年每月缓缴金额", "deferred_amount", Kind.AMOUNT,
                         "contribution deferred in that month (monthly, last 24 months)",
                         unit="元"),
            _remarks(),
        ),
        key=("uscc", "period"), entity="uscc", data_date="period",
        grain="one row per enterprise and month (费款所属期)",
    ),
    Item(
        2, "medical_arrears", "职工医疗保险费欠缴信息", "medical insurance contribution arrears",
        "医疗保险信息", "medical insurance", ("medical_security_bureau", "tax_bureau"),
        Delivery.TABLE_OR_AUTHORISED_API,
        (
            _data_code(),
            *_enterprise(),
            CatalogField("近两年欠缴金额", "arrears_amount", Kind.AMOUNT,
                         "contribution in arrears for that month (last two years)",
                         required=True, unit="元"),
            CatalogField("欠缴所属期", "arrears_period", Kind.PERIOD,
                         "the month the arrears are for", required=True, not_after_receipt=True),
            _remarks(),
        ),
        key=("uscc", "arrears_period"), entity="uscc", data_date="arrears_period",
        grain="one row per enterprise and month in arrears (欠缴所属期)",
    ),
    Item(
        3, "medical_changes", "职工医疗保险费变动信息", "medical insurance contribution changes",
        "医疗保险信息", "medical insurance", ("medical_security_bureau",), Delivery.TABLE,
        (
            _data_code(),
            *_enterprise(),
            CatalogField("近一季度单位月度参保人数变化率", "headcount_change_rate_q", Kind.RATE,
                         "change of monthly insured headcount over the last quarter",
                         required=True, unit="%"),
            CatalogField("近一季度单位月度缴费金额变化率", "contribution_change_rate_q", Kind.RATE,
                         "change of monthly contributions over the last quarter",
                         required=True, unit="%"),
            CatalogField("统计时间", "stat_time", Kind.DATE, "date the rates were computed",
                         required=True, not_after_receipt=True),
            _remarks(),
        ),
        key=("uscc", "stat_time"), entity="uscc", data_date="stat_time",
        grain="one row per enterprise and statistics date",
    ),
    Item(
        4, "designated_institutions", "医保定点民营医疗机构信息",
        "designated private medical institutions", "医保定点信息", "designated providers",
        ("medical_security_bureau",), Delivery.TABLE,
        (
            _data_code(),
            *_enterprise(),
            CatalogField("医疗机构执业许可证", "practice_license_no", Kind.CODE,
                         "medical institution practice licence number", required=True,
                         max_length=64),
            _remarks(),
        ),
        key=("uscc", "practice_license_no"), entity="uscc", data_date=None,
        grain="one row per institution and licence",
    ),
    Item(
        5, "agri_insurance", "保险信息", "agricultural insurance",
        "新型农业经营主体信息", "new agricultural operators", ("agriculture_commission",),
        Delivery.TABLE,
        (
            _data_code(),
            *_subject("新型农业经营主体名称", "operator_name", always_personal=False),
            CatalogField("是否投保", "is_insured", Kind.BOOL, "whether the operator is insured",
                         required=True, choices=_BOOL),
            CatalogField("投保类型", "insurance_type", Kind.ENUM, "line of insurance",
                         choices=("种植业保险", "养殖业保险", "农机保险", "其他")),
            CatalogField("投保规模", "insured_scale", Kind.QUANTITY,
                         "insured area (mu) or herd (head), per insurance type", unit="亩/头"),
            CatalogField("保险金额", "insured_amount", Kind.AMOUNT, "sum insured", unit="元"),
            CatalogField("保单有效期自", "policy_valid_from", Kind.DATE, "policy start date"),
            CatalogField("保单有效期至", "policy_valid_to", Kind.DATE,
                         "policy end date (not before its start)"),
            CatalogField("保险理赔信息", "claims_info", Kind.TEXT, "claims paid, in words",
                         max_length=500),
            _remarks(),
        ),
        key=("id_number", "insurance_type", "policy_valid_from"), entity="id_number",
        data_date="policy_valid_from",
        grain="one row per operator, line of insurance and policy start",
    ),
    Item(
        6, "agri_subsidies", "补贴信息", "agricultural subsidies",
        "新型农业经营主体信息", "new agricultural operators", ("agriculture_commission",),
        Delivery.TABLE,
        (
            _data_code(),
            *_subject("新型农业经营主体名称", "operator_name", always_personal=False),
            CatalogField("补贴类型", "subsidy_type", Kind.ENUM, "kind of subsidy",
                         required=True,
                         choices=(
                             "耕地地力保护补贴", "农机购置补贴", "种粮农民一次性补贴", "其他"
                         )),
            CatalogField("补贴金额", "subsidy_amount", Kind.AMOUNT, "amount granted",
                         required=True, unit="元"),
            CatalogField("统计时间", "stat_time", Kind.DATE, "date the grant was recorded",
                         required=True, not_after_receipt=True),
            _remarks(),
        ),
        key=("id_number", "subsidy_type", "stat_time"), entity="id_number",
        data_date="stat_time", grain="one row per operator, subsidy type and statistics date",
    ),
    Item(
        7, "large_growers", "种植大户清单信息", "large growers",
        "涉农类清单信息", "agriculture lists", ("agriculture_commission",), Delivery.TABLE,
        (
            _data_code(),
            *_subject("种植大户名称", "grower_name", always_personal=True),
            CatalogField("地址", "address", Kind.TEXT, "address of the grower",
                         sensitivity=Sensitivity.PERSONAL),
            _remarks(),
        ),
        key=("id_number",), entity="id_number", data_date=None, grain="one row per grower",
    ),
    Item(
        8, "water", "水费信息", "water bills", "水电气费缴纳信息", "utility payments",
        ("water_authority", "water_group"), Delivery.TABLE,
        _utility("水费", "吨", "用水量"),
        key=("account_no", "billing_period"), entity="uscc", data_date="stat_date",
        grain="one row per account and bill (缴费所属期)",
    ),
    Item(
        9, "electricity", "电费信息", "electricity", "水电气费缴纳信息", "utility payments",
        ("state_grid_tianjin",), Delivery.TABLE,
        (
            _data_code(),
            *_enterprise(),
            CatalogField("电网户号", "grid_account_no", Kind.CODE, "grid account number",
                         required=True, sensitivity=Sensitivity.PERSONAL, max_length=32),
            CatalogField("用户地址", "address", Kind.TEXT, "address of the supply point",
                         sensitivity=Sensitivity.PERSONAL),
            CatalogField("运行容量", "operating_capacity_kva", Kind.QUANTITY,
                         "capacity in operation", unit="kVA"),
            CatalogField("合同容量", "contract_capacity_kva", Kind.QUANTITY,
                         "contracted capacity", unit="kVA"),
            CatalogField("首次供电时间", "first_supply_date", Kind.DATE, "first day of supply",
                         not_after_receipt=True),
            CatalogField("用电账户状态", "account_status", Kind.ENUM, "state of the account",
                         choices=("正常", "暂停", "销户")),
            CatalogField("欠费金额", "arrears_amount", Kind.AMOUNT, "amount overdue", unit="元"),
            CatalogField("近两年违约次数", "violations_2y", Kind.COUNT,
                         "breaches of the supply contract in the last two years", unit="次"),
            CatalogField("用电类型", "usage_type", Kind.ENUM, "tariff class",
                         choices=("大工业用电", "一般工商业用电", "农业生产用电", "其他")),
            CatalogField("地区地方名（省级）", "province", Kind.TEXT, "province-level region",
                         max_length=20),
            CatalogField("地区地方名（市级）", "city", Kind.TEXT, "city-level region",
                         max_length=20),
            CatalogField("价值等级", "value_grade", Kind.ENUM, "the grid's value grade",
                         choices=("A", "B", "C", "D")),
            CatalogField("风险等级", "risk_grade", Kind.ENUM, "the grid's risk grade",
                         choices=("低", "中", "高")),
            CatalogField("近3个月月均用电金额", "avg_spend_3m", Kind.AMOUNT,
                         "monthly average spend over the last 3 months", unit="元"),
            CatalogField("近6个月月均用电金额", "avg_spend_6m", Kind.AMOUNT,
                         "monthly average spend over the last 6 months", unit="元"),
            CatalogField("近一年月均用电金额", "avg_spend_12m", Kind.AMOUNT,
                         "monthly average spend over the last 12 months", unit="元"),
            CatalogField("当前是否欠费", "in_arrears_now", Kind.BOOL,
                         "whether the account is in arrears on the statistics date",
                         choices=_BOOL),
            CatalogField("统计日期", "stat_date", Kind.DATE, "date the row was compiled",
                         required=True, not_after_receipt=True),
            CatalogField("统计基准日期", "stat_reference_date", Kind.DATE,
                         "reference date the statistics refer to", not_after_receipt=True),
            _remarks(),
        ),
        key=("grid_account_no", "stat_date"), entity="uscc", data_date="stat_date",
        grain="one row per grid account and statistics date (monthly)",
    ),
    Item(
        10, "gas", "燃气费信息", "gas bills", "水电气费缴纳信息", "utility payments",
        ("city_management_commission",), Delivery.TABLE,
        _utility("燃气费", "立方米", "燃气用量"),
        key=("account_no", "billing_period"), entity="uscc", data_date="stat_date",
        grain="one row per account and bill (缴费所属期)",
    ),
)

_BY_CODE = {item.code: item for item in CATALOG}
_BY_NAME = {item.name_zh: item for item in CATALOG}


def get_item(ref: str | int) -> Item:
    """The item named by its code (``electricity``), number (``9``) or Chinese name (``电费信息``).

    Raises
    ------
    KeyError
        With a message listing the valid codes.
    """
    text = str(ref).strip()
    if text in _BY_CODE:
        return _BY_CODE[text]
    if text in _BY_NAME:
        return _BY_NAME[text]
    if text.isdigit() and 1 <= int(text) <= len(CATALOG):
        return CATALOG[int(text) - 1]
    raise KeyError(
        f"no catalog item {text!r}; use one of: "
        + ", ".join(f"{i.number} {i.code} ({i.name_zh})" for i in CATALOG)
    )


# --------------------------------------------------------------------------- masking


def _mask_name(value: str) -> str:
    """A person's name: the family name (first character) and one * per other character."""
    return value[:1] + "*" * (len(value) - 1) if value else value


def _mask_address(value: str) -> str:
    """An address: the first 6 characters (city and district) and **** for the rest."""
    return value[:6] + "****" if len(value) > 6 else "*" * len(value)


def mask_value(item: Item, name: str, value: object, *, id_type: str | None = None,
               authorised: bool = False) -> object:
    """The value of field ``name`` as it may be shown without authorization.

    Public fields, empty values and authorised requests pass through. Personal
    fields are masked by kind: ids and account numbers keep their first and
    last two characters (:func:`crypto.identifiers.mask_id`), names keep the
    family name, addresses keep city and district. A PERSONAL_IF_PERSON
    field is masked only when ``id_type`` is the resident id (or unknown, to
    err on the side of the person).
    """
    spec = item.field(name)
    if authorised or value is None or value == "" or spec.sensitivity is Sensitivity.PUBLIC:
        return value
    if spec.sensitivity is Sensitivity.PERSONAL_IF_PERSON and id_type == ID_TYPE_USCC:
        return value
    text = str(value)
    if spec.kind in (Kind.CODE, Kind.ID_NUMBER, Kind.USCC):
        return mask_id(text)
    if name == "address":
        return _mask_address(text)
    return _mask_name(text)


# --------------------------------------------------------------------------- documentation


def _field_row(f: CatalogField) -> dict[str, object]:
    return {
        "header": f.header, "name": f.name, "kind": f.kind.value, "required": f.required,
        "unit": f.unit, "sensitivity": f.sensitivity.value, "choices": list(f.choices),
        "description": f.description,
    }


def catalog_as_json(items: Iterable[Item] = CATALOG) -> str:
    """The catalog as JSON (for tools and the platform API's documentation)."""
    out = []
    for item in items:
        out.append({
            "number": item.number, "code": item.code, "name_zh": item.name_zh,
            "name_en": item.name_en, "category_zh": item.category_zh,
            "category_en": item.category_en,
            "providers": [{"code": c, "name_zh": PROVIDERS[c].name_zh,
                           "name_en": PROVIDERS[c].name_en} for c in item.providers],
            "delivery": item.delivery.value, "grain": item.grain, "key": list(item.key),
            "entity": item.entity, "data_date": item.data_date,
            "fields": [_field_row(f) for f in item.fields],
        })
    return json.dumps(out, ensure_ascii=False, indent=2)


def catalog_as_markdown(items: Iterable[Item] = CATALOG) -> str:
    """The catalog as Markdown: one table of fields per item, generated, never hand-edited."""
    lines = ["# Credit information catalog (generated by `creditlab catalog --format markdown`)",
             ""]
    for item in items:
        providers = ", ".join(f"{PROVIDERS[c].name_zh} {PROVIDERS[c].name_en}"
                              for c in item.providers)
        lines += [
            f"## {item.number}. {item.name_zh} — {item.name_en} (`{item.code}`)",
            "",
            f"Category: {item.category_zh} {item.category_en}. Provider: {providers}. "
            f"Delivery: {item.delivery.value}. Grain: {item.grain}; key "
            f"({', '.join(item.key)}); data date: {item.data_date or 'the batch date'}.",
            "",
            "| header | identifier | kind | unit | required | sensitivity | description |",
            "|---|---|---|---|---|---|---|",
        ]
        for f in item.fields:
            kind = f.kind.value + (f" ({' / '.join(f.choices)})" if f.choices else "")
            lines.append(
                f"| {f.header} | `{f.name}` | {kind} | {f.unit} | {'yes' if f.required else ''} "
                f"| {'' if f.sensitivity is Sensitivity.PUBLIC else f.sensitivity.value} "
                f"| {f.description} |"
            )
        lines.append("")
    return "\n".join(lines)
