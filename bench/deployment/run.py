"""What Flower's deployment engine costs CreditLab, against the simulation engine.

Three ways to run the same experiment (same seed, same messages):

* ``inprocess``  — :class:`federation.transport.InProcessTransport`: the two
  parties called directly, no Flower: the protocol's own compute;
* ``simulation`` — ``creditlab run`` (Flower's simulation engine, Ray);
* ``deployment`` — ``creditlab federation up`` on loopback (TLS SuperLink,
  SuperNode authentication, two SuperNodes) then ``creditlab run --federation``
  (``flwr run`` on the deployment engine).

For every exchange (one message to one or both parties, answered) the
coordinator records its wall time and, from each party, how long the handler
ran and (deployment) how long after the push the ClientApp process started
and began to handle it (``exchanges.json``, see federation/transport.py).
From these the script reports, per mode: round trips per phase and per
optimisation step, seconds per exchange, the part of it that is not the
protocol's compute (``overhead`` = exchange time − slowest party's handler),
and the run's wall time and test AUC.

Cases: ``breast`` (examples/breast.toml: 1024-bit test-only keys, full batch),
``default_credit`` (examples/default_credit.toml: 2048-bit keys, batch 2048:
nine steps, 30 round trips per epoch) and ``default_credit_full``
(examples/default_credit_full_batch.toml: the same data and keys, full batch
with learning rate 0.1: one step, 6 round trips per epoch — what to use on
the deployment engine).

Usage (from the repository root)::

    .venv/bin/python bench/deployment/run.py                         # everything (~1-2 h)
    .venv/bin/python bench/deployment/run.py --cases breast          # ~10 min
    .venv/bin/python bench/deployment/run.py --cases default_credit --modes inprocess,simulation

Results are merged into ``bench/deployment/results.json`` (one entry per
case and mode, each with the load average around it: this machine class is
shared, so compare modes measured close together rather than single seconds).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: make the packages importable
    sys.path.insert(0, str(REPO))

from federation.driver import Coordinator  # noqa: E402
from federation.payload import Payload  # noqa: E402
from federation.transport import InProcessTransport  # noqa: E402
from lab import deployment  # noqa: E402
from lab.experiment import load_experiment  # noqa: E402

HERE = Path(__file__).resolve().parent
MODES = ("inprocess", "simulation", "deployment")
CASES = {
    "breast": ("breast.toml", {}),
    "default_credit": ("default_credit.toml", {}),
    "default_credit_full": ("default_credit_full_batch.toml", {}),
}
PHASES = {
    "query.setup": "setup", "query.psi_blind": "align", "query.psi_cross": "align",
    "query.psi_intersect": "align", "query.align": "align", "train.step": "train",
    "train.cross": "train", "train.decrypt": "train", "evaluate.loss_terms": "validate",
    "evaluate.validation_loss": "validate", "evaluate.partial_scores": "evaluate",
    "evaluate.score": "evaluate",
}


def machine() -> dict[str, Any]:
    import flwr

    model, memory = "", 0
    with contextlib.suppress(OSError):
        model = next((line.split(":", 1)[1].strip() for line in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return {"cpu_model": model, "cores": os.cpu_count(), "memory_mib": memory,
            "python": platform.python_version(), "flwr": flwr.__version__,
            "platform": platform.platform()}


def experiment_file(case: str, folder: Path) -> Path:
    """The case's experiment TOML, with absolute data paths and the case's overrides."""
    name, overrides = CASES[case]
    text = (REPO / "examples" / name).read_text().replace('"../data/', f'"{REPO / "data"}/')
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in overrides:
            line = f"{key} = {overrides[key]}"
        lines.append(line)
    path = folder / f"{case}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class TimedTransport(InProcessTransport):
    """The in-process transport, timing each exchange like FlowerTransport does."""

    def __init__(self) -> None:
        super().__init__()
        self.exchanges: list[dict[str, Any]] = []

    def exchange(self, requests: Mapping[str, tuple[str, Payload]]) -> dict[str, Payload]:
        started = time.perf_counter()
        replies = super().exchange(requests)
        seconds = time.perf_counter() - started
        self.exchanges.append({
            "seq": next(iter(requests.values()))[1].meta.get("seq"),
            "types": {role: req[0] for role, req in requests.items()},
            "seconds": round(seconds, 4), "attempts": 1, "parties": {}})
        return replies


def run_inprocess(experiment: Path, folder: Path) -> tuple[dict[str, Any], list[dict]]:
    transport = TimedTransport()
    started = time.perf_counter()
    result = Coordinator(transport, load_experiment(experiment), folder, run_key="bench").run()
    wall = time.perf_counter() - started
    return ({"wall_seconds": round(wall, 1), "test_auc": result.metrics["test_auc"],
             "epochs": result.epochs_run, "best_epoch": result.best_epoch + 1},
            transport.exchanges)


def run_simulation(experiment: Path, folder: Path) -> tuple[dict[str, Any], list[dict]]:
    from lab.run import run_experiment

    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    started = time.perf_counter()
    summary, _ = run_experiment(experiment, workdir=folder / "runs", quiet=True)
    wall = time.perf_counter() - started
    exchanges = json.loads((Path(summary["run_dir"]) / "exchanges.json").read_text())
    return ({"wall_seconds": round(wall, 1), "test_auc": summary["test_auc"],
             "epochs": summary["epochs"], "best_epoch": summary["best_epoch"]}, exchanges)


def run_deployment(experiment: Path, folder: Path) -> tuple[dict[str, Any], list[dict]]:
    fed = deployment.Federation("bench", folder / "fed")
    started = time.perf_counter()
    try:
        deployment.up(fed.name, fed.directory, experiment)
        up_seconds = time.perf_counter() - started
        started = time.perf_counter()
        summary = deployment.run_on_federation(
            experiment, fed, workdir=folder / "runs", echo=False,
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
        wall = time.perf_counter() - started
    finally:
        if fed.state_file.exists():
            deployment.down(fed)
    exchanges = json.loads((Path(summary["run_dir"]) / "exchanges.json").read_text())
    return ({"wall_seconds": round(wall, 1), "federation_up_seconds": round(up_seconds, 1),
             "test_auc": summary["test_auc"], "epochs": summary["epochs"],
             "best_epoch": summary["best_epoch"]}, exchanges)


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"mean": round(statistics.fmean(values), 3),
            "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3)}


def summarise(exchanges: list[dict[str, Any]], epochs: int, mode: str) -> dict[str, Any]:
    """Round trips per phase and step, seconds per exchange and the part that is not compute."""
    phases = Counter(PHASES[next(iter(e["types"].values()))] for e in exchanges)
    steps = (phases["train"] - epochs) // 3  # each epoch's closing train.step is not a step
    seconds = [e["seconds"] for e in exchanges]
    handler = [max((p["handler"] for p in e["parties"].values()), default=0.0)
               for e in exchanges]
    out: dict[str, Any] = {
        "exchanges": len(exchanges),
        "exchanges_by_phase": dict(phases),
        "optimisation_steps": steps,
        "round_trips_per_step": 3,
        "round_trips_per_epoch": round((phases["train"] + phases["validate"]) / max(epochs, 1),
                                       2),
        "seconds_per_exchange": _stats(seconds),
        "seconds_in_exchanges": round(sum(seconds), 1),
        "retries": sum(e["attempts"] - 1 for e in exchanges),
    }
    if any(e["parties"] for e in exchanges):
        overhead = [s - h for s, h in zip(seconds, handler, strict=True)]
        out["handler_seconds_per_exchange"] = _stats(handler)
        out["overhead_seconds_per_exchange"] = _stats(overhead)
        out["overhead_seconds_total"] = round(sum(overhead), 1)
        starts = [p["delivered"] for e in exchanges for p in e["parties"].values()]
        process = [p["process"] for e in exchanges for p in e["parties"].values()
                   if p.get("process", -1) >= 0]
        out["push_to_handler_seconds_per_message"] = _stats(starts)
        if mode == "deployment":  # a fresh process per message; in simulation a Ray actor
            out["clientapp_process_age_at_handler_seconds"] = _stats(process)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--modes", default=",".join(MODES),
                        help=f"comma-separated, of {', '.join(MODES)}")
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    for name, value in deployment.FLOWER_SETTINGS.items():
        os.environ.setdefault(name, value)
    results: dict[str, Any] = (json.loads(args.out.read_text()) if args.out.exists()
                               else {"benchmark": "deployment vs simulation", "runs": {}})
    results["machine"] = machine()
    results["units"] = {"seconds": "wall-clock seconds", "exchange": (
        "one protocol message to one or both parties (sent in one push) and its answers")}
    runners = {"inprocess": run_inprocess, "simulation": run_simulation,
               "deployment": run_deployment}
    for case in args.cases.split(","):
        for mode in args.modes.split(","):
            with tempfile.TemporaryDirectory(prefix=f"bench-{case}-{mode}-") as tmp:
                folder = Path(tmp)
                experiment = experiment_file(case, folder)
                load_before = os.getloadavg()
                print(f"[{case} / {mode}] running …", flush=True)
                outcome, exchanges = runners[mode](experiment, folder)
                entry = {**outcome, **summarise(exchanges, outcome["epochs"], mode),
                         "experiment_overrides": CASES[case][1],
                         "load_average_before": [round(x, 2) for x in load_before],
                         "load_average_after": [round(x, 2) for x in os.getloadavg()],
                         "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                         "command": f".venv/bin/python bench/deployment/run.py --cases {case} "
                                    f"--modes {mode}"}
            results["runs"].setdefault(case, {})[mode] = entry
            args.out.write_text(json.dumps(results, indent=2) + "\n")
            print(json.dumps({k: entry[k] for k in (
                "wall_seconds", "test_auc", "epochs", "exchanges", "seconds_per_exchange")}),
                flush=True)


if __name__ == "__main__":
    main()
