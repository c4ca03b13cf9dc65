"""Derived enterprise features as of a date, stored as versioned snapshots.

Why definitions live next to the code that computes them
--------------------------------------------------------
The platform's partial model is trained on these numbers, and a bank must
be able to check what each one means (DESIGN §4.1: published, checkable
platform feature definitions are a mitigation against crafted columns).
So every feature is a :class:`FeatureDefinition` with its written
definition, its source items and its value when the enterprise has no data;
``creditlab features definitions`` prints them, and a snapshot records the
definitions' version.

Rules every feature obeys
-------------------------
* **No look-ahead**: only records whose data date is on or before the as-of
  date are read (a monthly record's data date is the last day of its month,
  so an unfinished month is never used), and windows end at the as-of month.
* **Current records only**: superseded versions and withdrawn (repaired)
  records are invisible, so a credit repair changes the next snapshot.
* Windows are calendar months ending with the as-of month ``M``: "12
  months" means ``M-11 … M``.
* Every value is a finite number; the default for "no data" is stated per
  feature (0 for flags, sums and counts; the ``*_has_*`` flags tell "no
  data" apart from "zero").

Population: every enterprise (by USCC) with at least one current record on
or before the as-of date in an enterprise item, plus agricultural operators
that are organisations (证件类型 统一社会信用代码). Natural persons are not
scored by this lab.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.engine import Connection

from lab.catalog import ID_TYPE_USCC
from lab.errors import CreditLabError
from lab.store.bulk import bulk_insert
from lab.store.engine import Store
from lab.store.models import STATE_CURRENT, FeatureRow, FeatureSnapshot, record_model

__all__ = [
    "DEFINITIONS",
    "DEFINITIONS_VERSION",
    "FeatureDefinition",
    "SnapshotInfo",
    "compute_features",
    "export_snapshot",
    "load_snapshot",
    "take_snapshot",
]

_VERSION = "2025.1"


@dataclass(frozen=True)
class FeatureDefinition:
    """One derived feature: its name, sources, written definition and no-data default."""

    name: str
    sources: tuple[str, ...]
    definition: str
    default: float = 0.0


DEFINITIONS: tuple[FeatureDefinition, ...] = (
    FeatureDefinition("med_has_insurance", ("medical_contributions",),
                      "1 if the enterprise paid employee medical insurance for any month of the "
                      "24 months M-23…M, else 0"),
    FeatureDefinition("med_headcount_latest", ("medical_contributions",),
                      "insured headcount (近两年每月参保人数) of the latest month in M-23…M"),
    FeatureDefinition("med_headcount_trend_24m", ("medical_contributions",),
                      "least-squares slope of ln(headcount) per month over M-23…M (needs 6 "
                      "months; 0 otherwise): -0.02 is a 2% fall a month"),
    FeatureDefinition("med_headcount_volatility_24m", ("medical_contributions",),
                      "standard deviation of the month-on-month change of ln(headcount) over "
                      "M-23…M (needs 6 months; 0 otherwise)"),
    FeatureDefinition("med_months_since_normal_payment", ("medical_contributions",),
                      "months from the latest 最近一次正常缴费月份 reported in M-23…M to M, "
                      "capped at 24; 24 if insured but none reported; 0 if not insured"),
    FeatureDefinition("med_deferred_amount_12m", ("medical_contributions",),
                      "sum of 近两年每月缓缴金额 (yuan) over M-11…M"),
    FeatureDefinition("med_deferred_months_12m", ("medical_contributions",),
                      "number of months in M-11…M with a deferred contribution > 0"),
    FeatureDefinition("med_arrears_amount_24m", ("medical_arrears",),
                      "sum of 近两年欠缴金额 (yuan) whose 欠缴所属期 is in M-23…M"),
    FeatureDefinition("med_arrears_months_24m", ("medical_arrears",),
                      "number of distinct 欠缴所属期 months in M-23…M"),
    FeatureDefinition("med_headcount_change_rate_q", ("medical_changes",),
                      "the latest 近一季度单位月度参保人数变化率 (%) with 统计时间 in the 12 "
                      "months before the as-of date"),
    FeatureDefinition("elec_has_account", ("electricity",),
                      "1 if the enterprise has a grid account reported in M-11…M"),
    FeatureDefinition("elec_in_arrears_now", ("electricity",),
                      "1 if any of its accounts is in arrears (当前是否欠费) in its latest row"),
    FeatureDefinition("elec_arrears_months_12m", ("electricity",),
                      "number of months in M-11…M in which any account was in arrears"),
    FeatureDefinition("elec_arrears_amount_latest", ("electricity",),
                      "sum over accounts of 欠费金额 (yuan) in each account's latest row"),
    FeatureDefinition("elec_spend_trend_3_12", ("electricity",),
                      "Σ 近3个月月均用电金额 / Σ 近一年月均用电金额 - 1 over the accounts' latest "
                      "rows (0 without spend)"),
    FeatureDefinition("elec_spend_trend_6_12", ("electricity",),
                      "Σ 近6个月月均用电金额 / Σ 近一年月均用电金额 - 1 over the accounts' latest "
                      "rows (0 without spend)"),
    FeatureDefinition("elec_log_spend_12m", ("electricity",),
                      "ln(1 + Σ 近一年月均用电金额) over the accounts' latest rows: a size "
                      "measure"),
    FeatureDefinition("elec_capacity_utilisation", ("electricity",),
                      "Σ 运行容量 / Σ 合同容量 over the accounts' latest rows (0 without a "
                      "contracted capacity)"),
    FeatureDefinition("elec_violations_2y", ("electricity",),
                      "Σ 近两年违约次数 over the accounts' latest rows"),
    FeatureDefinition("water_has_account", ("water",), "1 if a water bill is in M-11…M"),
    FeatureDefinition("water_in_arrears_now", ("water",),
                      "1 if the latest bill of any water account is in arrears"),
    FeatureDefinition("water_arrears_months_12m", ("water",),
                      "number of billing months in M-11…M with any water account in arrears"),
    FeatureDefinition("water_spend_trend_3_12", ("water",),
                      "mean monthly payment (缴纳水费明细) over M-2…M / over M-11…M - 1"),
    FeatureDefinition("water_usage_trend_3_6", ("water",),
                      "Σ 近3个月月均用水量 / Σ 近6个月月均用水量 - 1 over the latest bills"),
    FeatureDefinition("gas_has_account", ("gas",), "1 if a gas bill is in M-11…M"),
    FeatureDefinition("gas_in_arrears_now", ("gas",),
                      "1 if the latest bill of any gas account is in arrears"),
    FeatureDefinition("gas_arrears_months_12m", ("gas",),
                      "number of billing months in M-11…M with any gas account in arrears"),
    FeatureDefinition("gas_spend_trend_3_12", ("gas",),
                      "mean monthly payment (缴纳燃气费明细) over M-2…M / over M-11…M - 1"),
    FeatureDefinition("utility_arrears_now", ("electricity", "water", "gas"),
                      "1 if electricity, water or gas is in arrears now (any of the three flags)"),
    FeatureDefinition("agri_insured_now", ("agri_insurance",),
                      "1 if an agricultural policy with 是否投保 = 是 covers the as-of date"),
    FeatureDefinition("agri_subsidy_amount_12m", ("agri_subsidies",),
                      "Σ 补贴金额 (yuan) with 统计时间 in the 365 days up to the as-of date"),
    FeatureDefinition("designated_institution", ("designated_institutions",),
                      "1 if the enterprise is a designated private medical institution"),
)
FEATURE_NAMES: tuple[str, ...] = tuple(d.name for d in DEFINITIONS)
DEFINITIONS_VERSION = _VERSION + "-" + hashlib.sha256(
    json.dumps([(d.name, d.sources, d.definition, d.default) for d in DEFINITIONS],
               ensure_ascii=False).encode()).hexdigest()[:8]


class SnapshotError(CreditLabError):
    """A snapshot cannot be taken, found or exported as asked."""


class SnapshotInfo(BaseModel):
    """What a stored snapshot is."""

    id: int
    as_of: dt.date
    created_at: dt.datetime
    created_by: str
    definitions_version: str
    feature_names: list[str]
    n_entities: int
    content_sha256: str
    note: str | None


# --------------------------------------------------------------------------- reading records


def _month_index(period: pd.Series) -> pd.Series:
    """'YYYY-MM' → year*12 + month-1 (an integer month axis)."""
    text = period.astype(str)
    return text.str[:4].astype(int) * 12 + text.str[5:7].astype(int) - 1


def _records(connection: Connection, code: str, columns: list[str], as_of: dt.date
             ) -> pd.DataFrame:
    """Current records of an item with data date ≤ as-of, the named columns plus entity_key."""
    model = record_model(code)
    wanted = [model.entity_key, *(getattr(model, c) for c in columns)]
    query = select(*wanted).where(model.state == STATE_CURRENT, model.data_date <= as_of)
    rows = connection.execute(query).all()
    return pd.DataFrame(rows, columns=["entity_key", *columns])


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce").astype(float).fillna(0.0)


def _latest_per_account(frame: pd.DataFrame, account: str, order: str) -> pd.DataFrame:
    return frame.sort_values([account, order]).drop_duplicates(account, keep="last")


def _ratio(top: pd.Series, bottom: pd.Series) -> pd.Series:
    out = top / bottom.where(bottom > 0) - 1
    return out.fillna(0.0)


# --------------------------------------------------------------------------- per source


def _medical(connection: Connection, as_of: dt.date, m: int) -> pd.DataFrame:
    frame = _records(connection, "medical_contributions",
                     ["period", "insured_headcount", "last_normal_payment_month",
                      "deferred_amount"], as_of)
    out = pd.DataFrame(index=pd.Index([], name="entity_key"))
    if not frame.empty:
        frame["month"] = _month_index(frame["period"])
        frame = frame[frame["month"].between(m - 23, m)]
    if not frame.empty:
        frame["headcount"] = _num(frame, "insured_headcount")
        frame["deferred"] = _num(frame, "deferred_amount")
        frame = frame.sort_values(["entity_key", "month"])
        grouped = frame.groupby("entity_key", sort=True)
        out = pd.DataFrame({"med_has_insurance": 1.0,
                            "med_headcount_latest": grouped["headcount"].last()})
        log_h = np.log(frame["headcount"].clip(lower=1))
        frame["log_h"] = log_h
        frame["dm"] = frame["month"] - frame.groupby("entity_key")["month"].transform("mean")
        frame["dl"] = frame["log_h"] - frame.groupby("entity_key")["log_h"].transform("mean")
        sxy = (frame["dm"] * frame["dl"]).groupby(frame["entity_key"]).sum()
        sxx = (frame["dm"] ** 2).groupby(frame["entity_key"]).sum()
        count = grouped["month"].count()
        out["med_headcount_trend_24m"] = (sxy / sxx.where(sxx > 0)).where(count >= 6).fillna(0.0)
        change = frame.groupby("entity_key")["log_h"].diff()
        vol = change.groupby(frame["entity_key"]).std()
        out["med_headcount_volatility_24m"] = vol.where(count >= 6).fillna(0.0)
        paid = frame.dropna(subset=["last_normal_payment_month"])
        paid = paid[paid["last_normal_payment_month"].astype(str) != ""]
        latest_paid = _month_index(paid["last_normal_payment_month"]).groupby(
            paid["entity_key"]).max()
        since = (m - latest_paid).clip(lower=0, upper=24)
        out["med_months_since_normal_payment"] = since.reindex(out.index).fillna(24.0)
        recent = frame[frame["month"] >= m - 11]
        out["med_deferred_amount_12m"] = recent.groupby("entity_key")["deferred"].sum()
        out["med_deferred_months_12m"] = (recent["deferred"] > 0).groupby(
            recent["entity_key"]).sum()

    arrears = _records(connection, "medical_arrears", ["arrears_period", "arrears_amount"], as_of)
    if not arrears.empty:
        arrears["month"] = _month_index(arrears["arrears_period"])
        arrears = arrears[arrears["month"].between(m - 23, m)]
        arrears["amount"] = _num(arrears, "arrears_amount")
        grouped = arrears.groupby("entity_key")
        out = out.join(pd.DataFrame({"med_arrears_amount_24m": grouped["amount"].sum(),
                                     "med_arrears_months_24m": grouped["month"].nunique()}),
                       how="outer")

    changes = _records(connection, "medical_changes", ["stat_time", "headcount_change_rate_q"],
                       as_of)
    if not changes.empty:
        changes = changes[pd.to_datetime(changes["stat_time"]) > pd.Timestamp(
            as_of - dt.timedelta(days=365))]
        latest = changes.sort_values("stat_time").drop_duplicates("entity_key", keep="last")
        out = out.join(latest.set_index("entity_key")["headcount_change_rate_q"].astype(float)
                       .rename("med_headcount_change_rate_q"), how="outer")
    return out


def _electricity(connection: Connection, as_of: dt.date, m: int) -> pd.DataFrame:
    frame = _records(connection, "electricity",
                     ["grid_account_no", "stat_date", "in_arrears_now", "arrears_amount",
                      "avg_spend_3m", "avg_spend_6m", "avg_spend_12m",
                      "operating_capacity_kva", "contract_capacity_kva", "violations_2y"], as_of)
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="entity_key"))
    frame["month"] = pd.to_datetime(frame["stat_date"]).dt.year * 12 + pd.to_datetime(
        frame["stat_date"]).dt.month - 1
    frame = frame[frame["month"].between(m - 11, m)].copy()
    frame["arrears"] = frame["in_arrears_now"].fillna(False).astype(bool)
    latest = _latest_per_account(frame, "grid_account_no", "stat_date").copy()
    for column in ("avg_spend_3m", "avg_spend_6m", "avg_spend_12m", "operating_capacity_kva",
                   "contract_capacity_kva", "arrears_amount", "violations_2y"):
        latest[column] = _num(latest, column)
    sums = latest.groupby("entity_key")[[
        "avg_spend_3m", "avg_spend_6m", "avg_spend_12m", "operating_capacity_kva",
        "contract_capacity_kva", "arrears_amount", "violations_2y"]].sum()
    contract = sums["contract_capacity_kva"]
    months_in_arrears = frame[frame["arrears"]].groupby("entity_key")["month"].nunique()
    return pd.DataFrame({
        "elec_has_account": 1.0,
        "elec_in_arrears_now": latest.groupby("entity_key")["arrears"].any().astype(float),
        "elec_arrears_months_12m": months_in_arrears,
        "elec_arrears_amount_latest": sums["arrears_amount"],
        "elec_spend_trend_3_12": _ratio(sums["avg_spend_3m"], sums["avg_spend_12m"]),
        "elec_spend_trend_6_12": _ratio(sums["avg_spend_6m"], sums["avg_spend_12m"]),
        "elec_log_spend_12m": np.log1p(sums["avg_spend_12m"]),
        "elec_capacity_utilisation": (sums["operating_capacity_kva"]
                                      / contract.where(contract > 0)).fillna(0.0),
        "elec_violations_2y": sums["violations_2y"],
    })


def _utility(connection: Connection, code: str, as_of: dt.date, m: int) -> pd.DataFrame:
    columns = ["account_no", "billing_period", "in_arrears_now", "payment_details"]
    if code == "water":
        columns += ["avg_usage_3m", "avg_usage_6m"]
    frame = _records(connection, code, columns, as_of)
    if frame.empty:
        return pd.DataFrame(index=pd.Index([], name="entity_key"))
    frame["month"] = _month_index(frame["billing_period"])
    frame = frame[frame["month"].between(m - 11, m)].copy()
    frame["arrears"] = frame["in_arrears_now"].fillna(False).astype(bool)
    frame["paid"] = _num(frame, "payment_details")
    latest = _latest_per_account(frame, "account_no", "billing_period")
    per_month = frame.groupby(["entity_key", "month"])["paid"].sum().reset_index()
    mean12 = per_month.groupby("entity_key")["paid"].mean()
    mean3 = per_month[per_month["month"] >= m - 2].groupby("entity_key")["paid"].mean()
    out = pd.DataFrame({
        f"{code}_has_account": 1.0,
        f"{code}_in_arrears_now": latest.groupby("entity_key")["arrears"].any().astype(float),
        f"{code}_arrears_months_12m": frame[frame["arrears"]].groupby("entity_key")[
            "month"].nunique(),
        f"{code}_spend_trend_3_12": _ratio(mean3.reindex(mean12.index).fillna(0.0), mean12),
    })
    if code == "water":
        usage3 = _num(latest, "avg_usage_3m").groupby(latest["entity_key"]).sum()
        usage6 = _num(latest, "avg_usage_6m").groupby(latest["entity_key"]).sum()
        out["water_usage_trend_3_6"] = _ratio(usage3, usage6)
    return out


def _agriculture(connection: Connection, as_of: dt.date) -> pd.DataFrame:
    out = pd.DataFrame(index=pd.Index([], name="entity_key"))
    policies = _records(connection, "agri_insurance",
                        ["id_type", "is_insured", "policy_valid_from", "policy_valid_to"], as_of)
    policies = policies[policies["id_type"] == ID_TYPE_USCC] if not policies.empty else policies
    if not policies.empty:
        active = policies[policies["is_insured"].fillna(False).astype(bool)
                          & (pd.to_datetime(policies["policy_valid_from"]) <= pd.Timestamp(as_of))
                          & (pd.to_datetime(policies["policy_valid_to"]) >= pd.Timestamp(as_of))]
        insured = pd.Series(1.0, index=pd.Index(active["entity_key"].unique()))
        everyone = pd.Series(0.0, index=pd.Index(policies["entity_key"].unique()))
        out = out.join(insured.combine_first(everyone).rename("agri_insured_now"), how="outer")
    grants = _records(connection, "agri_subsidies", ["id_type", "subsidy_amount", "stat_time"],
                      as_of)
    grants = grants[grants["id_type"] == ID_TYPE_USCC] if not grants.empty else grants
    if not grants.empty:
        recent = grants[pd.to_datetime(grants["stat_time"]) > pd.Timestamp(
            as_of - dt.timedelta(days=365))]
        total = _num(recent, "subsidy_amount").groupby(recent["entity_key"]).sum()
        out = out.join(total.rename("agri_subsidy_amount_12m"), how="outer")
    institutions = _records(connection, "designated_institutions", ["uscc"], as_of)
    if not institutions.empty:
        flag = pd.Series(1.0, index=pd.Index(institutions["entity_key"].unique()))
        out = out.join(flag.rename("designated_institution"), how="outer")
    return out


def compute_features(store: Store, as_of: dt.date) -> pd.DataFrame:
    """All features of every enterprise as of ``as_of`` (index: USCC; columns: FEATURE_NAMES).

    Reads current records only, with data date ≤ ``as_of`` (see the module
    docstring); fills the stated defaults; returns rows sorted by USCC.
    """
    m = as_of.year * 12 + as_of.month - 1
    if as_of != _month_end(as_of):
        m -= 1  # the as-of month is not complete: the window ends with the month before
    with store.engine.connect() as connection:
        parts = [_medical(connection, as_of, m), _electricity(connection, as_of, m),
                 _utility(connection, "water", as_of, m), _utility(connection, "gas", as_of, m),
                 _agriculture(connection, as_of)]
    frame = pd.concat(parts, axis=1, join="outer", sort=True)
    frame.index.name = "uscc"
    for definition in DEFINITIONS:
        if definition.name not in frame:
            frame[definition.name] = np.nan
    frame = frame[list(FEATURE_NAMES)].astype(float)
    for definition in DEFINITIONS:
        frame[definition.name] = frame[definition.name].fillna(definition.default)
    flags = frame[["elec_in_arrears_now", "water_in_arrears_now", "gas_in_arrears_now"]]
    frame["utility_arrears_now"] = (flags.max(axis=1) > 0).astype(float)
    return frame.sort_index()


def _month_end(day: dt.date) -> dt.date:
    following = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return following - dt.timedelta(days=1)


def _frame_sha256(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, float_format="%.10g")
    return hashlib.sha256(buffer.getvalue().encode()).hexdigest()


def take_snapshot(store: Store, as_of: dt.date, *, actor: str = "features",
                  note: str | None = None) -> SnapshotInfo:
    """Compute the features as of ``as_of`` and store them as a new numbered snapshot.

    Raises
    ------
    SnapshotError
        If ``as_of`` lies after today (every record would look months stale,
        and the snapshot would silently change as later data arrives), or no
        enterprise has a record on or before it (an empty snapshot trains nothing).
    """
    if as_of > dt.date.today():
        raise SnapshotError(f"the as-of date {as_of} lies in the future. Remedy: take the "
                            "snapshot as of today or an earlier date")
    frame = compute_features(store, as_of)
    if frame.empty:
        raise SnapshotError(f"no enterprise has a current record on or before {as_of}, so the "
                            "snapshot would be empty. Remedy: ingest the providers' files first, "
                            "or choose a later as-of date")
    digest = _frame_sha256(frame)
    with store.engine.begin() as connection:
        from sqlalchemy.orm import Session

        session = Session(bind=connection)
        snapshot = FeatureSnapshot(as_of=as_of, created_by=actor,
                                   definitions_version=DEFINITIONS_VERSION,
                                   feature_names=json.dumps(list(FEATURE_NAMES)),
                                   n_entities=len(frame), content_sha256=digest, note=note)
        session.add(snapshot)
        session.flush()
        values = frame.to_numpy()
        rows = ((snapshot.id, key, json.dumps(dict(zip(FEATURE_NAMES, map(float, vals),
                                                       strict=True))))
                for key, vals in zip(frame.index.tolist(), values.tolist(), strict=True))
        bulk_insert(connection, FeatureRow.__tablename__, ["snapshot_id", "entity_key", "values"],
                    rows, len(frame))
        info = _info(snapshot)
        session.close()
    return info


def _info(snapshot: FeatureSnapshot) -> SnapshotInfo:
    return SnapshotInfo(id=snapshot.id, as_of=snapshot.as_of, created_at=snapshot.created_at,
                        created_by=snapshot.created_by,
                        definitions_version=snapshot.definitions_version,
                        feature_names=json.loads(snapshot.feature_names),
                        n_entities=snapshot.n_entities, content_sha256=snapshot.content_sha256,
                        note=snapshot.note)


def list_snapshots(store: Store) -> list[SnapshotInfo]:
    """Every stored snapshot, newest first."""
    with store.session() as session:
        rows = session.scalars(select(FeatureSnapshot).order_by(FeatureSnapshot.id.desc())).all()
        return [_info(row) for row in rows]


def load_snapshot_info(store: Store, snapshot_id: int) -> SnapshotInfo:
    """A stored snapshot's metadata (no values)."""
    with store.session() as session:
        snapshot = session.get(FeatureSnapshot, snapshot_id)
        if snapshot is None:
            raise SnapshotError(f"there is no feature snapshot {snapshot_id}. Remedy: "
                                "`creditlab features list` shows the stored ones")
        return _info(snapshot)


def load_snapshot(store: Store, snapshot_id: int) -> tuple[SnapshotInfo, pd.DataFrame]:
    """A stored snapshot's metadata and values (index: USCC, columns: its feature names)."""
    info = load_snapshot_info(store, snapshot_id)
    with store.session() as session:
        rows = session.execute(select(FeatureRow.entity_key, FeatureRow.values).where(
            FeatureRow.snapshot_id == snapshot_id).order_by(FeatureRow.entity_key)).all()
    frame = pd.DataFrame.from_records([json.loads(v) for _, v in rows],
                                      index=pd.Index([k for k, _ in rows], name="uscc"),
                                      columns=info.feature_names)
    return info, frame


def export_snapshot(store: Store, snapshot_id: int, path: str | Path,
                    features: list[str] | None = None) -> Path:
    """Write a snapshot as the platform's feature CSV for an experiment, plus a sidecar.

    The CSV has ``uscc`` and the features; ``<path>.snapshot.json`` names the
    snapshot (id, as-of date, definitions version, content hash), so the
    experiment that reads the CSV is traceable to the exact snapshot.
    """
    info, frame = load_snapshot(store, snapshot_id)
    if features is not None:
        unknown = [f for f in features if f not in frame.columns]
        if unknown:
            raise SnapshotError(f"snapshot {snapshot_id} has no feature {unknown[0]!r}. Remedy: "
                                f"use some of: {', '.join(frame.columns)}")
        frame = frame[features]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, float_format="%.10g")
    sidecar = out.with_name(out.name + ".snapshot.json")
    sidecar.write_text(json.dumps({**info.model_dump(mode="json"),
                                   "exported_features": list(frame.columns),
                                   "file": out.name,
                                   "file_sha256": hashlib.sha256(out.read_bytes()).hexdigest()},
                                  ensure_ascii=False, indent=2))
    return out
