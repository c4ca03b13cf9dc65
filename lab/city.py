"""The city scenario: ``creditlab city --enterprises N --seed S --workdir W``.

One command walks the platform's whole path on a synthetic city and ends in
the question a bank cares about — does the platform's data make my credit
model better?

1. **generate** — provider files, loan books and manifest (:mod:`lab.generate`);
2. **ingest** — every file into the platform store in ``W/platform.db``,
   checking that the quarantine holds exactly the rows the manifest marks
   dirty (:mod:`lab.ingest`);
3. **quality** — ``W/quality/quality.{json,html}`` (:mod:`lab.quality`);
4. **features** — a snapshot as of the city's as-of date (:mod:`lab.features`);
5. **joint model** — ``W/city.toml`` names bank 1's loan book and the
   snapshot (``[platform] snapshot = N``, exported on load to
   ``W/snapshots/platform-snapshot-N.csv`` with its sidecar); the main job
   (:func:`lab.run.run_experiment`) aligns them by ECDH-PSI on USCCs and
   trains the two-key vertical logistic regression;
6. **compare** — the joint model's held-out AUC against the **bank-only**
   model.

What "bank-only" is, exactly: scikit-learn's (exact) logistic regression on
the bank's own standardised features, trained on the same training rows
and scored on the same held-out test rows as the joint model (the main
job computes it as its ``bank_only_test_auc`` reference). A bank alone needs
no federation and no encryption, so this is what it would deploy; and it
uses the exact loss, not the Taylor approximation the encrypted protocol
trains, so the comparison does not flatter the joint model. The joint
model's own AUC is from the encrypted run itself.

Receipt times: the generated data describe the months up to the as-of
date; deliveries are recorded as received 15 days after it, as a monthly
provider feed would be, so timeliness in the quality report is meaningful.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select

from lab.errors import CreditLabError
from lab.features import load_snapshot, take_snapshot
from lab.generate import BANK_FEATURES, generate_city
from lab.ingest import ingest_file
from lab.quality import quality_report, write_report
from lab.store.engine import open_store
from lab.store.models import QuarantinedRow

__all__ = ["CITY_TRAIN", "run_city", "write_experiment"]

#: Training settings of the city experiment (batch ≥ 4 × features, DESIGN §4.1 guard).
CITY_TRAIN = {"optimizer": "adam", "learning_rate": 0.02, "l2": 0.001, "batch_size": 512,
              "max_epochs": 6, "patience": 3, "min_delta": 0.0001}
RECEIPT_LAG_DAYS = 15


class CityError(CreditLabError):
    """The city scenario found something wrong (e.g. quarantine ≠ manifest)."""


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


def write_experiment(path: Path, *, name: str, seed: int, bank_csv: Path, store_url: str,
                     platform_features: list[str], snapshot_id: int, key_bits: int,
                     test_only_keys: bool) -> Path:
    """Write the city's experiment TOML (paths relative to its folder).

    The platform's source is the snapshot itself (``snapshot = N`` and the
    store's URL): loading the experiment exports it beside the TOML
    (:mod:`lab.snapshot_source`), so the run is traceable to that snapshot.
    """
    folder = path.parent
    lines = [
        "# Written by `creditlab city`: bank 1's loan book joined with the platform's",
        f"# feature snapshot {snapshot_id} (exported to snapshots/ when the file is loaded).",
        "",
        "[experiment]",
        f'name = "{name}"',
        f"seed = {seed}",
        f'description = "city scenario: bank_1 + platform feature snapshot {snapshot_id}"',
        "",
        "[bank]",
        f'data = "{bank_csv.relative_to(folder).as_posix()}"',
        'id_column = "uscc"',
        'id_kind = "uscc"',
        'label_column = "default_12m"',
        f"features = {_toml_list(list(BANK_FEATURES))}",
        "",
        "[platform]",
        f"snapshot = {snapshot_id}",
        f"store = {json.dumps(store_url)}",
        'id_column = "uscc"',
        'id_kind = "uscc"',
        f"features = {_toml_list(platform_features)}",
        "",
        "[split]",
        "test_fraction = 0.25",
        "validation_fraction = 0.2",
        "stratify = true",
        "",
        "[train]",
        'protocol = "hetero_lr"',
        f'optimizer = "{CITY_TRAIN["optimizer"]}"',
        f"learning_rate = {CITY_TRAIN['learning_rate']}",
        f"l2 = {CITY_TRAIN['l2']}",
        f"batch_size = {CITY_TRAIN['batch_size']}",
        f"max_epochs = {CITY_TRAIN['max_epochs']}",
        f"patience = {CITY_TRAIN['patience']}",
        f"min_delta = {CITY_TRAIN['min_delta']}",
        "",
        "[crypto]",
        f"key_bits = {key_bits}",
        f"test_only_keys = {'true' if test_only_keys else 'false'}",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _check_quarantine(store: Any, batch_id: int, expected: list[dict[str, Any]]) -> None:
    """The stored quarantine of a batch must be exactly the manifest's dirty rows and reasons."""
    with store.session() as session:
        found = session.execute(select(QuarantinedRow.row, QuarantinedRow.field,
                                       QuarantinedRow.reason_code).where(
            QuarantinedRow.batch_id == batch_id)).all()
    got: dict[int, set[tuple[str | None, str]]] = {}
    for row, field, reason in found:
        got.setdefault(row, set()).add((field, reason))
    wanted = {d["row"]: (d["field"], d["reason"]) for d in expected}
    missing = [r for r, pair in wanted.items() if pair not in got.get(r, set())]
    extra = [r for r in got if r not in wanted]
    if missing or extra:
        raise CityError(f"batch {batch_id}: quarantine differs from the manifest ({len(missing)} "
                        f"dirty rows not quarantined as expected, {len(extra)} rows quarantined "
                        "that the manifest calls clean). Remedy: this is a bug in ingestion or "
                        "the generator; rerun with the same seed to reproduce it")


def run_city(workdir: str | Path, *, enterprises: int, seed: int, key_bits: int = 2048,
             test_only_keys: bool = False, quiet: bool = False,
             echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole scenario (see the module docstring); return and write its summary.

    The work folder is emptied of a previous city run's outputs first (its
    ``city/``, ``platform.db``, ``quality/``, ``platform_features.csv*``,
    ``city.toml`` and ``runs/``), so two runs never mix.
    """
    started = time.perf_counter()
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    for name in ("city", "quality", "runs"):
        shutil.rmtree(work / name, ignore_errors=True)
    for pattern in ("platform.db*", "platform_features.csv*", "city.toml", "city_summary.json"):
        for path in work.glob(pattern):
            path.unlink()
    timings: dict[str, float] = {}

    def step(name: str, began: float) -> None:
        timings[name] = round(time.perf_counter() - began, 1)
        echo(f"[city] {name} done in {timings[name]} s")

    began = time.perf_counter()
    manifest = generate_city(work / "city", enterprises=enterprises, seed=seed)
    rows = sum(f.rows for f in manifest.files.values())
    echo(f"[city] generated {enterprises:,} enterprises and {manifest.persons:,} farmers: "
         f"{rows:,} provider rows in 10 files, {len(manifest.banks)} loan books")
    step("generate", began)

    began = time.perf_counter()
    as_of = dt.date.fromisoformat(manifest.as_of)
    received = dt.datetime.combine(as_of + dt.timedelta(days=RECEIPT_LAG_DAYS), dt.time(9),
                                   tzinfo=dt.UTC)
    store_url = f"sqlite:///{(work / 'platform.db').resolve()}"
    store = open_store(store_url)
    stored = quarantined = 0
    for code, entry in manifest.files.items():
        report = ingest_file(store, code, work / "city" / entry.file, provider=entry.provider,
                             data_date=as_of, received_at=received, actor="city-scenario")
        _check_quarantine(store, report.batch_id, entry.dirty)
        stored += report.rows_stored
        quarantined += report.rows_quarantined
    echo(f"[city] ingested {stored:,} rows, quarantined {quarantined:,}: exactly the rows the "
         "manifest marks dirty, each with its reason")
    step("ingest", began)

    began = time.perf_counter()
    json_path, html_path = write_report(quality_report(store), work / "quality")
    echo(f"[city] quality report: {html_path}")
    step("quality", began)

    began = time.perf_counter()
    snapshot = take_snapshot(store, as_of, actor="city-scenario",
                             note=f"city scenario seed {seed}")
    _, frame = load_snapshot(store, snapshot.id)
    varying = [name for name in frame.columns if frame[name].nunique() > 1]
    constant = [name for name in frame.columns if name not in varying]
    echo(f"[city] feature snapshot {snapshot.id} as of {as_of}: {snapshot.n_entities:,} "
         f"enterprises × {len(varying)} features"
         + (f" (left out, constant here: {', '.join(constant)})" if constant else ""))
    step("features", began)
    store.dispose()

    bank = manifest.banks[0]
    bank_csv = work / "city" / bank["file"]
    toml = write_experiment(work / "city.toml", name=f"city-{seed}", seed=seed,
                            bank_csv=bank_csv, store_url=store_url,
                            platform_features=varying, snapshot_id=snapshot.id,
                            key_bits=key_bits, test_only_keys=test_only_keys)
    loans = pd.read_csv(bank_csv, usecols=["default_12m"])
    echo(f"[city] bank_1: {len(loans):,} loans, {int(loans['default_12m'].sum()):,} defaults; "
         f"running the joint job ({key_bits}-bit keys): {toml}")

    began = time.perf_counter()
    from lab.run import run_experiment

    summary, _ = run_experiment(toml, workdir=work / "runs", quiet=quiet)
    step("joint training", began)

    result = {
        "enterprises": enterprises,
        "seed": seed,
        "as_of": manifest.as_of,
        "provider_rows": rows,
        "rows_stored": stored,
        "rows_quarantined": quarantined,
        "quarantine_matches_manifest": True,
        "snapshot_id": snapshot.id,
        "platform_features": varying,
        "bank_loans": len(loans),
        "rows_aligned": summary["rows_aligned"],
        "rows_test": summary["rows_test"],
        "key_bits": key_bits,
        "joint_test_auc": summary["test_auc"],
        "joint_test_ks": summary["test_ks"],
        "bank_only_test_auc": summary["bank_only_test_auc"],
        "central_joint_exact_lr_test_auc": summary["centralized_test_auc"],
        "auc_gain": summary["test_auc"] - summary["bank_only_test_auc"],
        "ledger_plaintext_violations": summary["ledger_plaintext_violations"],
        "run_dir": summary["run_dir"],
        "quality_report": str(html_path),
        "quality_json": str(json_path),
        "seconds": {**timings, "total": round(time.perf_counter() - started, 1)},
    }
    (work / "city_summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    echo("")
    echo("city scenario: held-out test AUC of bank_1's default model")
    echo(f"  bank-only (bank's own features, exact LR)        {result['bank_only_test_auc']:.4f}")
    echo(f"  joint: bank + platform, vertical encrypted LR    {result['joint_test_auc']:.4f}")
    echo(f"  gain                                             {result['auc_gain']:+.4f}")
    echo(f"  reference: exact LR on pooled data (not allowed) "
         f"{result['central_joint_exact_lr_test_auc']:.4f}")
    echo(f"  test rows {result['rows_test']:,} of {result['rows_aligned']:,} aligned; "
         f"plaintext values on the wire: {result['ledger_plaintext_violations']}")
    echo(f"  summary: {work / 'city_summary.json'}")
    return result
