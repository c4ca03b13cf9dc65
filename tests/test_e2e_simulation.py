"""The whole main job through Flower's simulation engine, on the breast toy data.

1024-bit keys (``examples/breast.toml``): test-only, for speed.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

import mlflow
import pytest
from phe import PaillierPrivateKey

from lab.run import run_experiment

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, PaillierPrivateKey)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        summary, result = run_experiment(ROOT / "examples" / "breast.toml",
                                         workdir=workdir / "runs", quiet=True)
    gc.collect()
    new_keys = [o for o in gc.get_objects()
                if isinstance(o, PaillierPrivateKey) and id(o) not in before]
    return summary, result, uri, new_keys


def test_summary_has_the_agreed_fields_and_values(simulated) -> None:
    summary, _, _, _ = simulated
    run_dir = Path(summary["run_dir"])
    on_disk = json.loads((run_dir / "summary.json").read_text())
    assert on_disk == summary
    assert summary["rows_bank"] == summary["rows_platform"] == summary["rows_aligned"] == 569
    assert summary["key_bits"] == 1024
    assert summary["test_auc"] > 0.93
    assert abs(summary["test_auc"] - summary["centralized_taylor_test_auc"]) <= 0.003
    assert summary["ledger_plaintext_violations"] == 0
    assert 1 <= summary["epochs"] <= 10
    assert summary["wall_seconds"] > 0
    for name in ("ledger.json", "manifest.json", "roc.png", "ks.png", "loss.png"):
        assert (run_dir / name).stat().st_size > 0


def test_each_party_saved_its_own_part_and_the_manifest_has_no_weights(simulated) -> None:
    summary, _, _, _ = simulated
    run_dir = Path(summary["run_dir"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    roles = {part["role"]: part for part in manifest["parts"]}
    assert set(roles) == {"bank", "platform"}
    assert len(roles["platform"]["feature_names"]) == 20
    text = json.dumps(manifest)
    assert "weights" not in text.replace("weights.npz", "")
    for role in ("bank", "platform"):
        assert (run_dir / role / "model" / "weights.npz").exists()


def test_mlflow_has_params_epoch_metrics_and_artifacts(simulated) -> None:
    summary, _, uri, _ = simulated
    client = mlflow.MlflowClient(tracking_uri=uri)
    run = client.get_run(summary["mlflow_run_id"])
    assert run.data.params["crypto.key_bits"] == "1024"
    assert run.data.metrics["test_auc"] == pytest.approx(summary["test_auc"])
    history = client.get_metric_history(run.info.run_id, "validation_loss")
    assert [m.step for m in history] == list(range(1, summary["epochs"] + 1))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"ledger.json", "manifest.json", "roc.png", "ks.png", "loss.png"} <= artifacts


def test_the_coordinator_process_never_held_a_private_key(simulated) -> None:
    """In simulation the parties run in Ray worker processes; this process coordinated."""
    summary, _, _, new_keys = simulated
    assert summary["ledger_messages"] > 0
    assert new_keys == []
