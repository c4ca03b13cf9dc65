"""The city scenario (lab.city): the experiment it writes, and the whole path end to end."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lab.city import run_city, write_experiment
from lab.datasets import load_party_table
from lab.experiment import load_experiment
from lab.features import take_snapshot
from lab.generate import BANK_FEATURES, generate_city
from lab.ingest import ingest_file
from lab.store.testing import temporary_store


def test_the_written_experiment_names_the_snapshot_and_loads(tmp_path: Path) -> None:
    manifest = generate_city(tmp_path / "city", enterprises=300, seed=4, banks=1,
                             items=("electricity",))
    with temporary_store("sqlite", tmp_path) as store:
        ingest_file(store, "electricity", tmp_path / "city" / "electricity.csv")
        snapshot = take_snapshot(store, dt.date(2025, 6, 30))
        features = ["elec_in_arrears_now", "elec_capacity_utilisation", "elec_log_spend_12m"]
        url = store.engine.url.render_as_string(hide_password=False)
    toml = write_experiment(tmp_path / "city.toml", name="city-test", seed=4,
                            bank_csv=tmp_path / "city" / manifest.banks[0]["file"],
                            store_url=url, platform_features=features,
                            snapshot_id=snapshot.id, key_bits=1024, test_only_keys=True)
    text = toml.read_text()
    assert f"feature snapshot {snapshot.id}" in text
    assert f"snapshot = {snapshot.id}\n" in text and 'id_kind = "uscc"' in text
    experiment = load_experiment(toml)
    exported = tmp_path / "snapshots" / f"platform-snapshot-{snapshot.id}.csv"
    assert experiment.platform.data == exported
    assert experiment.bank.features == list(BANK_FEATURES)
    assert experiment.platform.features == features
    assert experiment.crypto.key_bits == 1024
    assert experiment.train.batch_size >= 4 * max(len(features), len(BANK_FEATURES))
    bank = load_party_table(experiment.bank.data, id_column="uscc",
                            features=experiment.bank.features, label_column="default_12m")
    platform = load_party_table(experiment.platform.data, id_column="uscc", features=features)
    assert bank.quarantined == [] and platform.quarantined == []
    assert len(set(bank.ids) & set(platform.ids)) > 0.9 * len(bank.ids)


@pytest.mark.e2e
def test_city_scenario_joint_model_beats_bank_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    lines: list[str] = []
    result = run_city(tmp_path / "work", enterprises=5000, seed=7, key_bits=1024,
                      test_only_keys=True, quiet=True, echo=lines.append)
    assert result["quarantine_matches_manifest"] is True
    assert result["rows_stored"] + result["rows_quarantined"] == result["provider_rows"]
    assert result["ledger_plaintext_violations"] == 0
    assert result["rows_aligned"] > 0.95 * result["bank_loans"]
    # the platform's signals carry real information the bank does not have
    assert result["joint_test_auc"] > result["bank_only_test_auc"] + 0.05
    assert abs(result["joint_test_auc"] - result["central_joint_exact_lr_test_auc"]) < 0.03
    saved = json.loads((tmp_path / "work" / "city_summary.json").read_text())
    assert saved["joint_test_auc"] == result["joint_test_auc"]
    assert (tmp_path / "work" / "quality" / "quality.html").is_file()
    assert any("bank-only" in line for line in lines)
    assert any("exactly the rows the manifest marks dirty" in line for line in lines)

    # the README's serving walk-through on this city: both APIs, a score, a refusal
    example = Path(__file__).resolve().parents[1] / "examples" / "serve_city.py"
    served = subprocess.run([sys.executable, str(example), "--workdir", str(tmp_path / "work")],
                            capture_output=True, text=True, timeout=600)
    assert served.returncode == 0, served.stdout + served.stderr
    assert "masked=False" in served.stdout
    assert re.search(r"PD 0\.\d{4}, \d+ points, band [A-E]", served.stdout)
    assert "403 no_authorization, no score" in served.stdout
    assert "both APIs stopped" in served.stdout


def test_the_example_experiment_matches_what_the_city_writes() -> None:
    import tomllib

    from lab.city import CITY_TRAIN
    from lab.features import FEATURE_NAMES

    example = Path(__file__).resolve().parents[1] / "examples" / "city.toml"
    spec = tomllib.loads(example.read_text(encoding="utf-8"))
    assert spec["bank"]["features"] == list(BANK_FEATURES)
    assert spec["platform"]["features"] == list(FEATURE_NAMES)
    assert {k: spec["train"][k] for k in CITY_TRAIN} == CITY_TRAIN
    assert spec["bank"]["data"] == "../runs/city/city/banks/bank_1.csv"
    assert (spec["platform"]["snapshot"], spec["platform"]["store"]) == (
        1, "sqlite:///runs/city/platform.db")
    assert "data" not in spec["platform"]
    assert spec["crypto"] == {"key_bits": 2048, "test_only_keys": False}
