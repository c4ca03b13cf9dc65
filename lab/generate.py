"""A synthetic city for the platform: ``creditlab generate --enterprises N --seed S``.

Why
---
The platform's real data (the catalog of ``shared/CATALOG.md``) cannot
leave its providers, yet ingestion, data quality, features and the joint
model need files in exactly that layout, with exactly the defects real
deliveries have, and loan outcomes that the catalog signals partly explain.
This module writes such a city, modelled on Tianjin:

* **Enterprises** with valid USCCs (GB 32100 check character computed by
  :func:`crypto.identifiers.uscc_check_char`) whose division codes are
  Tianjin districts (12xxxx), a mix of industries and sizes, and for each
  only the items it would have: most have electricity, fewer water, fewer
  still gas; the medical insurance items only where staff are insured;
  designated medical institutions only among healthcare firms.
* **Agricultural operators and large growers** as their own population:
  cooperatives and farms (USCC) and natural persons (resident ids with
  Tianjin area codes, birth dates and ISO 7064 check characters).
* **Latent risk**: every enterprise has two independent risk factors,
  ``z_platform`` (shows, with noise, in its headcount trend, deferrals and
  arrears of contributions, utility arrears, falling spend, idle capacity
  and contract violations) and ``z_bank`` (shows in the banks' own internal
  rating, days past due and credit utilisation). Whether a loan defaults
  within 12 months after the as-of date depends on both, so a bank alone
  sees half the story and a joint model has real signal to find.
* **Loan books** of several banks (``banks/bank_K.csv``): one row per
  borrowing enterprise with the bank's features and ``default_12m``.
* **Dirty rows** at a stated rate, each recorded in ``manifest.json`` with
  its file row, field, defect and the reason code ingestion must give:
  wrong check characters, full-width characters in codes, duplicated rows,
  impossible dates, negative amounts, missing required values. Spellings
  that ingestion *normalises* (a full-width or zero-width USCC) are listed
  separately: those rows must be stored, not quarantined.

Deterministic per seed: enterprise ``i`` depends only on the seed and its
chunk of :data:`CHUNK` enterprises, so the files are byte-identical on every
run, and a million enterprises are generated chunk by chunk in bounded memory.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from crypto.identifiers import (
    USCC_ALPHABET,
    organisation_code_is_valid,
    resident_id_is_valid,
    uscc_check_char,
)
from lab.catalog import ID_TYPE_RESIDENT, ID_TYPE_USCC, Item, Kind, get_item
from lab.ingest import Reason

__all__ = [
    "BANK_FEATURES",
    "CHUNK",
    "DEFAULT_AS_OF",
    "GENERATOR_VERSION",
    "CityManifest",
    "generate_city",
]

GENERATOR_VERSION = "1"
CHUNK = 20_000
DEFAULT_AS_OF = dt.date(2025, 6, 30)
MONTHS = 24  # the catalog's "近两年每月" window
BANK_FEATURES = ("loan_amount", "term_months", "interest_rate", "collateralised",
                 "years_with_bank", "internal_rating", "max_days_past_due_12m",
                 "credit_utilisation")
#: Share of enterprises that borrow from bank 1, 2, 3, … (a firm may borrow from several).
BANK_SHARES = (0.40, 0.25, 0.15, 0.10, 0.10)

#: How each item's file is written: (file name, format, encoding). The mix exercises the
#: reader the way real deliveries do.
FILE_LAYOUT: dict[str, tuple[str, str, str | None]] = {
    "medical_contributions": ("medical_contributions.csv", "csv", "utf-8"),
    "medical_arrears": ("medical_arrears.csv", "csv", "utf-8-sig"),
    "medical_changes": ("medical_changes.csv", "csv", "gbk"),
    "designated_institutions": ("designated_institutions.xlsx", "xlsx", None),
    "agri_insurance": ("agri_insurance.csv", "csv", "utf-8-sig"),
    "agri_subsidies": ("agri_subsidies.csv", "csv", "gbk"),
    "large_growers": ("large_growers.xlsx", "xlsx", None),
    "water": ("water.csv", "csv", "utf-8-sig"),
    "electricity": ("electricity.csv", "csv", "utf-8"),
    "gas": ("gas.csv", "csv", "gbk"),
}

# --------------------------------------------------------------------------- city vocabulary

#: Tianjin's districts: (division code, name, weight in the enterprise population).
DISTRICTS = (
    ("120101", "和平区", 6), ("120102", "河东区", 5), ("120103", "河西区", 7),
    ("120104", "南开区", 7), ("120105", "河北区", 5), ("120106", "红桥区", 3),
    ("120110", "东丽区", 7), ("120111", "西青区", 8), ("120112", "津南区", 6),
    ("120113", "北辰区", 7), ("120114", "武清区", 8), ("120115", "宝坻区", 5),
    ("120116", "滨海新区", 16), ("120117", "宁河区", 3), ("120118", "静海区", 4),
    ("120119", "蓟州区", 3),
)
#: Industries: (name, weight, name suffix, has gas probability, electricity usage type).
INDUSTRIES = (
    ("制造业", 22, "制造有限公司", 0.55, "大工业用电"),
    ("批发和零售业", 24, "商贸有限公司", 0.15, "一般工商业用电"),
    ("建筑业", 8, "建设工程有限公司", 0.10, "一般工商业用电"),
    ("交通运输和仓储业", 7, "物流有限公司", 0.15, "一般工商业用电"),
    ("住宿和餐饮业", 9, "餐饮管理有限公司", 0.85, "一般工商业用电"),
    ("信息技术服务业", 9, "科技有限公司", 0.05, "一般工商业用电"),
    ("租赁和商务服务业", 9, "商务服务有限公司", 0.05, "一般工商业用电"),
    ("卫生和社会工作", 4, "医疗管理有限公司", 0.40, "一般工商业用电"),
    ("农林牧渔业", 8, "农业专业合作社", 0.10, "农业生产用电"),
)
#: Sizes: (name, probability, median headcount, log-sd, contract kVA median, risk offset).
SIZES = (
    ("micro", 0.70, 5, 0.6, 50, 0.30),
    ("small", 0.22, 35, 0.5, 250, 0.0),
    ("medium", 0.07, 220, 0.5, 1250, -0.30),
    ("large", 0.01, 1500, 0.6, 6300, -0.60),
)
_NAME_CHARS = tuple(
    "华润泰鑫盛达恒通宏远金海利源兴发昌隆瑞祥德信安康丰裕永嘉福佳新凯诚博宇天汇力东方"
    "明阳光辉银星晨和合众联创志科益仁中正成北南津港渤滨广聚鼎启航卓越优美雅清泉松林峰"
    "云龙凤鹏程"
)
_SURNAMES = tuple(
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
    "苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜"
)
_GIVEN = tuple(
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰建国志红文辉鹏飞宇浩凯俊帅萍"
    "燕丹宁欣悦晨阳亮斌波鑫海林峰春梅云雪"
)
_ROADS = (
    "解放路", "南京路", "卫津路", "黄河道", "红旗路", "复康路", "友谊路", "中山路",
    "胜利路", "建设路", "光明道", "幸福道", "和平路", "新华路", "北京道", "长江道",
    "西湖道", "津塘路", "京津路", "海河东路", "泰达大街", "第一大街", "第二大街", "黄海路",
    "渤海路", "津沽路", "杨柳青大道", "武宁路", "宝平路", "津蓟路",
)

_FULL_WIDTH = str.maketrans({chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)})


def _uscc_with_check(first17: str) -> str:
    return first17 + uscc_check_char(first17)


def _org_code(body8: str, *, valid: bool) -> str:
    """Nine-character organisation code: the GB 11714 check character (or a wrong one)."""
    candidates = [c for c in "0123456789X" if organisation_code_is_valid(body8 + c)]
    if valid:
        return body8 + candidates[0]
    wrong = next(c for c in "0123456789X" if c not in candidates)
    return body8 + wrong


def _resident_id(first17: str) -> str:
    """Append the one check character that makes the id valid (found, not recomputed)."""
    return next(first17 + c for c in "0123456789X" if resident_id_is_valid(first17 + c))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _money(values: np.ndarray) -> np.ndarray:
    """Amounts as text with at most two decimals ("1234.5", "0.0")."""
    return np.round(values, 2).astype(str)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _months_back(as_of: dt.date, count: int) -> list[tuple[int, int]]:
    """The ``count`` months ending with the as-of month, oldest first, as (year, month)."""
    out = []
    year, month = as_of.year, as_of.month
    for _ in range(count):
        out.append((year, month))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return out[::-1]


# --------------------------------------------------------------------------- manifest


@dataclass
class FileManifest:
    """What one written file holds and which of its rows ingestion must reject."""

    item: str
    file: str
    file_format: str
    encoding: str | None
    provider: str
    rows: int = 0
    dirty: list[dict[str, Any]] = field(default_factory=list)
    normalised: list[dict[str, Any]] = field(default_factory=list)
    warning_rows: int = 0


@dataclass
class CityManifest:
    """The generated city: parameters, files, dirty rows, population and loan books."""

    generator_version: str
    seed: int
    enterprises: int
    persons: int
    as_of: str
    dirty_rate: float
    files: dict[str, FileManifest]
    banks: list[dict[str, Any]]
    population: dict[str, Any]
    seconds: float = 0.0

    def to_json(self) -> str:
        data = {
            "generator_version": self.generator_version, "seed": self.seed,
            "enterprises": self.enterprises, "persons": self.persons, "as_of": self.as_of,
            "dirty_rate": self.dirty_rate, "population": self.population,
            "files": {k: vars(v) for k, v in self.files.items()}, "banks": self.banks,
        }
        return json.dumps(data, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, path: str | Path) -> CityManifest:
        """Read a ``manifest.json`` written by :func:`generate_city`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        files = {k: FileManifest(**v) for k, v in data.pop("files").items()}
        return cls(files=files, **data)


# --------------------------------------------------------------------------- writers


class _Writer:
    """Appends chunks to one item file (CSV in its encoding, or XLSX), counting rows."""

    def __init__(self, path: Path, item: Item, file_format: str, encoding: str | None) -> None:
        self.path = path
        self.item = item
        self.file_format = file_format
        self.encoding = encoding
        self.rows = 0
        self._handle: IO[str] | None = None
        self._book: Any = None
        self._sheet: Any = None
        if file_format == "csv":
            self._handle = path.open("w", encoding=encoding or "utf-8", newline="")
            pd.DataFrame(columns=list(item.headers)).to_csv(self._handle, index=False)
        else:
            from openpyxl import Workbook

            self._book = Workbook(write_only=True)
            self._sheet = self._book.create_sheet(item.name_zh)
            self._sheet.append(list(item.headers))

    def write(self, frame: pd.DataFrame) -> None:
        if self._handle is not None:
            frame.to_csv(self._handle, header=False, index=False)
        else:
            for row in frame.itertuples(index=False):
                self._sheet.append(list(row))
        self.rows += len(frame)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        else:
            self._book.save(self.path)


# --------------------------------------------------------------------------- dirty rows

_DEFECT_REASON = {
    "uscc_check": Reason.USCC_CHECK,
    "resident_id_check": Reason.RESIDENT_ID_CHECK,
    "resident_id_birth_date": Reason.RESIDENT_ID_BIRTH_DATE,
    "full_width_code": Reason.FULL_WIDTH,
    "negative_amount": Reason.NEGATIVE,
    "missing_required": Reason.MISSING_REQUIRED,
    "duplicate": Reason.DUPLICATE_KEY,
}
_MAIN_CODE = {"electricity": "grid_account_no", "water": "account_no", "gas": "account_no",
              "designated_institutions": "practice_license_no"}


def _wrong_uscc(code: str, rng: np.random.Generator) -> str:
    """The same USCC with a different check character (always invalid: 31 is prime)."""
    choices = [c for c in USCC_ALPHABET if c != code[17]]
    return code[:17] + choices[int(rng.integers(len(choices)))]


def _wrong_resident(code: str, rng: np.random.Generator) -> str:
    choices = [c for c in "0123456789X" if c != code[17]]
    return code[:17] + choices[int(rng.integers(len(choices)))]


def _bad_birth_date(code: str) -> str:
    """A resident id whose birth month is 13 but whose check character is right for it."""
    body = code[:10] + "13" + code[12:17]
    total = sum(int(ch) * (2 ** (17 - i) % 11) for i, ch in enumerate(body))
    return body + "10X98765432"[total % 11]


def _defects_for(item: Item, row: dict[str, str]) -> list[str]:
    """Defects that can be injected into this row (each is detectable on its own)."""
    out = ["duplicate", "missing_required", "full_width_code"]
    names = {f.name for f in item.fields}
    if "uscc" in names or row.get("id_type") == ID_TYPE_USCC:
        out.append("uscc_check")
    if row.get("id_type") == ID_TYPE_RESIDENT:
        out += ["resident_id_check", "resident_id_birth_date"]
    if any(f.kind in (Kind.DATE, Kind.PERIOD) and row.get(f.name) for f in item.fields):
        out.append("impossible_date")
    if any(f.kind is Kind.AMOUNT for f in item.fields):
        out.append("negative_amount")
    return out


def _inject(item: Item, frame: pd.DataFrame, rng: np.random.Generator, rate: float,
            normalise_rate: float, zero_width_ok: bool
            ) -> tuple[pd.DataFrame, list[dict[str, Any]], list[dict[str, Any]], np.ndarray]:
    """Corrupt a share of rows, one defect each; return the frame and what was done.

    Row positions in the returned lists are 0-based positions in the returned
    frame (duplicates are inserted right after their original). The last
    value marks, per returned row, whether it is dirty.
    """
    n = len(frame)
    if n == 0:
        return frame, [], [], np.zeros(0, dtype=bool)
    k_dirty = int(rng.binomial(n, rate))
    entity = item.entity
    k_norm = int(rng.binomial(n, normalise_rate)) if item.field(entity).kind is Kind.USCC else 0
    chosen = rng.choice(n, size=min(n, k_dirty + k_norm), replace=False)
    dirty_pos, norm_pos = chosen[:k_dirty], chosen[k_dirty:]
    frame = frame.copy()
    cols = {name: frame.columns.get_loc(name) for name in frame.columns}
    dirty: dict[int, dict[str, Any]] = {}
    duplicates: list[int] = []
    required = [f.name for f in item.fields if f.required and f.name not in item.key
                and f.kind not in (Kind.ID_TYPE,)]
    for pos in sorted(dirty_pos.tolist()):
        row = {name: frame.iat[pos, cols[name]] for name in frame.columns}
        options = _defects_for(item, row)
        defect = options[int(rng.integers(len(options)))]
        fname: str
        reason = _DEFECT_REASON.get(defect)
        if defect == "duplicate":
            duplicates.append(pos)
            fname = item.key[0]
        elif defect == "missing_required":
            fname = required[int(rng.integers(len(required)))]
            frame.iat[pos, cols[fname]] = ""
        elif defect == "full_width_code":
            fname = _MAIN_CODE.get(item.code, "data_code")
            frame.iat[pos, cols[fname]] = str(row[fname]).translate(_FULL_WIDTH)
        elif defect == "uscc_check":
            fname = "uscc" if "uscc" in cols else "id_number"
            frame.iat[pos, cols[fname]] = _wrong_uscc(str(row[fname]), rng)
        elif defect == "resident_id_check":
            fname = "id_number"
            frame.iat[pos, cols[fname]] = _wrong_resident(str(row[fname]), rng)
        elif defect == "resident_id_birth_date":
            fname = "id_number"
            frame.iat[pos, cols[fname]] = _bad_birth_date(str(row[fname]))
        elif defect == "impossible_date":
            dated = [f for f in item.fields if f.kind in (Kind.DATE, Kind.PERIOD) and row[f.name]]
            spec = dated[int(rng.integers(len(dated)))]
            fname = spec.name
            year = str(row[fname])[:4]
            if spec.kind is Kind.PERIOD:
                frame.iat[pos, cols[fname]] = f"{year}-13"
                reason = Reason.IMPOSSIBLE_PERIOD
            else:
                bad = ("02-30", "04-31", "13-01", "00-10", "06-31")[int(rng.integers(5))]
                frame.iat[pos, cols[fname]] = f"{year}-{bad}"
                reason = Reason.IMPOSSIBLE_DATE
        else:  # negative_amount
            amounts = [f.name for f in item.fields if f.kind is Kind.AMOUNT]
            fname = amounts[int(rng.integers(len(amounts)))]
            value = str(row[fname]) or "100.0"
            frame.iat[pos, cols[fname]] = "-" + (value if value not in ("0", "0.0") else "1.5")
        assert reason is not None
        dirty[pos] = {"field": fname, "defect": defect, "reason": reason.value}

    normalised: dict[int, dict[str, Any]] = {}
    for pos in sorted(norm_pos.tolist()):
        value = str(frame.iat[pos, cols[entity]])
        if zero_width_ok and rng.random() < 0.5:
            cut = int(rng.integers(1, 17))
            frame.iat[pos, cols[entity]] = value[:cut] + "\u200b" + value[cut:]
            normalised[pos] = {"field": entity, "kind": "zero_width"}
        else:
            frame.iat[pos, cols[entity]] = value.translate(_FULL_WIDTH)
            normalised[pos] = {"field": entity, "kind": "full_width"}

    order = np.concatenate([np.arange(n, dtype=np.float64),
                            np.asarray(duplicates, dtype=np.float64) + 0.5])
    source = np.concatenate([np.arange(n), np.asarray(duplicates, dtype=np.int64)])
    ranking = np.argsort(order, kind="stable")
    out = frame.iloc[source[ranking]].reset_index(drop=True)
    new_position = np.empty(len(order), dtype=np.int64)
    new_position[ranking] = np.arange(len(order))
    dirty_rows: list[dict[str, Any]] = []
    is_dirty = np.zeros(len(out), dtype=bool)
    for pos, info in dirty.items():
        if info["defect"] == "duplicate":
            copy_index = n + duplicates.index(pos)
            target = int(new_position[copy_index])
        else:
            target = int(new_position[pos])
        is_dirty[target] = True
        dirty_rows.append({"row": target, **info})
    norm_rows = [{"row": int(new_position[pos]), **info} for pos, info in normalised.items()]
    dirty_rows.sort(key=lambda r: r["row"])
    norm_rows.sort(key=lambda r: r["row"])
    return out, dirty_rows, norm_rows, is_dirty


# --------------------------------------------------------------------------- one chunk


@dataclass
class _Chunk:
    """The enterprises (and persons) of one chunk, with their latent risk."""

    index: int
    start: int
    n: int
    uscc: np.ndarray
    name: np.ndarray
    district: np.ndarray
    industry: np.ndarray
    size: np.ndarray
    headcount0: np.ndarray
    z_platform: np.ndarray
    z_bank: np.ndarray
    org_warning: np.ndarray


def _pick_name(rng: np.random.Generator, count: int, parts: int = 2) -> list[str]:
    idx = rng.integers(len(_NAME_CHARS), size=(count, parts))
    return ["".join(_NAME_CHARS[j] for j in row) for row in idx]


def _person_names(rng: np.random.Generator, count: int) -> list[str]:
    sur = rng.integers(len(_SURNAMES), size=count)
    given = rng.integers(len(_GIVEN), size=(count, 2))
    two = rng.random(count) < 0.6
    return [_SURNAMES[s] + _GIVEN[g[0]] + (_GIVEN[g[1]] if t else "")
            for s, g, t in zip(sur, given, two, strict=True)]


def _addresses(rng: np.random.Generator, districts: np.ndarray) -> list[str]:
    roads = rng.integers(len(_ROADS), size=len(districts))
    numbers = rng.integers(1, 999, size=len(districts))
    return [f"天津市{DISTRICTS[d][1]}{_ROADS[r]}{k}号"
            for d, r, k in zip(districts, roads, numbers, strict=True)]


def _enterprises(seed: int, index: int, start: int, n: int, dirty_rate: float) -> _Chunk:
    rng = np.random.default_rng([seed, index, 1])
    weights = np.array([d[2] for d in DISTRICTS], dtype=float)
    district = rng.choice(len(DISTRICTS), size=n, p=weights / weights.sum())
    iweights = np.array([i[1] for i in INDUSTRIES], dtype=float)
    industry = rng.choice(len(INDUSTRIES), size=n, p=iweights / iweights.sum())
    size = rng.choice(len(SIZES), size=n, p=[s[1] for s in SIZES])
    agri = industry == len(INDUSTRIES) - 1
    category = np.where(agri, np.where(rng.random(n) < 0.7, "3", "1"),
                        np.where(rng.random(n) < 0.12, "2", "1"))
    size = np.where(category == "2", 0, size)  # 个体工商户 are micro
    org_warning = rng.random(n) < min(0.002, dirty_rate / 5) if dirty_rate > 0 else np.zeros(
        n, dtype=bool)
    uscc = []
    body_kind = rng.random(n)
    for i in range(n):
        # A bijective scramble of the enterprise's global index: unique codes by construction.
        scrambled = (start + i) * 7919 + seed * 104729
        if body_kind[i] < 0.6:
            value, chars = scrambled % 31**6, []
            for _ in range(6):
                value, digit = divmod(value, 31)
                chars.append(USCC_ALPHABET[digit])
            body = "MA" + "".join(chars)
        else:
            body = f"{scrambled % 10**8:08d}"
        org = _org_code(body, valid=not org_warning[i])
        uscc.append(_uscc_with_check("9" + category[i] + DISTRICTS[district[i]][0] + org))
    names = _pick_name(rng, n)
    full_names = [f"天津{DISTRICTS[d][1][:2]}{nm}{INDUSTRIES[k][2]}"
                  if category[j] != "2" else f"天津市{DISTRICTS[d][1]}{nm}{INDUSTRIES[k][0][:2]}店"
                  for j, (d, nm, k) in enumerate(zip(district, names, industry, strict=True))]
    median = np.array([SIZES[s][2] for s in size], dtype=float)
    spread = np.array([SIZES[s][3] for s in size])
    headcount0 = np.maximum(1, np.round(median * np.exp(rng.normal(0, spread)))).astype(int)
    return _Chunk(index=index, start=start, n=n, uscc=np.array(uscc, dtype=object),
                  name=np.array(full_names, dtype=object), district=district, industry=industry,
                  size=size, headcount0=headcount0, z_platform=rng.normal(size=n),
                  z_bank=rng.normal(size=n), org_warning=org_warning)


def _base_columns(item: Item, n: int) -> dict[str, Any]:
    return {f.name: np.full(n, "", dtype=object) for f in item.fields}


def _data_codes(prefix: int, chunk: int, n: int) -> np.ndarray:
    return np.array([f"D{prefix:02d}{chunk:05d}{i:08d}" for i in range(n)], dtype=object)


def _medical(ch: _Chunk, rng: np.random.Generator, as_of: dt.date
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items 1-3: monthly contributions, arrears months, quarterly change rates."""
    months = _months_back(as_of, MONTHS)
    size_risk = np.array([SIZES[s][5] for s in ch.size])
    risk = ch.z_platform + size_risk
    insured_p = np.where(ch.uscc.astype(str).astype("U2") == "92", 0.3, 0.9)
    insured = np.flatnonzero(rng.random(ch.n) < insured_p)
    m = len(insured)
    t = np.arange(MONTHS) - (MONTHS - 1)
    trend = -0.018 * risk[insured] + rng.normal(0, 0.006, m)
    noise_sd = 0.02 + 0.05 * _sigmoid(1.5 * risk[insured])
    log_h = np.log(ch.headcount0[insured])[:, None] + trend[:, None] * t[None, :] + (
        rng.normal(size=(m, MONTHS)) * noise_sd[:, None])
    headcount = np.maximum(1, np.round(np.exp(log_h))).astype(int)
    per_head = rng.uniform(850, 1400, m)
    contribution = headcount * per_head[:, None]
    deferral = rng.random((m, MONTHS)) < _sigmoid(-4.2 + 1.6 * risk[insured])[:, None]
    deferred = np.where(deferral, contribution * rng.uniform(0.3, 1.0, (m, MONTHS)), 0.0)
    # latest month paid on time, as of each month (no deferral that month)
    last_normal = np.full((m, MONTHS), -1)
    running = np.full(m, -1)
    for j in range(MONTHS):
        running = np.where(~deferral[:, j], j, running)
        last_normal[:, j] = running
    labels = np.array([f"{y:04d}-{mo:02d}" for y, mo in months], dtype=object)
    rows = m * MONTHS
    item = get_item("medical_contributions")
    cols = _base_columns(item, rows)
    cols["data_code"] = _data_codes(1, ch.index, rows)
    cols["enterprise_name"] = np.repeat(ch.name[insured], MONTHS)
    cols["uscc"] = np.repeat(ch.uscc[insured], MONTHS)
    cols["period"] = np.tile(labels, m)
    cols["insured_headcount"] = headcount.ravel().astype(str)
    cols["contribution_amount"] = _money(contribution.ravel())
    last = last_normal.ravel()
    cols["last_normal_payment_month"] = np.where(last >= 0, labels[np.maximum(last, 0)], "")
    cols["deferred_amount"] = _money(deferred.ravel())
    contributions = pd.DataFrame(cols)

    arrears = rng.random((m, MONTHS)) < _sigmoid(-5.0 + 1.8 * risk[insured])[:, None]
    who, when = np.nonzero(arrears)
    item2 = get_item("medical_arrears")
    cols2 = _base_columns(item2, len(who))
    cols2["data_code"] = _data_codes(2, ch.index, len(who))
    cols2["enterprise_name"] = ch.name[insured][who]
    cols2["uscc"] = ch.uscc[insured][who]
    cols2["arrears_amount"] = _money(contribution[who, when] * rng.uniform(0.2, 1.0, len(who)))
    cols2["arrears_period"] = labels[when]
    arrears_frame = pd.DataFrame(cols2)

    quarter_ends = [j for j in range(5, MONTHS) if months[j][1] in (3, 6, 9, 12)][-4:]
    item3 = get_item("medical_changes")
    q = len(quarter_ends)
    cols3 = _base_columns(item3, m * q)
    cols3["data_code"] = _data_codes(3, ch.index, m * q)
    cols3["enterprise_name"] = np.repeat(ch.name[insured], q)
    cols3["uscc"] = np.repeat(ch.uscc[insured], q)
    head_rate, pay_rate, stamps = [], [], []
    for j in quarter_ends:
        recent_h, prior_h = headcount[:, j - 2:j + 1].mean(1), headcount[:, j - 5:j - 2].mean(1)
        recent_c = contribution[:, j - 2:j + 1].mean(1)
        prior_c = contribution[:, j - 5:j - 2].mean(1)
        head_rate.append(100 * (recent_h / prior_h - 1))
        pay_rate.append(100 * (recent_c / prior_c - 1))
        stamps.append(_month_end(*months[j]).isoformat())
    cols3["headcount_change_rate_q"] = _money(np.stack(head_rate, 1).ravel())
    cols3["contribution_change_rate_q"] = _money(np.stack(pay_rate, 1).ravel())
    cols3["stat_time"] = np.tile(np.array(stamps, dtype=object), m)
    return contributions, arrears_frame, pd.DataFrame(cols3)


def _designated(ch: _Chunk, rng: np.random.Generator) -> pd.DataFrame:
    health = np.flatnonzero((ch.industry == 7) & (rng.random(ch.n) < 0.6))
    item = get_item("designated_institutions")
    cols = _base_columns(item, len(health))
    cols["data_code"] = _data_codes(4, ch.index, len(health))
    cols["enterprise_name"] = ch.name[health]
    cols["uscc"] = ch.uscc[health]
    serial = rng.integers(0, 10**8, size=len(health))
    cols["practice_license_no"] = np.array(
        [f"PDY{s:08d}{DISTRICTS[d][0]}A{1001 + (ch.start + i) % 9000:04d}"
         for s, d, i in zip(serial, ch.district[health], health, strict=True)], dtype=object)
    return pd.DataFrame(cols)


def _electricity(ch: _Chunk, rng: np.random.Generator, as_of: dt.date) -> pd.DataFrame:
    """Item 9: one row per grid account and month over the last 12 months."""
    has = rng.random(ch.n) < 0.95
    who = np.flatnonzero(has)
    m = len(who)
    span = 36  # spend history needed for 12-month averages over the last 12 months
    risk = ch.z_platform[who] + np.array([SIZES[s][5] for s in ch.size[who]])
    contract = np.round(np.array([SIZES[s][4] for s in ch.size[who]]) * np.exp(
        rng.normal(0, 0.4, m)), -1).clip(10)
    utilisation = _sigmoid(0.6 - 0.8 * risk + rng.normal(0, 0.5, m))
    operating = np.round(contract * utilisation, 1)
    base = contract * rng.uniform(20, 45, m)  # monthly spend, yuan
    trend = -0.02 * risk + rng.normal(0, 0.008, m)
    t = np.arange(span) - (span - 1)
    spend = base[:, None] * np.exp(trend[:, None] * t[None, :]
                                   + rng.normal(0, 0.10, (m, span)))
    months = _months_back(as_of, 12)
    cumulative = np.cumsum(np.pad(spend, ((0, 0), (1, 0))), axis=1)

    def average(window: int, j: int) -> np.ndarray:
        end = span - 12 + j + 1
        return (cumulative[:, end] - cumulative[:, end - window]) / window

    arrears_p = _sigmoid(-4.0 + 1.5 * risk)
    in_arrears = rng.random((m, 12)) < arrears_p[:, None]
    violations = rng.poisson(0.15 * np.exp(0.9 * risk))
    item = get_item("electricity")
    rows = m * 12
    cols = _base_columns(item, rows)
    cols["data_code"] = _data_codes(9, ch.index, rows)
    cols["enterprise_name"] = np.repeat(ch.name[who], 12)
    cols["uscc"] = np.repeat(ch.uscc[who], 12)
    cols["grid_account_no"] = np.repeat(np.array(
        [f"12{(ch.start + i):010d}" for i in who], dtype=object), 12)
    cols["address"] = np.repeat(np.array(_addresses(rng, ch.district[who]), dtype=object), 12)
    cols["operating_capacity_kva"] = np.repeat(operating.astype(str), 12)
    cols["contract_capacity_kva"] = np.repeat(contract.astype(str), 12)
    first = np.array([(as_of - dt.timedelta(days=int(d))).isoformat()
                      for d in rng.integers(400, 9000, m)], dtype=object)
    cols["first_supply_date"] = np.repeat(first, 12)
    status = np.where(rng.random(m) < 0.03 * (1 + (risk > 1.5) * 4), "暂停", "正常")
    cols["account_status"] = np.repeat(status.astype(object), 12)
    amount = np.where(in_arrears, spend[:, -12:] * rng.uniform(0.5, 2.0, (m, 12)), 0.0)
    cols["arrears_amount"] = _money(amount.ravel())
    cols["violations_2y"] = np.repeat(violations.astype(str), 12)
    usage = np.array([INDUSTRIES[k][4] for k in ch.industry[who]], dtype=object)
    cols["usage_type"] = np.repeat(usage, 12)
    cols["province"] = np.full(rows, "天津市", dtype=object)
    cols["city"] = np.full(rows, "天津市", dtype=object)
    grade = np.digitize(base, [2_000, 10_000, 50_000])
    cols["value_grade"] = np.repeat(np.array(["D", "C", "B", "A"], dtype=object)[grade], 12)
    risk_grade = np.where(in_arrears.sum(1) >= 3, "高", np.where(in_arrears.sum(1) >= 1, "中",
                                                                  "低"))
    cols["risk_grade"] = np.repeat(risk_grade.astype(object), 12)
    cols["avg_spend_3m"] = _money(np.stack([average(3, j) for j in range(12)], 1).ravel())
    cols["avg_spend_6m"] = _money(np.stack([average(6, j) for j in range(12)], 1).ravel())
    cols["avg_spend_12m"] = _money(np.stack([average(12, j) for j in range(12)], 1).ravel())
    cols["in_arrears_now"] = np.where(in_arrears.ravel(), "是", "否").astype(object)
    stamps = np.array([_month_end(y, mo).isoformat() for y, mo in months], dtype=object)
    cols["stat_date"] = np.tile(stamps, m)
    cols["stat_reference_date"] = np.tile(stamps, m)
    return pd.DataFrame(cols)


def _utility(ch: _Chunk, rng: np.random.Generator, as_of: dt.date, code: str) -> pd.DataFrame:
    """Items 8 and 10: one row per account and monthly bill over the last 12 months."""
    if code == "water":
        has = rng.random(ch.n) < 0.80
        prefix, unit_price, usage_scale = "SW", 4.9, 1.0
    else:
        gas_p = np.array([INDUSTRIES[k][3] for k in ch.industry])
        has = rng.random(ch.n) < gas_p
        prefix, unit_price, usage_scale = "RQ", 3.2, 3.0
    who = np.flatnonzero(has)
    m = len(who)
    risk = ch.z_platform[who] + np.array([SIZES[s][5] for s in ch.size[who]])
    base = ch.headcount0[who] * usage_scale * rng.uniform(1.5, 4.0, m)
    trend = -0.015 * risk + rng.normal(0, 0.01, m)
    t = np.arange(17) - 16
    usage = base[:, None] * np.exp(trend[:, None] * t[None, :] + rng.normal(0, 0.12, (m, 17)))
    months = _months_back(as_of, 12)
    bill = usage[:, -12:] * unit_price
    late = rng.random((m, 12)) < _sigmoid(-4.3 + 1.3 * risk)[:, None]
    paid = np.where(late, bill * rng.uniform(0.0, 0.6, (m, 12)), bill)
    arrears = np.cumsum(bill - paid, axis=1) * np.where(late, 1.0, 0.0)
    item = get_item(code)
    rows = m * 12
    cols = _base_columns(item, rows)
    cols["data_code"] = _data_codes(item.number, ch.index, rows)
    cols["enterprise_name"] = np.repeat(ch.name[who], 12)
    cols["uscc"] = np.repeat(ch.uscc[who], 12)
    cols["account_name"] = np.repeat(ch.name[who], 12)
    cols["account_no"] = np.repeat(np.array(
        [f"{prefix}{(ch.start + i):010d}" for i in who], dtype=object), 12)
    opened = np.array([(as_of - dt.timedelta(days=int(d))).isoformat()
                       for d in rng.integers(400, 7000, m)], dtype=object)
    cols["account_opened_on"] = np.repeat(opened, 12)
    cols["address"] = np.repeat(np.array(_addresses(rng, ch.district[who]), dtype=object), 12)
    cols["prepaid_amount"] = _money(np.where(late, 0.0, np.round(bill * 0.1, -1)).ravel())
    cols["arrears_amount"] = _money(arrears.ravel())
    cols["one_meter_per_account"] = np.repeat(
        np.where(rng.random(m) < 0.9, "是", "否").astype(object), 12)
    cols["payment_details"] = _money(paid.ravel())
    cols["billing_period"] = np.tile(np.array([f"{y:04d}-{mo:02d}" for y, mo in months],
                                              dtype=object), m)
    avg3 = np.stack([usage[:, j + 3:j + 6].mean(1) for j in range(12)], 1)
    avg6 = np.stack([usage[:, j:j + 6].mean(1) for j in range(12)], 1)
    cols["avg_usage_3m"] = _money(avg3.ravel())
    cols["avg_usage_6m"] = _money(avg6.ravel())
    cols["in_arrears_now"] = np.where(late.ravel(), "是", "否").astype(object)
    stamps = np.array([_month_end(y, mo).isoformat() for y, mo in months], dtype=object)
    cols["stat_date"] = np.tile(stamps, m)
    cols["stat_reference_date"] = np.tile(stamps, m)
    return pd.DataFrame(cols)


def _persons(seed: int, index: int, n: int, seen: set[str]) -> pd.DataFrame:
    """Natural-person agricultural operators of one chunk: names, resident ids, districts."""
    rng = np.random.default_rng([seed, index, 7])
    farm_districts = [i for i, d in enumerate(DISTRICTS) if d[0] >= "120110"]
    district = rng.choice(farm_districts, size=n)
    births = [dt.date(1950, 1, 1) + dt.timedelta(days=int(d))
              for d in rng.integers(0, 45 * 365, n)]
    serial = rng.integers(0, 1000, n)
    ids = [_resident_id(f"{DISTRICTS[d][0]}{b:%Y%m%d}{s:03d}")
           for d, b, s in zip(district, births, serial, strict=True)]
    names = _person_names(rng, n)
    # Two persons may draw the same id; keep the first (a real id names one person).
    keep = []
    for position, value in enumerate(ids):
        if value not in seen:
            seen.add(value)
            keep.append(position)
    frame = pd.DataFrame({"name": names, "id_number": ids, "district": district})
    return frame.iloc[keep].reset_index(drop=True)


def _agriculture(ch: _Chunk, persons: pd.DataFrame, rng: np.random.Generator,
                 as_of: dt.date) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Items 5-7 for agricultural organisations of the chunk and its natural persons."""
    orgs = np.flatnonzero(ch.industry == len(INDUSTRIES) - 1)
    subjects = pd.DataFrame({
        "name": np.concatenate([ch.name[orgs], persons["name"].to_numpy(dtype=object)]),
        "id_type": [ID_TYPE_USCC] * len(orgs) + [ID_TYPE_RESIDENT] * len(persons),
        "id_number": np.concatenate([ch.uscc[orgs], persons["id_number"].to_numpy(dtype=object)]),
        "district": np.concatenate([ch.district[orgs], persons["district"].to_numpy()]),
    })
    s = len(subjects)
    insurance, subsidies, growers = [], [], []
    kinds = ("种植业保险", "养殖业保险", "农机保险")
    for i in np.flatnonzero(rng.random(s) < 0.65):
        row = subjects.iloc[i]
        if rng.random() < 0.75:
            for k in rng.choice(3, size=int(rng.integers(1, 3)), replace=False):
                start = as_of - dt.timedelta(days=int(rng.integers(30, 330)))
                end = start.replace(year=start.year + 1) - dt.timedelta(days=1) if not (
                    start.month == 2 and start.day == 29) else dt.date(start.year + 1, 2, 28)
                scale = float(np.round(rng.uniform(20, 800), 1))
                claims = "已理赔" if rng.random() < 0.15 else ""
                insurance.append([row["name"], row["id_type"], row["id_number"], "是", kinds[k],
                                  str(scale), _money(np.array([scale * 600]))[0],
                                  start.isoformat(), end.isoformat(), claims])
        else:
            insurance.append([row["name"], row["id_type"], row["id_number"], "否", "", "", "",
                              "", "", ""])
    subsidy_types = ("耕地地力保护补贴", "农机购置补贴", "种粮农民一次性补贴")
    for i in np.flatnonzero(rng.random(s) < 0.7):
        row = subjects.iloc[i]
        for k in rng.choice(3, size=int(rng.integers(1, 4)), replace=False):
            stamp = as_of - dt.timedelta(days=int(rng.integers(0, 360)))
            subsidies.append([row["name"], row["id_type"], row["id_number"], subsidy_types[k],
                              _money(np.array([rng.uniform(500, 30_000)]))[0], stamp.isoformat()])
    for i in np.flatnonzero(rng.random(s) < 0.4):
        row = subjects.iloc[i]
        growers.append([row["name"], row["id_type"], row["id_number"],
                        _addresses(rng, np.array([row["district"]]))[0]])

    def frame(code: str, rows: list[list[str]], names: list[str]) -> pd.DataFrame:
        item = get_item(code)
        cols = _base_columns(item, len(rows))
        cols["data_code"] = _data_codes(item.number, ch.index, len(rows))
        body = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(
            columns=names)
        for name in names:
            cols[name] = body[name].to_numpy(dtype=object)
        return pd.DataFrame(cols)

    return (
        frame("agri_insurance", insurance,
              ["operator_name", "id_type", "id_number", "is_insured", "insurance_type",
               "insured_scale", "insured_amount", "policy_valid_from", "policy_valid_to",
               "claims_info"]),
        frame("agri_subsidies", subsidies,
              ["operator_name", "id_type", "id_number", "subsidy_type", "subsidy_amount",
               "stat_time"]),
        frame("large_growers", growers, ["grower_name", "id_type", "id_number", "address"]),
    )


def _loan_books(ch: _Chunk, rng: np.random.Generator, banks: int) -> list[pd.DataFrame]:
    """Each bank's borrowers from this chunk: the bank's features and the 12-month outcome."""
    size_risk = np.array([SIZES[s][5] for s in ch.size])
    logit = -3.1 + 1.0 * ch.z_bank + 1.25 * ch.z_platform + size_risk
    books = []
    for bank in range(banks):
        share = BANK_SHARES[bank % len(BANK_SHARES)]
        who = np.flatnonzero(rng.random(ch.n) < share)
        m = len(who)
        zb = ch.z_bank[who]
        size = ch.size[who]
        rating = np.clip(np.round(5 + 1.6 * zb + rng.normal(0, 1.3, m)), 1, 10).astype(int)
        amount = np.round(np.array([SIZES[s][4] for s in size]) * 2_000 * np.exp(
            rng.normal(0, 0.5, m)), -3)
        default = rng.random(m) < _sigmoid(logit[who])
        books.append(pd.DataFrame({
            "uscc": ch.uscc[who],
            "loan_id": [f"B{bank + 1}L{ch.start + i:09d}" for i in who],
            "loan_amount": amount,
            "term_months": rng.choice([12, 24, 36], size=m, p=[0.5, 0.3, 0.2]),
            "interest_rate": np.round(3.45 + 0.35 * rating + rng.normal(0, 0.4, m), 2),
            "collateralised": (rng.random(m) < np.where(size >= 2, 0.7, 0.35)).astype(int),
            "years_with_bank": np.round(rng.gamma(2.0, 2.5, m), 1),
            "internal_rating": rating,
            "max_days_past_due_12m": np.where(
                rng.random(m) < _sigmoid(-2.2 + 1.2 * zb), rng.integers(1, 90, m), 0),
            "credit_utilisation": np.round(_sigmoid(0.2 + 0.7 * zb + rng.normal(0, 0.9, m)), 3),
            "default_12m": default.astype(int),
        }))
    return books


# --------------------------------------------------------------------------- the city


def generate_city(
    out_dir: str | Path,
    *,
    enterprises: int,
    seed: int = 0,
    as_of: dt.date = DEFAULT_AS_OF,
    dirty_rate: float = 0.01,
    banks: int = 3,
    items: tuple[str, ...] | None = None,
    csv_only: bool = False,
    progress: Callable[[str], None] | None = None,
) -> CityManifest:
    """Write the provider files, loan books and ``manifest.json`` of a synthetic city.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created; existing generated files are replaced).
    enterprises : int
        Number of enterprises (≥ 1); natural-person agricultural operators
        come on top (3% of that number).
    seed : int
        Everything is a deterministic function of the seed.
    as_of : date
        The last day of the data; loan outcomes are the 12 months after it.
    dirty_rate : float
        Share of rows in every file that get one defect each (0 for clean files).
    banks : int
        Number of loan books to write.
    items : tuple of str, optional
        Item codes to write (default: all ten). The benchmark asks for
        electricity only.
    csv_only : bool
        Write every item as UTF-8 CSV (no GBK, no XLSX), e.g. for benchmarks.
    progress : callable, optional
        Called with a line of text after each chunk.

    Returns
    -------
    CityManifest
        Also written to ``out_dir/manifest.json``.
    """
    if enterprises < 1:
        raise ValueError("enterprises must be at least 1")
    if not 0 <= dirty_rate < 0.5:
        raise ValueError("dirty_rate must be in [0, 0.5)")
    started = time.perf_counter()
    out = Path(out_dir)
    (out / "banks").mkdir(parents=True, exist_ok=True)
    wanted = items or tuple(FILE_LAYOUT)
    writers: dict[str, _Writer] = {}
    files: dict[str, FileManifest] = {}
    for code in wanted:
        item = get_item(code)
        name, file_format, encoding = FILE_LAYOUT[code]
        if csv_only:
            name, file_format, encoding = f"{code}.csv", "csv", "utf-8"
        writers[code] = _Writer(out / name, item, file_format, encoding)
        files[code] = FileManifest(item=code, file=name, file_format=file_format,
                                   encoding=encoding, provider=item.providers[0])
    bank_paths = [out / "banks" / f"bank_{b + 1}.csv" for b in range(banks)]
    bank_stats = [{"bank": f"bank_{b + 1}", "file": f"banks/bank_{b + 1}.csv", "rows": 0,
                   "defaults": 0, "id_column": "uscc", "label_column": "default_12m",
                   "features": list(BANK_FEATURES)} for b in range(banks)]
    population = {"enterprises_by_industry": {i[0]: 0 for i in INDUSTRIES},
                  "enterprises_by_size": {s[0]: 0 for s in SIZES}, "persons": 0,
                  "organisation_code_warnings": 0}
    persons_total = 0
    seen_persons: set[str] = set()
    for path in bank_paths:
        path.unlink(missing_ok=True)
    try:
        for index, start in enumerate(range(0, enterprises, CHUNK)):
            n = min(CHUNK, enterprises - start)
            ch = _enterprises(seed, index, start, n, dirty_rate)
            persons = _persons(seed, index, max(1, round(n * 0.03)), seen_persons)
            persons_total += len(persons)
            for k in range(len(INDUSTRIES)):
                population["enterprises_by_industry"][INDUSTRIES[k][0]] += int(
                    (ch.industry == k).sum())
            for k in range(len(SIZES)):
                population["enterprises_by_size"][SIZES[k][0]] += int((ch.size == k).sum())
            population["organisation_code_warnings"] += int(ch.org_warning.sum())
            frames = _chunk_frames(ch, persons, seed, as_of, wanted)
            warned = set(ch.uscc[ch.org_warning].tolist())
            for number, code in enumerate(wanted):
                frame = frames[code]
                item = get_item(code)
                rng = np.random.default_rng([seed, index, 100 + number])
                zero_width_ok = (files[code].encoding or "").startswith("utf-8") or (
                    files[code].file_format == "xlsx")
                frame, dirty, normalised, is_dirty = _inject(
                    item, frame, rng, dirty_rate, dirty_rate / 2, zero_width_ok)
                offset = writers[code].rows + 2  # file row of the chunk's first row
                files[code].dirty += [{**d, "row": d["row"] + offset} for d in dirty]
                files[code].normalised += [{**d, "row": d["row"] + offset} for d in normalised]
                if warned:
                    entity = frame[item.entity].map(_clean_entity).to_numpy(dtype=object)
                    files[code].warning_rows += int(
                        (np.isin(entity, list(warned)) & ~is_dirty).sum())
                writers[code].write(frame)
            rng_bank = np.random.default_rng([seed, index, 50])
            for b, book in enumerate(_loan_books(ch, rng_bank, banks)):
                book.to_csv(bank_paths[b], mode="a", header=index == 0, index=False)
                bank_stats[b]["rows"] += len(book)
                bank_stats[b]["defaults"] += int(book["default_12m"].sum())
            if progress is not None:
                progress(f"generated enterprises {start + n:,} of {enterprises:,}")
    finally:
        for writer in writers.values():
            writer.close()
    for code, writer in writers.items():
        files[code].rows = writer.rows
    population["persons"] = persons_total
    manifest = CityManifest(
        generator_version=GENERATOR_VERSION, seed=seed, enterprises=enterprises,
        persons=persons_total, as_of=as_of.isoformat(), dirty_rate=dirty_rate, files=files,
        banks=bank_stats, population=population)
    manifest.seconds = round(time.perf_counter() - started, 2)
    (out / "manifest.json").write_text(manifest.to_json(), encoding="utf-8")
    return manifest


_HALF_WIDTH = {0x200B: None, **{c + 0xFEE0: c for c in range(0x21, 0x7F)}}


def _clean_entity(value: object) -> object:
    """The entity id as written before any normalisable spelling was injected."""
    return str(value).translate(_HALF_WIDTH)


def _chunk_frames(ch: _Chunk, persons: pd.DataFrame, seed: int, as_of: dt.date,
                  wanted: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """All item frames of one chunk, each from its own random stream (order-independent)."""
    frames: dict[str, pd.DataFrame] = {}

    def stream(k: int) -> np.random.Generator:
        return np.random.default_rng([seed, ch.index, 10 + k])

    if {"medical_contributions", "medical_arrears", "medical_changes"} & set(wanted):
        (frames["medical_contributions"], frames["medical_arrears"],
         frames["medical_changes"]) = _medical(ch, stream(1), as_of)
    if "designated_institutions" in wanted:
        frames["designated_institutions"] = _designated(ch, stream(4))
    if {"agri_insurance", "agri_subsidies", "large_growers"} & set(wanted):
        (frames["agri_insurance"], frames["agri_subsidies"],
         frames["large_growers"]) = _agriculture(ch, persons, stream(5), as_of)
    if "water" in wanted:
        frames["water"] = _utility(ch, stream(8), as_of, "water")
    if "electricity" in wanted:
        frames["electricity"] = _electricity(ch, stream(9), as_of)
    if "gas" in wanted:
        frames["gas"] = _utility(ch, stream(10), as_of, "gas")
    return frames
