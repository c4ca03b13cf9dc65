"""MLflow tracking: where runs are recorded, and what each run records.

Default store: a SQLite file ``mlflow.db`` in the working directory, so an
analyst needs nothing started by hand; ``MLFLOW_TRACKING_URI`` points
elsewhere (an MLflow server with a PostgreSQL backend, for a team).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow

from lab.experiment import Experiment


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` if set, else ``sqlite:///<cwd>/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def experiment_params(experiment: Experiment) -> dict[str, Any]:
    """Flat parameters of an experiment, for ``mlflow.log_params`` (no data, only settings)."""
    spec = experiment.model_dump(mode="json")
    params: dict[str, Any] = {}
    for section, values in spec.items():
        for key, value in values.items():
            if isinstance(value, list):
                value = ",".join(map(str, value))
            params[f"{section}.{key}"] = str(value)[:500]
    return params


@contextmanager
def mlflow_run(experiment: Experiment, run_name: str) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run in the experiment named after ours, with its parameters logged."""
    mlflow.set_tracking_uri(tracking_uri())
    mlflow.set_experiment(experiment.name)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(experiment_params(experiment))
        mlflow.set_tag("creditlab.protocol", experiment.train.protocol)
        yield run
