"""Flower's deployment engine on loopback: TLS, SuperNode authentication, crash recovery.

One federation (a TLS SuperLink with ``--enable-supernode-auth`` and two
registered SuperNodes, started with ``lab.deployment.up``) serves every test
here; the module fixture stops all of its processes by PID at the end. The
breast toy set runs with 1024-bit test-only keys and at most three epochs
(each deployment message costs seconds, see docs/deployment.md), and every
model is compared with the same experiment run in-process without Flower.

When a PostgreSQL URL is available (``$CREDITLAB_TEST_PG_URL``, exported by
``.ci/run``), the run is recorded on an MLflow tracking server whose backend
store is that PostgreSQL, and a test checks the record there.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pytest

from federation.driver import Coordinator
from federation.transport import InProcessTransport
from lab import deployment
from lab.deployment import DeploymentError, Federation
from lab.experiment import load_experiment
from models.persistence import load_part

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]


def experiment_copy(folder: Path, *, max_epochs: int, name: str = "breast") -> Path:
    """examples/breast.toml with absolute data paths, fewer epochs and a short retry."""
    text = (ROOT / "examples" / "breast.toml").read_text()
    text = text.replace('"../data/', f'"{ROOT / "data"}/')
    text = text.replace("max_epochs = 10", f"max_epochs = {max_epochs}")
    text = text.replace('name = "breast"', f'name = "{name}"')
    text += "\n[federation]\nretry_seconds = 10.0\nparty_timeout_seconds = 300.0\n"
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def model_of(directory: Path) -> np.ndarray:
    """Bank weights, bank intercept and platform weights of a run's two saved parts."""
    bank, _, _ = load_part(directory / "bank" / "model")
    platform, _, _ = load_part(directory / "platform" / "model")
    return np.concatenate([bank.weights, [bank.intercept], platform.weights])


def deployed_model(federation: Federation, summary: dict[str, Any]) -> np.ndarray:
    """The same, read from each party's own directory (``<party-dir>/<run key>/model``)."""
    run_key = Path(summary["run_dir"]).name
    state = federation.load_state()
    bank, _, _ = load_part(Path(state.nodes["bank"].party_dir) / run_key / "model")
    platform, _, _ = load_part(Path(state.nodes["platform"].party_dir) / run_key / "model")
    return np.concatenate([bank.weights, [bank.intercept], platform.weights])


def in_process(experiment: Path, folder: Path) -> tuple[np.ndarray, float]:
    """The reference: the same protocol driven without Flower (tests/test_recovery.py)."""
    result = Coordinator(InProcessTransport(), load_experiment(experiment), folder,
                         run_key="reference").run()
    return model_of(folder), result.metrics["test_auc"]


# --------------------------------------------------------------------------- fixtures


def _postgres_url_or_none() -> str | None:
    return os.environ.get("CREDITLAB_TEST_PG_URL") or None


@pytest.fixture(scope="module")
def tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An MLflow tracking server on a fresh PostgreSQL database, or a SQLite file without one."""
    folder = tmp_path_factory.mktemp("mlflow")
    url = _postgres_url_or_none()
    if url is None:
        yield {"uri": f"sqlite:///{folder / 'mlflow.db'}", "database": None}
        return
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"creditlab_mlflow_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    store = base.set(database=name).render_as_string(hide_password=False)
    port = deployment.free_port()
    server = deployment.spawn(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--backend-store-uri", store,
         "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        env={**os.environ, "MLFLOW_TRACKING_URI": ""}, log=folder / "server.log", cwd=folder)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            assert deployment.is_alive(server), (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "the MLflow server did not answer /health"
            time.sleep(0.5)
        yield {"uri": uri, "database": store}
    finally:
        deployment.stop_process(server)
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Federation, Path]]:
    """A loopback federation with TLS and SuperNode auth; stopped by PID afterwards."""
    folder = tmp_path_factory.mktemp("federation")
    experiment = experiment_copy(folder, max_epochs=3)
    fed = Federation("loopback", folder / "fed")
    with pytest.MonkeyPatch.context() as patch:
        # breast is tiny: a process pool per ClientApp process would cost more than it saves
        patch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
        try:
            deployment.up(fed.name, fed.directory, experiment)
            yield fed, experiment
        finally:
            if fed.state_file.exists():
                deployment.down(fed)


@pytest.fixture(scope="module")
def reference(federation: tuple[Federation, Path], tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[np.ndarray, float]:
    _, experiment = federation
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
        return in_process(experiment, tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="module")
def loopback_run(federation: tuple[Federation, Path], tracking: dict[str, Any],
                 tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    fed, experiment = federation
    return deployment.run_on_federation(experiment, fed, echo=False,
                                        workdir=tmp_path_factory.mktemp("runs"),
                                        tracking_uri=tracking["uri"])


# ------------------------------------------------------------------------------ tests


def test_tls_and_node_auth_are_on(federation: tuple[Federation, Path]) -> None:
    fed, _ = federation
    state = fed.load_state()
    link = state.superlink
    assert link is not None
    assert "--enable-supernode-auth" in link.command and "--insecure" not in link.command
    assert "--ssl-certfile" in link.command
    import ssl

    plain_failed = False
    try:
        urllib.request.urlopen(f"http://{state.address}/health", timeout=5)
    except OSError:
        plain_failed = True
    assert plain_failed, "the SuperLink answered plain HTTP"
    context = ssl.create_default_context(cafile=state.ca_cert)
    with urllib.request.urlopen(f"https://{state.address}/health", context=context,
                                timeout=5) as answer:
        assert answer.status == 200
    nodes = deployment.list_nodes(fed)
    assert sorted(int(n["node-id"]) for n in nodes if n["status"] == "online") == sorted(
        node.node_id for node in state.nodes.values())


def test_loopback_run_trains_the_same_model_as_in_process(
        federation: tuple[Federation, Path], loopback_run: dict[str, Any],
        reference: tuple[np.ndarray, float]) -> None:
    fed, _ = federation
    summary = loopback_run
    weights, auc = reference
    np.testing.assert_array_equal(deployed_model(fed, summary), weights)
    assert summary["test_auc"] == auc
    assert summary["rows_aligned"] == 569
    assert summary["epochs"] == 3
    assert summary["ledger_plaintext_violations"] == 0
    assert summary["references_skipped"] is None  # loopback: the lab can read the bank's dir
    assert summary["centralized_taylor_test_auc"] == pytest.approx(auc, abs=0.003)
    run_dir = Path(summary["run_dir"])
    exchanges = json.loads((run_dir / "exchanges.json").read_text())
    # set-up 1 + alignment 4 + 3 epochs × (3 per step + 3 to close) + evaluation 2
    assert len(exchanges) == 1 + 4 + 3 * 6 + 2
    assert not (run_dir / "failure.json").exists()


def _last_seq(session_dir: Path) -> int:
    try:
        with np.load(session_dir / "state.npz", allow_pickle=False) as data:
            return int(json.loads(data["session"].tobytes())["last_seq"])
    except (OSError, ValueError, KeyError):
        return -1


def test_a_killed_platform_supernode_is_restarted_and_the_run_completes(
        federation: tuple[Federation, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Kill the platform's SuperNode group (SuperNode, SuperExec, any ClientApp) mid-training
    with SIGKILL, restart it with the same key and node config: same model, same AUC."""
    fed, _ = federation
    experiment = experiment_copy(tmp_path, max_epochs=2)  # two epochs: one is mid-training
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
    reference = in_process(experiment, tmp_path / "reference")
    platform_root = Path(fed.load_state().nodes["platform"].party_dir)
    earlier = set(platform_root.glob("flwr-*"))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["summary"] = deployment.run_on_federation(
                experiment, fed, echo=False, workdir=tmp_path / "runs")
        except Exception as exc:  # handed over to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    killed_at = -1
    try:
        deadline = time.monotonic() + 600
        while thread.is_alive() and time.monotonic() < deadline:
            sessions = [d for d in platform_root.glob("flwr-*") if d not in earlier]
            # sequence number 6 is the first training step: the platform acted on it
            if sessions and (seq := _last_seq(sessions[0])) >= 6:
                old = fed.load_state().nodes["platform"].process
                assert old is not None and deployment.stop_process(old, crash=True)
                killed_at = seq
                # retried until the SuperLink has noticed the old node is gone (≤ 60 s)
                new = deployment.restart_node(fed, "platform")
                break
            time.sleep(0.2)
        thread.join(timeout=900)
    finally:
        if not deployment.is_alive(fed.load_state().nodes["platform"].process):
            deployment.restart_node(fed, "platform")  # leave the federation whole
    assert killed_at >= 6, f"the run ended before training started: {outcome}"
    assert not thread.is_alive(), "the run did not finish after the restart"
    assert "error" not in outcome, outcome.get("error")
    assert new.pid != old.pid
    summary = outcome["summary"]
    weights, auc = reference
    assert summary["test_auc"] == auc
    np.testing.assert_array_equal(deployed_model(fed, summary), weights)
    exchanges = json.loads((Path(summary["run_dir"]) / "exchanges.json").read_text())
    assert len(exchanges) == 1 + 4 + 2 * 6 + 2  # nothing acted on twice, nothing skipped


def test_an_unregistered_supernode_is_refused(federation: tuple[Federation, Path],
                                              tmp_path: Path) -> None:
    fed, _ = federation
    state = fed.load_state()
    key = tmp_path / "rogue"
    deployment.ensure_node_key(key, tmp_path / "rogue.pub")
    rogue = state.nodes["bank"].model_copy(update={
        "port": deployment.free_port(), "party_dir": str(tmp_path / "party"),
        "private_key": str(key), "public_key": str(tmp_path / "rogue.pub"),
        "node_id": None, "process": None})
    record = deployment.start_node(fed, "bank", node=rogue, home=tmp_path / "home")
    try:
        code = deployment.wait_exit(record, timeout=180)
    finally:
        deployment.stop_process(record)
    log = Path(record.log).read_text()
    assert code not in (None, 0), log[-1500:]
    assert "Failed to activate SuperNode" in log
    online = {int(n["node-id"]) for n in deployment.list_nodes(fed) if n["status"] == "online"}
    assert online == {node.node_id for node in state.nodes.values()}


def test_mlflow_server_with_postgresql_backend_holds_the_run(
        tracking: dict[str, Any], loopback_run: dict[str, Any]) -> None:
    if tracking["database"] is None:
        from lab.store.testing import postgres_url

        postgres_url()  # skips with the reason (fails where CI requires PostgreSQL)
    summary = loopback_run
    client = mlflow.MlflowClient(tracking_uri=tracking["uri"])
    run = client.get_run(summary["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["crypto.key_bits"] == "1024"
    assert run.data.metrics["test_auc"] == pytest.approx(summary["test_auc"])
    history = client.get_metric_history(run.info.run_id, "validation_loss")
    assert [m.step for m in history] == [1, 2, 3]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"ledger.json", "manifest.json", "roc.png", "ks.png", "loss.png"} <= artifacts
    from sqlalchemy import create_engine, text

    engine = create_engine(tracking["database"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("select status from runs where run_uuid = :id"),
                                      {"id": run.info.run_id}).all()
    finally:
        engine.dispose()
    assert rows == [("FINISHED",)]


def test_a_second_node_claiming_a_role_stops_the_run(federation: tuple[Federation, Path],
                                                     tmp_path: Path) -> None:
    """Registered, but holding the platform's role a second time: the run refuses to start."""
    fed, experiment = federation
    state = fed.load_state()
    key, public = tmp_path / "second", tmp_path / "second.pub"
    deployment.ensure_node_key(key, public)
    node_id = deployment.register_node(fed, public, "second-platform")
    assert node_id is not None
    second = state.nodes["platform"].model_copy(update={
        "port": deployment.free_port(), "party_dir": str(tmp_path / "party"),
        "private_key": str(key), "public_key": str(public), "node_id": node_id,
        "process": None})
    record = deployment.start_node(fed, "platform", node=second, home=tmp_path / "home")
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            nodes = deployment.list_nodes(fed)
            if any(int(n["node-id"]) == node_id and n["status"] == "online" for n in nodes):
                break
            assert deployment.is_alive(record), Path(record.log).read_text()[-1500:]
            time.sleep(1.0)
        with pytest.raises(DeploymentError, match="two SuperNodes claim the role 'platform'"):
            deployment.run_on_federation(experiment, fed, echo=False, workdir=tmp_path / "runs")
        failures = list((tmp_path / "runs" / "breast").glob("flwr-*/failure.json"))
        assert len(failures) == 1
        assert not list((tmp_path / "runs" / "breast").glob("flwr-*/summary.json"))
    finally:
        deployment.stop_process(record)
        deployment.unregister_node(fed, node_id)


def test_a_party_away_past_the_timeout_stops_the_run_without_a_result(
        federation: tuple[Federation, Path], tmp_path: Path) -> None:
    """Kill the platform mid-training and leave it down: a clear stop, nothing half-written.

    Runs last on the shared federation: it leaves the platform's SuperNode down.
    """
    fed, _ = federation
    experiment = experiment_copy(tmp_path, max_epochs=2)
    experiment.write_text(experiment.read_text().replace(
        "party_timeout_seconds = 300.0", "party_timeout_seconds = 20.0"))
    platform_root = Path(fed.load_state().nodes["platform"].party_dir)
    earlier = set(platform_root.glob("flwr-*"))
    outcome: dict[str, Any] = {}
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def run() -> None:
        try:
            outcome["summary"] = deployment.run_on_federation(
                experiment, fed, echo=False, workdir=tmp_path / "runs", tracking_uri=uri)
        except DeploymentError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 600
    killed = False
    while thread.is_alive() and time.monotonic() < deadline and not killed:
        sessions = [d for d in platform_root.glob("flwr-*") if d not in earlier]
        if sessions and _last_seq(sessions[0]) >= 6:
            killed = deployment.stop_process(fed.load_state().nodes["platform"].process,
                                             crash=True)
        time.sleep(0.2)
    thread.join(timeout=600)
    assert killed and not thread.is_alive()
    assert "summary" not in outcome
    assert "the platform did not answer" in str(outcome["error"])
    assert "(party timeout): the run stops and no result is recorded" in str(outcome["error"])
    (run_dir,) = (tmp_path / "runs" / "breast").glob("flwr-*")
    assert json.loads((run_dir / "failure.json").read_text())["error"].startswith("PartyAway")
    assert not (run_dir / "summary.json").exists()
    runs = mlflow.MlflowClient(tracking_uri=uri).search_runs(
        [mlflow.MlflowClient(tracking_uri=uri).get_experiment_by_name("breast").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    # the platform's own checkpoints stay in its directory for a later run
    (session,) = [d for d in platform_root.glob("flwr-*") if d not in earlier]
    assert (session / "state.npz").exists()


def test_status_and_down_stop_every_recorded_process(tmp_path: Path) -> None:
    """``down`` by PID leaves no process of the federation's groups behind (fast: no run)."""
    experiment = experiment_copy(tmp_path, max_epochs=1)
    fed = Federation("short", tmp_path / "fed")
    try:
        state = deployment.up(fed.name, fed.directory, experiment)
        report = deployment.status(fed)
        assert report["superlink"]["alive"]
        assert all(node["alive"] for node in report["nodes"].values())
        assert len([n for n in report["supernodes"] if n["status"] == "online"]) == 2
        groups = [state.superlink] + [n.process for n in state.nodes.values()]
    finally:
        stopped = deployment.down(fed)
    assert stopped == {"bank": True, "platform": True, "superlink": True}
    report = deployment.status(fed)
    assert not report["superlink"]["alive"]
    assert not any(node["alive"] for node in report["nodes"].values())
    left = subprocess.run(["ps", "-eo", "pgid=,stat="], capture_output=True, text=True).stdout
    live_groups = {int(line.split()[0]) for line in left.splitlines()
                   if line.split() and not line.split()[1].startswith("Z")}
    assert not live_groups & {g.pid for g in groups if g is not None}
