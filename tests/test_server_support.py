"""Shared set-up of the serving tests: a model trained by the main job, both apps, a seeded store.

Not a test module of its own (it holds no tests); the ``test_server*`` modules
import its fixtures. The expensive part — training the breast model through
the in-process protocol with 1024-bit *test-only* keys — runs once per
session (cached here), whichever module asks first.

The breast data's ids are mapped to generated, valid USCCs (GB 32100 check
character, GB 11714 organisation code), because serving is keyed by USCC.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from crypto.identifiers import uscc_check_char
from lab import repair
from lab.catalog import CATALOG, ID_TYPE_RESIDENT
from lab.store import open_store
from lab.store.models import Batch, record_model
from server.config import BankSettings, PlatformSettings
from server.platform.db import Database
from server.platform.tables import Role

ROOT = Path(__file__).resolve().parents[1]
PEPPER = "test-pepper-0123456789abcdef"
BANK_CLIENT_KEY = "loan-system-key-for-tests"
BANK_A = "甲银行"
"""The bank institution that trained the test model with the platform (its part is served to it)."""
ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def make_uscc(n: int) -> str:
    """A valid USCC for number ``n``: Tianjin division 120000, GB 11714 org code, check char."""
    body = f"{n:08d}"
    check = 11 - sum(int(c) * w for c, w in zip(body, ORG_WEIGHTS, strict=True)) % 11
    org = body + {10: "X", 11: "0"}.get(check, str(check))
    first17 = "91120000" + org
    return first17 + uscc_check_char(first17)


def feature_items(names: list[str]) -> dict[str, int]:
    """The breast platform features assigned to catalog items round-robin (a test mapping)."""
    return {name: (i % 10) + 1 for i, name in enumerate(names)}


@dataclass
class TrainedRun:
    """A model trained by the main job on breast data keyed by USCC."""

    run_dir: Path
    bank_csv: Path
    platform_csv: Path
    usccs: list[str]
    offline_logits: dict[str, float]
    run_test_logits: np.ndarray
    platform_features: list[str]


_CACHE: dict[str, TrainedRun] = {}


def offline_logits(run_dir: Path, bank_csv: Path, platform_csv: Path) -> dict[str, float]:
    """Offline scoring of every enterprise in both files, as the run's evaluation does it:
    each saved part on its own standardised matrix (all rows at once), logits added."""
    from lab.datasets import load_party_table
    from models.persistence import load_part

    halves = []
    for role, path in (("bank", bank_csv), ("platform", platform_csv)):
        part, standardiser, _ = load_part(run_dir / role / "model")
        assert standardiser is not None
        table = load_party_table(path, id_column="id", features=part.feature_names)
        logits = part.partial_logit(standardiser.transform(table.X))
        halves.append(dict(zip(table.ids, logits, strict=True)))
    bank, platform = halves
    return {uscc: float(bank[uscc] + platform[uscc]) for uscc in bank if uscc in platform}


def train_breast_with_usccs(root: Path) -> TrainedRun:
    """Copy the breast data with USCC ids, train in-process, record like ``creditlab run``."""
    from federation.driver import Coordinator
    from federation.transport import InProcessTransport
    from lab.experiment import load_experiment
    from lab.run import record_run

    data = root / "data"
    data.mkdir(parents=True)
    bank = pd.read_csv(ROOT / "data" / "breast" / "bank.csv", dtype={"id": str})
    platform = pd.read_csv(ROOT / "data" / "breast" / "platform.csv", dtype={"id": str})
    uscc_of = {raw: make_uscc(int(raw)) for raw in bank["id"]}
    bank["id"] = bank["id"].map(uscc_of)
    platform["id"] = platform["id"].map(uscc_of)
    bank.to_csv(data / "bank.csv", index=False)
    platform.to_csv(data / "platform.csv", index=False)
    text = (ROOT / "examples" / "breast.toml").read_text()
    text = text.replace("../data/breast/", "data/").replace('id_kind = "opaque"',
                                                            'id_kind = "uscc"')
    experiment_path = root / "breast_uscc.toml"
    experiment_path.write_text(text)
    experiment = load_experiment(experiment_path)
    run_dir = root / "runs" / "breast" / "run1"
    run_dir.mkdir(parents=True)
    result = Coordinator(InProcessTransport(), experiment, run_dir, run_key="run1").run()
    record_run(experiment, run_dir, result)
    offline = offline_logits(run_dir, data / "bank.csv", data / "platform.csv")
    return TrainedRun(run_dir=run_dir, bank_csv=data / "bank.csv",
                      platform_csv=data / "platform.csv",
                      usccs=list(offline), offline_logits=offline,
                      run_test_logits=np.load(run_dir / "bank" / "test_scores.npy"),
                      platform_features=list(experiment.platform.features))


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """The breast model trained once per session."""
    if "run" not in _CACHE:
        _CACHE["run"] = train_breast_with_usccs(tmp_path_factory.mktemp("trained"))
    return _CACHE["run"]


# --------------------------------------------------------------------------- the platform store

#: A natural person (a large grower), with a valid resident id.
PERSON_ID = "11010519491231002X"
SUBJECT_WITH_EVERYTHING = make_uscc(9_000_001)


def seed_store(db_url: str, usccs: list[str]) -> dict[str, int]:
    """Catalog records for the test subjects: every item for one enterprise (with a dispute,
    a correction and a withdrawn record), electricity and arrears for the scored ones, and a
    grower who is a natural person. Returns record ids worth pointing at."""
    store = open_store(db_url)
    received = datetime(2026, 11, 30, tzinfo=UTC)
    ids: dict[str, int] = {}
    with store.session() as session:
        batches = {}
        for item in CATALOG:
            batch = Batch(item=item.code, provider=item.providers[0], file_name=f"{item.code}.csv",
                          file_sha256=f"{item.number:064d}", file_format="csv", encoding="utf-8",
                          data_date=date(2026, 11, 30), received_at=received, ingested_by="test",
                          status="complete", rows_total=1, rows_stored=1)
            session.add(batch)
            session.flush()
            batches[item.number] = batch.id

        def add(item_no: int, entity: str, key: str, values: dict[str, object],
                data_date: date, **meta: object) -> int:
            item = CATALOG[item_no - 1]
            model = record_model(item)
            row = model(batch_id=batches[item_no], provider=item.providers[0],
                        data_date=data_date, source_row=2, entity_key=entity,
                        record_key=f"{entity}|{key}", content_hash=hash(key) & 0xFFFFFFF,
                        version=meta.pop("version", 1), state=meta.pop("state", "current"),
                        disputed=meta.pop("disputed", False),
                        supersedes_id=meta.pop("supersedes_id", None), recorded_at=received,
                        **values)
            session.add(row)
            session.flush()
            return row.id

        name = "天津市滨海新区示范科技有限公司"
        full = SUBJECT_WITH_EVERYTHING
        for month in (9, 10, 11):
            add(1, full, f"2026-{month:02d}", {
                "enterprise_name": name, "uscc": full, "period": f"2026-{month:02d}",
                "insured_headcount": 40 + month, "contribution_amount": 18000.0 + month,
                "last_normal_payment_month": f"2026-{month:02d}", "deferred_amount": 0.0},
                date(2026, month, 28))
        ids["arrears"] = add(2, full, "2026-08", {
            "enterprise_name": name, "uscc": full, "arrears_amount": 5230.5,
            "arrears_period": "2026-08"}, date(2026, 8, 31))
        add(3, full, "2026-11", {
            "enterprise_name": name, "uscc": full, "headcount_change_rate_q": -4.5,
            "contribution_change_rate_q": 2.25, "stat_time": date(2026, 11, 30)},
            date(2026, 11, 30))
        water = {"enterprise_name": name, "uscc": full, "account_name": "王小明",
                 "account_no": "WS20260001234", "address": "天津市滨海新区第三大街88号",
                 "prepaid_amount": 0.0, "arrears_amount": 120.0, "one_meter_per_account": True,
                 "payment_details": 880.0, "billing_period": "2026-10", "avg_usage_3m": 35.0,
                 "avg_usage_6m": 33.0, "in_arrears_now": True, "stat_date": date(2026, 11, 15)}
        ids["water_old"] = add(8, full, "WS20260001234|2026-10",
                               {**water, "arrears_amount": 999.0}, date(2026, 11, 15))
        electricity = {"enterprise_name": name, "uscc": full, "grid_account_no": "0102030405",
                       "address": "天津市滨海新区第三大街88号", "operating_capacity_kva": 400.0,
                       "contract_capacity_kva": 500.0, "account_status": "正常",
                       "arrears_amount": 0.0, "violations_2y": 0, "province": "天津市",
                       "city": "天津市", "avg_spend_3m": 12000.0, "in_arrears_now": False,
                       "stat_date": date(2026, 11, 20)}
        ids["electricity_withdrawn"] = add(9, full, "0102030405|2026-10",
                                           {**electricity, "violations_2y": 3},
                                           date(2026, 10, 20))
        ids["electricity"] = add(9, full, "0102030405|2026-11", electricity, date(2026, 11, 20))
        for n, uscc in enumerate(usccs):
            add(9, uscc, "elec", {**electricity, "enterprise_name": f"测试企业{n}", "uscc": uscc},
                date(2026, 11, 20))
            add(2, uscc, "2026-07", {"enterprise_name": f"测试企业{n}", "uscc": uscc,
                                     "arrears_amount": 100.0 + n, "arrears_period": "2026-07"},
                date(2026, 7, 31))
        grower = CATALOG[6]
        values = {f.name: None for f in grower.fields}
        values.update(grower_name="李大田", id_type=ID_TYPE_RESIDENT, id_number=PERSON_ID,
                      address="天津市武清区大良镇田园村5号")
        values = {k: v for k, v in values.items() if v is not None}
        add(7, PERSON_ID, "grower", values, date(2026, 11, 1))
    # disputes, a correction and a credit repair, through the store's own repair API
    repair.dispute(store, "water", ids["water_old"], actor="operator",
                   reason="企业对欠费金额提出异议")
    ids["water"] = repair.correct(store, "water", ids["water_old"], {"欠费金额": "120"},
                                  actor="operator", reason="供水单位核实后更正欠费金额")
    repair.dispute(store, "water", ids["water"], actor="operator",
                   reason="企业对更正后的金额仍有异议")
    repair.withdraw(store, "electricity", ids["electricity_withdrawn"], actor="operator",
                    reason="违约记录经核实有误，予以信用修复")
    store.dispose()
    return ids


# --------------------------------------------------------------------------- institutions


@dataclass
class World:
    """Both apps, their clients and the institutions and keys of the tests."""

    trained: TrainedRun
    db_url: str
    platform_settings: PlatformSettings
    platform: TestClient
    platform_app: object
    operator_key: str
    bank_a: str
    bank_a_key: str
    bank_b: str
    bank_b_key: str
    provider: str
    provider_key: str
    record_ids: dict[str, int]

    def headers(self, key: str) -> dict[str, str]:
        return {"X-API-Key": key}

    def authorize(self, institution_id: str, subject: str, *, items: list[int],
                  scoring: bool = False, purpose: str = "loan_approval",
                  expires_in: timedelta = timedelta(days=30),
                  granted_at: datetime | None = None) -> str:
        """Record an authorization through the API, as the operator; its id."""
        body = {"subject_id": subject, "institution_id": institution_id, "purpose": purpose,
                "items": items, "scoring": scoring, "evidence": "consent-form-0001",
                "expires_at": ((granted_at or datetime.now(UTC)) + expires_in).isoformat()}
        if granted_at is not None:
            body["granted_at"] = granted_at.isoformat()
        response = self.platform.post("/v1/authorizations", json=body,
                                      headers=self.headers(self.operator_key))
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def bank_settings(self, **overrides: object) -> BankSettings:
        values: dict[str, object] = {
            "model_dir": self.trained.run_dir / "bank" / "model",
            "platform_url": "http://platform.test", "platform_api_key": self.bank_a_key,
            "features": self.trained.bank_csv,
            "client_key_sha256": [hashlib.sha256(BANK_CLIENT_KEY.encode()).hexdigest()]}
        values.update(overrides)
        return BankSettings(**values)

    def bank_client(self, **overrides: object) -> TestClient:
        """The bank app wired to the real platform app through httpx's ASGI transport."""
        from server.bank import create_app

        transport = overrides.pop("transport", httpx.ASGITransport(app=self.platform_app))
        app = create_app(self.bank_settings(**overrides), platform_transport=transport)
        return TestClient(app, headers={"X-API-Key": BANK_CLIENT_KEY})


def platform_settings(trained: TrainedRun, db_url: str) -> PlatformSettings:
    return PlatformSettings(
        db_url=db_url, key_pepper=PEPPER, models={trained.run_dir / "platform" / "model": BANK_A},
        features=trained.platform_csv, feature_items=feature_items(trained.platform_features))


def make_world(trained: TrainedRun, root: Path) -> Iterator[World]:
    """A fresh platform database with institutions, keys and seeded records."""
    from server.platform import create_app
    from server.platform.admin import bootstrap_operator

    db_url = f"sqlite:///{root / 'platform.db'}"
    settings = platform_settings(trained, db_url)
    operator_key = bootstrap_operator(Database(db_url), settings, "平台运营方")
    app = create_app(settings)
    ids = seed_store(db_url, trained.usccs[:5])
    with TestClient(app) as client:
        op = {"X-API-Key": operator_key}

        def institution(name: str, role: Role, provider: str | None = None) -> tuple[str, str]:
            made = client.post("/v1/institutions", headers=op,
                               json={"name": name, "role": role.value, "provider": provider})
            assert made.status_code == 201, made.text
            iid = made.json()["id"]
            key = client.post(f"/v1/institutions/{iid}/keys", headers=op, json={})
            assert key.status_code == 201, key.text
            return iid, key.json()["api_key"]

        bank_a, bank_a_key = institution(BANK_A, Role.bank)
        bank_b, bank_b_key = institution("乙银行", Role.bank)
        provider, provider_key = institution("国网天津市电力公司", Role.provider,
                                             "state_grid_tianjin")
        yield World(trained=trained, db_url=db_url, platform_settings=settings,
                    platform=client, platform_app=app, operator_key=operator_key,
                    bank_a=bank_a, bank_a_key=bank_a_key, bank_b=bank_b,
                    bank_b_key=bank_b_key, provider=provider, provider_key=provider_key,
                    record_ids=ids)


def audit_rows(world: World) -> list[dict[str, object]]:
    """Every audit row, read straight from the database (not through the API)."""
    from sqlalchemy import select

    from server.platform.tables import AuditEvent

    database = Database(world.db_url, create_tables=False)
    with database.session() as session:
        rows = [{c.name: getattr(r, c.name) for c in AuditEvent.__table__.columns}
                for r in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    database.dispose()
    return rows


def copy_run(trained: TrainedRun, root: Path) -> Path:
    """A private copy of the trained run (for tests that tamper with files)."""
    target = root / "run_copy"
    shutil.copytree(trained.run_dir, target)
    return target

