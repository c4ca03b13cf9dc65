"""The pieces of the deployment set-up that need no running Flower: certificates, keys,
config strings, process groups, skipped references, and the coordinator's re-sending."""

from __future__ import annotations

import ipaddress
import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.common.config import parse_config_args
from flwr.common.constant import ErrorCode

from federation.payload import Payload
from federation.transport import FlowerTransport, PartyAway, PartyFailed
from lab import deployment
from lab.deployment import DeploymentError, Federation, NodeRecord, ProcessRecord
from lab.experiment import load_experiment
from lab.run import references_or_reason

ROOT = Path(__file__).resolve().parents[1]


def test_server_certificate_names_the_dialled_addresses_and_chains_to_the_ca(
        tmp_path: Path) -> None:
    fed = Federation("lab", tmp_path)
    deployment.ensure_certificates(fed, ["127.0.0.1", "localhost"])
    ca = x509.load_pem_x509_certificate(fed.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(fed.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)
    assert cert.public_key().curve.name == "secp384r1"
    for secret in (fed.ca_key, fed.server_key):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600


def test_the_ca_is_kept_and_the_server_certificate_follows_the_hosts(tmp_path: Path) -> None:
    fed = Federation("lab", tmp_path)
    deployment.ensure_certificates(fed, ["127.0.0.1"])
    ca_before, cert_before = fed.ca_cert.read_bytes(), fed.server_cert.read_bytes()
    deployment.ensure_certificates(fed, ["127.0.0.1"])
    assert fed.server_cert.read_bytes() == cert_before
    deployment.ensure_certificates(fed, ["10.1.2.3", "lab.example"])
    assert fed.ca_cert.read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate(fed.server_cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    assert san.get_values_for_type(x509.DNSName) == ["lab.example"]


def test_node_keys_are_p384_openssh_and_made_once(tmp_path: Path) -> None:
    private, public = tmp_path / "bank", tmp_path / "bank.pub"
    deployment.ensure_node_key(private, public)
    key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
    assert public.read_text().startswith("ecdsa-sha2-nistp384 ")
    loaded = serialization.load_ssh_public_key(public.read_bytes())
    assert loaded.public_numbers() == key.public_key().public_numbers()
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    first = private.read_bytes()
    deployment.ensure_node_key(private, public)
    assert private.read_bytes() == first


def test_node_and_run_config_strings_parse_back_in_flower(tmp_path: Path) -> None:
    node = NodeRecord(role="bank", port=1, data_path="/data/my bank/loans.csv",
                      party_dir="/srv/credit lab/bank", private_key="k", public_key="k.pub")
    assert parse_config_args([deployment.node_config(node)]) == {
        "role": "bank", "data-path": "/data/my bank/loans.csv",
        "party-dir": "/srv/credit lab/bank"}
    text = deployment.run_config(Path("examples/breast.toml"), tmp_path / "runs",
                                 tracking_uri="http://127.0.0.1:5000")
    assert parse_config_args([text]) == {
        "experiment": str((Path("examples/breast.toml")).resolve()),
        "workdir": str((tmp_path / "runs").resolve()),
        "mlflow-tracking-uri": "http://127.0.0.1:5000", "reference-bank-dir": ""}
    with pytest.raises(DeploymentError, match="double quote"):
        deployment.config_string({"data-path": 'a"b.csv'})


def test_the_cli_connection_is_isolated_and_uses_our_ca(tmp_path: Path) -> None:
    fed = Federation("loopback", tmp_path)
    path = deployment.write_connection(fed, "127.0.0.1:18000")
    assert path == tmp_path / "home" / "config.toml"
    config = tomllib.loads(path.read_text())
    assert config["superlink"]["default"] == "loopback"
    assert config["superlink"]["loopback"] == {
        "address": "127.0.0.1:18000", "root-certificates": str(fed.ca_cert)}
    assert "supergrid" not in config["superlink"]
    env = deployment.flower_env(fed.home)
    assert env["FLWR_HOME"] == str(fed.home)
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert (env["FLWR_TELEMETRY_ENABLED"], env["FLWR_DISABLE_UPDATE_CHECK"],
            env["FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION"]) == ("0", "1", "1")


def test_names_are_checked_and_directories_resolve(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DeploymentError, match="not allowed"):
        Federation("bad name", tmp_path)
    monkeypatch.setenv("CREDITLAB_FEDERATIONS", str(tmp_path / "feds"))
    assert deployment.resolve_federation("lab").directory == (tmp_path / "feds" / "lab")
    fed = Federation("lab", tmp_path / "elsewhere")
    fed.directory.mkdir()
    fed.save_state(deployment.FederationState(
        name="lab", directory=str(fed.directory), host="127.0.0.1", address="127.0.0.1:1",
        port=1, ca_cert="ca", experiment="e.toml"))
    found = deployment.resolve_federation(str(fed.directory))
    assert (found.name, found.directory) == ("lab", fed.directory)
    with pytest.raises(DeploymentError, match="no federation"):
        Federation("other", tmp_path / "none").load_state()


def test_stop_process_ends_the_whole_group_and_never_a_recycled_pid(tmp_path: Path) -> None:
    record = deployment.spawn(["bash", "-c", "sleep 300 & sleep 300 & wait"],
                              env=os.environ, log=tmp_path / "log", cwd=tmp_path)
    deadline = time.monotonic() + 30
    while len(deployment._group_members(record)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(deployment._group_members(record)) == 3  # bash and two sleeps
    assert deployment.is_alive(record)
    assert deployment.stop_process(record, grace=5)
    assert not deployment.is_alive(record)
    assert deployment._group_members(record) == []
    assert deployment.wait_exit(record, timeout=5) == -signal.SIGTERM
    assert deployment.stop_process(record) is False
    # our own PID under another start time stands for a recycled PID: left alone
    me = deployment._stat(os.getpid())
    assert me is not None
    stranger = ProcessRecord(pid=os.getpid(), start_ticks=me[2] + 1, command=["x"], log="")
    assert not deployment.is_alive(stranger)
    assert deployment.stop_process(stranger) is False


def test_free_ports_can_be_bound() -> None:
    import socket

    port = deployment.free_port()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))
    assert 1024 < port < 65536


def test_references_are_skipped_with_the_reason_when_the_bank_dir_is_out_of_reach(
        tmp_path: Path) -> None:
    experiment = load_experiment(ROOT / "examples" / "breast.toml")
    result = references_or_reason(experiment, tmp_path / "bank-elsewhere", epochs=3)
    assert result == {"references_skipped": "not reachable from the coordinator's machine: "
                                            f"{tmp_path / 'bank-elsewhere' / 'state.npz'}"}


def test_the_cli_offers_federation_commands() -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "creditlab"), "federation",
                           "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    for command in ("up", "down", "status"):
        assert command in done.stdout
    done = subprocess.run([str(Path(sys.executable).parent / "creditlab"), "run", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert "--federation" in done.stdout


# ------------------------------------------------ the coordinator's retries (no Flower)


class _Reply:
    """What FlowerTransport reads of a Flower reply message."""

    def __init__(self, to: str, node: int, payload: Payload | None = None,
                 error_code: int | None = None) -> None:
        self.metadata = SimpleNamespace(reply_to_message_id=to, src_node_id=node)
        self.content = (payload or Payload()).to_records()
        self.error = SimpleNamespace(code=error_code, reason=f"error code {error_code}")

    def has_error(self) -> bool:
        return self.error.code is not None


class ScriptedGrid:
    """A Grid whose two nodes answer role queries at once and protocol messages as scripted.

    ``script[role]`` says what happens to each copy of a protocol message sent
    to that role, in order: ``"answer"``; ``"slow"`` (answered after 20
    pulls); ``"lost"`` (never answered); ``"restart"`` (the node dies with the
    copy and comes back: a new activation time); ``"late"`` (like restart, but
    the old copy's answer still turns up once the next copy is pushed); or a
    Flower error code.
    """

    NODES = {"bank": 11, "platform": 22}

    def __init__(self, script: dict[str, list[str | int]]) -> None:
        self.script = {role: list(steps) for role, steps in script.items()}
        self.activated = dict.fromkeys(self.NODES.values(), "t0")
        self.ready: dict[str, _Reply] = {}
        self.slow: dict[str, tuple[int, _Reply]] = {}
        self.late: list[tuple[str, _Reply]] = []
        self.pushed: list[str] = []
        self.copies: dict[str, list[int]] = {}
        self.count = 0

    def get_node_ids(self) -> list[int]:
        return list(self.NODES.values())

    def get_nodes(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(node_id=n, last_activated_at=self.activated[n])
                for n in self.NODES.values()]

    def push_messages(self, messages) -> list[str]:
        ids = []
        self.ready.update(self.late)
        self.late = []
        for message in messages:
            self.count += 1
            mid = f"m{self.count}"
            ids.append(mid)
            node = message.metadata.dst_node_id
            role = next(r for r, n in self.NODES.items() if n == node)
            if message.metadata.message_type == "query.role":
                self.ready[mid] = _Reply(mid, node, Payload(meta={"role": role}))
                continue
            self.pushed.append(role)
            self.copies.setdefault(role, []).append(self.count)
            steps = self.script.setdefault(role, [])
            step = steps.pop(0) if steps else "answer"
            reply = _Reply(mid, node, Payload(meta={"from": role, "copy": self.count}))
            if step == "answer":
                self.ready[mid] = reply
            elif step == "slow":
                self.slow[mid] = (20, reply)
            elif step in ("restart", "late"):
                self.activated[node] = f"t{self.count}"
                if step == "late":
                    self.late.append((mid, reply))
            elif isinstance(step, int):
                self.ready[mid] = _Reply(mid, node, error_code=step)
        return ids

    def pull_messages(self, ids) -> list[_Reply]:
        for mid, (left, reply) in list(self.slow.items()):
            if left <= 1:
                self.ready[mid] = reply
                del self.slow[mid]
            else:
                self.slow[mid] = (left - 1, reply)
        return [self.ready.pop(i) for i in list(ids) if i in self.ready]


@pytest.fixture(autouse=True)
def _run_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower's Message() wants the task, run and node ids a ServerApp process would have."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 1)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


def _exchange(grid: ScriptedGrid, *, party_timeout: float = 30.0):
    transport = FlowerTransport(grid, retry_after=0.02, poll=0.002,  # type: ignore[arg-type]
                                party_timeout=party_timeout)
    replies = transport.exchange({role: ("train.step", Payload(meta={"seq": 7}))
                                  for role in ("bank", "platform")})
    return replies, transport.exchanges[-1]


def test_a_restarted_party_gets_the_message_again() -> None:
    grid = ScriptedGrid({"platform": ["restart", "answer"]})
    replies, record = _exchange(grid)
    assert {role: r.meta["from"] for role, r in replies.items()} == {
        "bank": "bank", "platform": "platform"}
    assert record["attempts"] == 2
    assert grid.pushed == ["bank", "platform", "platform"]  # the bank is not asked again


def test_the_answer_to_an_earlier_copy_completes_the_exchange() -> None:
    grid = ScriptedGrid({"platform": ["late", "lost"]})
    replies, record = _exchange(grid)
    first, second = grid.copies["platform"]
    assert replies["platform"].meta["copy"] == first
    assert record["attempts"] == 2


def test_a_slow_party_is_not_sent_copies() -> None:
    grid = ScriptedGrid({"platform": ["slow"]})
    replies, record = _exchange(grid)
    assert replies["platform"].meta["from"] == "platform"
    assert record["attempts"] == 1
    assert grid.pushed == ["bank", "platform"]


def test_node_unavailable_and_crashed_clientapp_replies_mean_send_again() -> None:
    grid = ScriptedGrid({"platform": [ErrorCode.NODE_UNAVAILABLE,
                                      ErrorCode.CLIENT_APP_CRASHED, "answer"]})
    replies, record = _exchange(grid)
    assert replies["platform"].meta["from"] == "platform"
    assert record["attempts"] == 3


def test_an_exception_in_the_party_stops_the_run() -> None:
    grid = ScriptedGrid({"bank": [ErrorCode.CLIENT_APP_RAISED_EXCEPTION]})
    with pytest.raises(PartyFailed, match="the bank failed on train.step"):
        _exchange(grid)


def test_a_party_that_never_answers_is_reported_away() -> None:
    grid = ScriptedGrid({"platform": ["lost"] * 1000})
    with pytest.raises(PartyAway, match="the platform did not answer train.step"):
        _exchange(grid, party_timeout=0.5)
    # one copy, then one more per 8 × retry_after (0.16 s) as a safety net: not one per poll
    assert 2 <= grid.pushed.count("platform") <= 5
