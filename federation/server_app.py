"""The Flower ServerApp: the lab coordinator's side of a run.

It holds no data and no key; it runs :class:`federation.driver.Coordinator`
over Flower's Grid. ``creditlab run`` builds one with :func:`make_server_app`
(the result comes back in-process); ``flwr run`` uses the module-level
``app``, which reads the experiment path from the run config.
"""

from __future__ import annotations

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
        sink.append(coordinator.run())

    return server_app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for ``flwr run``: ``--run-config 'experiment="path.toml" workdir="runs"'``."""
    from lab.run import record_run  # the lab records the run where the ServerApp runs

    experiment = load_experiment(Path(str(context.run_config["experiment"])))
    workdir = Path(str(context.run_config.get("workdir") or "runs"))
    run_key = f"flwr-{context.run_id}"
    run_dir = workdir / experiment.experiment.name / run_key
    run_dir.mkdir(parents=True, exist_ok=True)
    coordinator = Coordinator(transport_for(grid, experiment), experiment, run_dir,
                              run_key=run_key)
    record_run(experiment, run_dir, coordinator.run())
