"""The main job: ``creditlab run EXPERIMENT.toml``.

align → split → train through Flower's simulation engine → evaluate → record.
The run's folder ``runs/<experiment>/<run_key>/`` holds one sub-folder per
party (in production each lives in its own domain), the privacy ledger, the
model manifest, plots and ``summary.json``; MLflow gets the same.
"""

from __future__ import annotations

import os

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# CPU only: Ray's future default (leave accelerator variables alone), without its FutureWarning.
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

import json  # noqa: E402
import secrets  # noqa: E402
import time  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import mlflow  # noqa: E402
from tqdm import tqdm  # noqa: E402

from federation.driver import RunResult  # noqa: E402
from lab.experiment import Experiment, load_experiment  # noqa: E402
from lab.plots import ks_plot, loss_plot, roc_plot  # noqa: E402
from lab.reference import central_references  # noqa: E402
from lab.tracking import mlflow_run, tracking_uri  # noqa: E402


class ProgressObserver:
    """Progress bars on the terminal and per-epoch metrics in the active MLflow run."""

    def __init__(self, max_epochs: int, *, mlflow_run_id: str | None = None,
                 quiet: bool = False) -> None:
        self.quiet = quiet
        self.max_epochs = max_epochs
        self.bar: tqdm | None = None
        self.mlflow_run_id = mlflow_run_id
        self.client = mlflow.MlflowClient(tracking_uri()) if mlflow_run_id else None

    def phase(self, name: str, detail: str = "") -> None:
        if not self.quiet:
            tqdm.write(f"[{name}] {detail}")

    def batch(self, epoch: int, batch: int, batches: int, train_loss: float) -> None:
        if self.bar is None and not self.quiet:
            self.bar = tqdm(total=self.max_epochs * batches, desc="train (encrypted steps)",
                            unit="step")
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(epoch=epoch + 1, loss=f"{train_loss:.4f}")

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        # The ServerApp runs in its own thread, where MLflow's (thread-local) active run is
        # not visible: log through a client with the run id instead.
        if self.client is not None and self.mlflow_run_id is not None:
            for key, value in metrics.items():
                self.client.log_metric(self.mlflow_run_id, key, value, step=epoch + 1)
        if not self.quiet:
            tqdm.write(f"[epoch {epoch + 1}] " + " ".join(
                f"{k}={v:.5f}" for k, v in metrics.items()))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def simulate(experiment: Experiment, run_dir: Path, run_key: str, *,
             observer: ProgressObserver | None = None, capture: bool = False) -> RunResult:
    """Run the protocol on Flower's simulation engine: one SuperNode per party."""
    from flwr.simulation import run_simulation

    from federation.client_app import app as client_app
    from federation.server_app import make_server_app

    sink: list[RunResult] = []
    server_app = make_server_app(experiment, run_dir, run_key=run_key, sink=sink,
                                 observer=observer, capture=capture)
    run_simulation(server_app=server_app, client_app=client_app, num_supernodes=2,
                   backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                                   "init_args": {"logging_level": "WARNING",
                                                 "include_dashboard": False}})
    if not sink:
        raise RuntimeError("the Flower simulation ended without a result; see the log above")
    return sink[0]


def references_or_reason(experiment: Experiment, bank_dir: Path, epochs: int
                         ) -> dict[str, Any]:
    """Central references, or why they were skipped.

    They need the bank's saved alignment and both parties' tables, which sit
    on this machine in simulation and on loopback, but not when the parties
    are in their own domains: then the summary says so instead of failing a
    run whose federated result is complete.
    """
    needed = [bank_dir / "state.npz", experiment.bank.data, experiment.platform.data]
    missing = [str(path) for path in needed if not Path(path).is_file()]
    if missing:
        return {"references_skipped": "not reachable from the coordinator's machine: "
                                      + ", ".join(missing)}
    return {**central_references(experiment, bank_dir, epochs), "references_skipped": None}


def record_run(experiment: Experiment, run_dir: Path, result: RunResult, *,
               wall_seconds: float | None = None, bank_dir: Path | None = None
               ) -> dict[str, Any]:
    """References, plots, ledger, manifest and summary: to the run folder and to MLflow.

    ``bank_dir`` is the bank's session directory for the central references
    (default ``run_dir/bank``, where simulation puts it).
    """
    references = references_or_reason(experiment, bank_dir or run_dir / "bank",
                                      result.best_epoch + 1)
    counts = result.counts
    ledger = result.ledger.to_json()
    summary: dict[str, Any] = {
        "experiment": experiment.name,
        "run_dir": str(run_dir),
        "test_auc": result.metrics["test_auc"],
        "test_ks": result.metrics["test_ks"],
        "test_gini": result.metrics["test_gini"],
        "validation_auc": result.metrics["validation_auc"],
        **references,
        "key_bits": experiment.crypto.key_bits,
        "rows_bank": counts["bank_rows"],
        "rows_platform": counts["platform_rows"],
        "rows_aligned": counts["rows_aligned"],
        "rows_train": counts["rows_train"],
        "rows_validation": counts["rows_validation"],
        "rows_test": counts["rows_test"],
        "rows_quarantined_bank": counts["bank_rows_quarantined"],
        "rows_quarantined_platform": counts["platform_rows_quarantined"],
        "epochs": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "wall_seconds": round(wall_seconds, 1) if wall_seconds is not None else None,
        "ledger_messages": ledger["messages"],
        "ledger_bytes": ledger["bytes"],
        "ledger_plaintext_violations": ledger["plaintext_violations"],
        "mlflow_run_id": None,
    }
    (run_dir / "ledger.json").write_text(json.dumps(ledger, indent=2))
    manifest = {"experiment": experiment.name, "protocol": experiment.train.protocol,
                "parts": result.manifest}
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))
    plots = [roc_plot(result.curves["roc"], summary["test_auc"], run_dir / "roc.png"),
             ks_plot(result.curves["ks"], summary["test_ks"], run_dir / "ks.png"),
             loss_plot(result.history, run_dir / "loss.png")]
    active = mlflow.active_run()
    if active is not None:
        summary["mlflow_run_id"] = active.info.run_id
        mlflow.log_metrics({k: float(v) for k, v in summary.items()
                            if isinstance(v, int | float) and not isinstance(v, bool)})
        if summary["references_skipped"]:
            mlflow.set_tag("creditlab.references_skipped", summary["references_skipped"])
        for path in [*plots, run_dir / "ledger.json", run_dir / "manifest.json"]:
            mlflow.log_artifact(str(path))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def new_run_key() -> str:
    """A sortable, unique run folder name."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def run_experiment(path: str | Path, *, workdir: str | Path = "runs", quiet: bool = False,
                   capture: bool = False) -> tuple[dict[str, Any], RunResult]:
    """The main job, end to end; returns the summary and the coordinator's result."""
    started = time.perf_counter()
    experiment = load_experiment(path)
    run_key = new_run_key()
    run_dir = Path(workdir).resolve() / experiment.name / run_key
    run_dir.mkdir(parents=True)
    with mlflow_run(experiment, run_key) as active:
        observer = ProgressObserver(experiment.train.max_epochs,
                                    mlflow_run_id=active.info.run_id, quiet=quiet)
        try:
            result = simulate(experiment, run_dir, run_key, observer=observer, capture=capture)
        finally:
            observer.close()
        summary = record_run(experiment, run_dir, result,
                             wall_seconds=time.perf_counter() - started)
        mlflow.log_metric("wall_seconds", summary["wall_seconds"])
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary, result
