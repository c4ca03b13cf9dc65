"""The Flower ServerApp: the lab coordinator's side of a run.

It holds no data and no key; it runs :class:`federation.driver.Coordinator`
over Flower's Grid. ``creditlab run`` builds one with :func:`make_server_app`
(the result comes back in-process); ``flwr run`` uses the module-level
``app``, which reads the experiment path from the run config.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from federation.driver import Coordinator, Observer, RunResult
from federation.transport import FlowerTransport
from lab.experiment import Experiment, load_experiment


def transport_for(grid: Grid, experiment: Experiment) -> FlowerTransport:
    """A Grid transport with the experiment's party timeout and retry interval."""
    spec = experiment.federation
    return FlowerTransport(grid, party_timeout=spec.party_timeout_seconds,
                           retry_after=spec.retry_seconds)


def make_server_app(experiment: Experiment, run_dir: Path, *, run_key: str,
                    sink: list[RunResult], observer: Observer | None = None,
                    capture: bool = False) -> ServerApp:
    """A ServerApp that runs one experiment and appends its result to ``sink``."""
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        transport = transport_for(grid, experiment)
        coordinator = Coordinator(transport, experiment, run_dir, run_key=run_key,
                                  observer=observer, capture=capture)
        try:
            sink.append(coordinator.run())
        finally:
            write_exchanges(run_dir, transport)

    return server_app


app = ServerApp()


def write_exchanges(run_dir: Path, transport: FlowerTransport) -> None:
    """Per-exchange timings of a run (``exchanges.json``): what each round trip cost."""
    (run_dir / "exchanges.json").write_text(json.dumps(transport.exchanges, indent=1))


class _LogObserver:
    """Progress as plain log lines (``flwr run --stream`` shows them), metrics to MLflow."""

    def __init__(self, inner: Observer) -> None:
        self.inner = inner

    def phase(self, name: str, detail: str = "") -> None:
        print(f"[{name}] {detail}", flush=True)
        self.inner.phase(name, detail)

    def batch(self, epoch: int, batch: int, batches: int, train_loss: float) -> None:
        self.inner.batch(epoch, batch, batches, train_loss)

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        print(f"[epoch {epoch + 1}] " + " ".join(f"{k}={v:.5f}" for k, v in metrics.items()),
              flush=True)
        self.inner.epoch(epoch, metrics)


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for ``flwr run`` on the deployment engine.

    Run config (``--run-config``): ``experiment`` (TOML path on the
    coordinator's machine), ``workdir`` (run folders go to
    ``<workdir>/<experiment>/flwr-<run id>/``), ``mlflow-tracking-uri``
    (empty: ``MLFLOW_TRACKING_URI`` or ``mlflow.db`` here) and
    ``reference-bank-dir`` (the bank's party directory when the lab may read
    it for the central references; empty in a real multi-domain set-up).
    A run that fails leaves ``failure.json`` and no ``summary.json``, so a
    half-finished run is never mistaken for a result.
    """
    from lab.run import ProgressObserver, record_run  # the lab records where the ServerApp runs
    from lab.tracking import mlflow_run

    started = time.perf_counter()
    config = context.run_config
    experiment = load_experiment(Path(str(config["experiment"])))
    workdir = Path(str(config.get("workdir") or "runs"))
    if config.get("mlflow-tracking-uri"):
        os.environ["MLFLOW_TRACKING_URI"] = str(config["mlflow-tracking-uri"])
    run_key = f"flwr-{context.run_id}"
    bank_root = str(config.get("reference-bank-dir") or "")
    run_dir = workdir / experiment.experiment.name / run_key
    run_dir.mkdir(parents=True, exist_ok=True)
    with mlflow_run(experiment, run_key) as active:
        observer = _LogObserver(ProgressObserver(
            experiment.train.max_epochs, mlflow_run_id=active.info.run_id, quiet=True))
        transport: FlowerTransport | None = None
        try:
            transport = transport_for(grid, experiment)
            result = Coordinator(transport, experiment, run_dir, run_key=run_key,
                                 observer=observer).run()
        except Exception as exc:
            (run_dir / "failure.json").write_text(json.dumps(
                {"error": f"{type(exc).__name__}: {exc}", "run_key": run_key}, indent=2))
            raise
        finally:
            if transport is not None:
                write_exchanges(run_dir, transport)
        summary = record_run(experiment, run_dir, result,
                             wall_seconds=time.perf_counter() - started,
                             bank_dir=Path(bank_root) / run_key if bank_root else None)
    print(f"[record] test_auc={summary['test_auc']:.4f} run folder {run_dir}", flush=True)
