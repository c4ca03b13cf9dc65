"""Flower's deployment engine for CreditLab: a SuperLink, one SuperNode per party.

``creditlab federation up`` starts, on this machine, what production spreads
over three domains (DESIGN §1): the lab's SuperLink (it relays messages and
starts the ServerApp; it holds no data and no key) and one SuperNode for the
bank and one for the platform, each started with its role, data path and
party directory in its node config. Everything is on TLS, and the SuperLink
accepts only SuperNodes whose public key was registered with it, so a node
that merely knows the address cannot join and read what the coordinator
relays.

What lives where, under the federation directory (``--dir``)::

    certs/ca.crt, ca.key          the lab's private CA (ca.key never leaves the lab)
    certs/server.pem, server.key  the SuperLink's certificate (SAN = dialled addresses)
    keys/<role>, keys/<role>.pub  each SuperNode's ECDSA P-384 key pair (OpenSSH format)
    home/config.toml              FLWR_HOME of the flwr CLI: [superlink.<name>]
    link/                         the SuperLink's FLWR_HOME and log (and state.db if asked)
    nodes/<role>/                 each SuperNode's FLWR_HOME and log
    parties/<role>/               each party's directory (keys, checkpoints, model part)
    state.json                    addresses, ports and PIDs, for ``down`` and ``status``

Processes are started in their own process group (``setsid``) and stopped by
the PIDs recorded in ``state.json`` — never by name — together with the
children Flower spawns (``flower-superexec``, ``flwr-serverapp``,
``flwr-clientapp``). A recorded PID is trusted only while its start time
matches, so a recycled PID is never signalled.

On several machines the same pieces are started by hand, one per domain:
see ``docs/deployment.md``. The functions here take a ``prefix`` (e.g.
``ip netns exec bank``) so a test can place each process in its own network
namespace.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import BaseModel, ConfigDict

from lab.errors import CreditLabError
from lab.experiment import Experiment, load_experiment

__all__ = [
    "ROLES",
    "DeploymentError",
    "Federation",
    "FederationState",
    "NodeRecord",
    "ProcessRecord",
    "default_directory",
    "down",
    "ensure_certificates",
    "ensure_node_key",
    "flower_env",
    "free_port",
    "is_alive",
    "list_nodes",
    "register_node",
    "resolve_federation",
    "restart_node",
    "run_on_federation",
    "start_node",
    "start_superlink",
    "status",
    "stop_process",
    "unregister_node",
    "up",
    "wait_exit",
]

ROLES = ("bank", "platform")
REPO_ROOT = Path(__file__).resolve().parents[1]
"""The Flower app (pyproject.toml with [tool.flwr.app]) that ``flwr run`` uploads."""

FLOWER_SETTINGS = {
    "FLWR_TELEMETRY_ENABLED": "0",  # no anonymous telemetry to telemetry.flower.ai
    "FLWR_DISABLE_UPDATE_CHECK": "1",  # no PyPI look-ups from the CLI or the SuperLink
    # no `uv sync` per run: the parties' environments are installed by their operators
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    # SuperExec asks for new ClientApp/ServerApp tasks every second by default; every
    # protocol message waits for that poll, so ask ten times as often (cheap on loopback).
    "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.1",
}

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


class DeploymentError(CreditLabError):
    """A federation could not be started, reached or stopped; the message says what to do."""


# ------------------------------------------------------------------------------- records


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProcessRecord(_Record):
    """A process we started: enough to find it again, and only it."""

    pid: int
    start_ticks: int
    """Start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a
    recycled PID from ours."""
    command: list[str]
    log: str


class NodeRecord(_Record):
    """One party's SuperNode."""

    role: str
    port: int
    """The SuperNode's local Runtime API port (its ClientApp processes talk to it)."""
    data_path: str
    party_dir: str
    private_key: str
    public_key: str
    node_id: int | None = None
    """Fixed by the SuperLink when the key is registered."""
    process: ProcessRecord | None = None


class FederationState(_Record):
    """``state.json``: how to reach a federation and which processes are its own."""

    name: str
    directory: str
    host: str
    """Address the SuperLink binds to."""
    address: str
    """``host:port`` the SuperNodes and the flwr CLI dial (in the certificate's SAN)."""
    port: int
    ca_cert: str
    experiment: str
    database: str | None = None
    superlink: ProcessRecord | None = None
    nodes: dict[str, NodeRecord] = {}


# ------------------------------------------------------------------------------- layout


class Federation:
    """The files of one federation under its directory (see the module docstring)."""

    def __init__(self, name: str, directory: Path) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", name):
            raise DeploymentError(
                f"federation name {name!r} is not allowed: use letters, digits, '_' or '-', "
                "starting with a letter (it becomes a [superlink.<name>] table)")
        self.name = name
        self.directory = directory.resolve()

    certs = property(lambda self: self.directory / "certs")
    ca_cert = property(lambda self: self.certs / "ca.crt")
    ca_key = property(lambda self: self.certs / "ca.key")
    server_cert = property(lambda self: self.certs / "server.pem")
    server_key = property(lambda self: self.certs / "server.key")
    home = property(lambda self: self.directory / "home")
    link_dir = property(lambda self: self.directory / "link")
    state_file = property(lambda self: self.directory / "state.json")

    def node_dir(self, role: str) -> Path:
        return self.directory / "nodes" / role

    def party_dir(self, role: str) -> Path:
        return self.directory / "parties" / role

    def private_key(self, role: str) -> Path:
        return self.directory / "keys" / role

    def public_key(self, role: str) -> Path:
        return self.directory / "keys" / f"{role}.pub"

    def load_state(self) -> FederationState:
        if not self.state_file.exists():
            raise DeploymentError(
                f"no federation at {self.directory} (no state.json): start one with "
                f"`creditlab federation up --name {self.name} --experiment EXPERIMENT.toml`")
        return FederationState.model_validate_json(self.state_file.read_text())

    def save_state(self, state: FederationState) -> None:
        """Write state.json atomically: ``down`` must always find a whole file."""
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(state.model_dump_json(indent=2))
        os.replace(tmp, self.state_file)


def default_directory(name: str) -> Path:
    """``$CREDITLAB_FEDERATIONS/<name>``, default ``.creditlab/federations/<name>`` here."""
    root = os.environ.get("CREDITLAB_FEDERATIONS") or ".creditlab/federations"
    return Path(root) / name


def resolve_federation(name_or_dir: str, directory: Path | None = None) -> Federation:
    """A federation from its name (default directory), or from a directory with state.json."""
    if directory is not None:
        return Federation(name_or_dir, directory)
    candidate = Path(name_or_dir)
    if (candidate / "state.json").is_file():
        state = FederationState.model_validate_json((candidate / "state.json").read_text())
        return Federation(state.name, candidate)
    return Federation(name_or_dir, default_directory(name_or_dir))


# ------------------------------------------------------------------- certificates, keys


def _write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600, never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _cert_hosts(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(v) for v in san.get_values_for_type(x509.IPAddress)} | set(
        san.get_values_for_type(x509.DNSName))


def ensure_certificates(federation: Federation, hosts: Sequence[str], *, days: int = 365
                        ) -> None:
    """The lab's CA and a SuperLink certificate whose SAN names every address in ``hosts``.

    TLS checks the name the client dialled against the certificate's
    subjectAltName, so a SuperNode dialling ``127.0.0.1`` needs ``IP:127.0.0.1``
    in it (FLOWER_NOTES §3.4). Keys are ECDSA P-384. The CA is made once and
    kept; the server certificate is re-issued when the hosts change.
    """
    federation.certs.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    if not (federation.ca_cert.exists() and federation.ca_key.exists()):
        ca_key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                             f"CreditLab federation CA ({federation.name})")])
        ca_cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA384()))
        _write_private(federation.ca_key, ca_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        federation.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        federation.server_cert.unlink(missing_ok=True)
    wanted = set(hosts)
    if federation.server_cert.exists() and _cert_hosts(federation.server_cert) == wanted:
        return
    ca_key_loaded = serialization.load_pem_private_key(federation.ca_key.read_bytes(), None)
    ca_cert_loaded = x509.load_pem_x509_certificate(federation.ca_cert.read_bytes())
    assert isinstance(ca_key_loaded, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_cert_loaded.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(_san_entries(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key_loaded.public_key()), critical=False)
        .sign(ca_key_loaded, hashes.SHA384()))
    _write_private(federation.server_key, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    federation.server_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_node_key(private_path: Path, public_path: Path) -> None:
    """An ECDSA P-384 key pair in OpenSSH format, the form ``flower-supernode`` signs with.

    Made once: the SuperLink knows a node by its registered public key, so a
    restarted node must come back with the same key to be let in again.
    """
    if private_path.exists() and public_path.exists():
        return
    key = ec.generate_private_key(ec.SECP384R1())
    _write_private(private_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption()))
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH) + b"\n")


# ------------------------------------------------------------------------------ processes


def flower_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a Flower process: isolated FLWR_HOME, venv on PATH, no phoning home.

    SuperLink and SuperNode start ``flower-superexec``, ``flwr-serverapp`` and
    ``flwr-clientapp`` by bare name, so this interpreter's ``bin`` must be on
    PATH (FLOWER_NOTES §4.1).
    """
    env = dict(os.environ)
    env.update(FLOWER_SETTINGS)
    env["FLWR_HOME"] = str(home)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(extra or {})
    return env


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the OS picks it; nothing is hard-coded)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this Python process started, kept so they can be reaped (no zombies)."""


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, process group, start ticks) of a process, or None if there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[2]), int(fields[19])


def spawn(command: Sequence[str], *, env: Mapping[str, str], log: Path, cwd: Path,
          prefix: Sequence[str] = ()) -> ProcessRecord:
    """Start ``command`` in a new session (its own process group), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full = [*prefix, *command]
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(full)}\n".encode())
        out.flush()
        process = subprocess.Popen(full, env=dict(env), cwd=cwd, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    _CHILDREN[process.pid] = process
    stat = _stat(process.pid)
    return ProcessRecord(pid=process.pid, start_ticks=stat[2] if stat else 0,
                         command=list(full), log=str(log))


_EXIT_CODES: dict[int, int] = {}


def _reap(pid: int) -> None:
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        _EXIT_CODES[pid] = int(child.returncode)
        _CHILDREN.pop(pid, None)


def is_alive(record: ProcessRecord | None) -> bool:
    """Whether the recorded process is still running (and is the one we started)."""
    if record is None:
        return False
    _reap(record.pid)
    stat = _stat(record.pid)
    return stat is not None and stat[0] not in ("Z", "X") and stat[2] == record.start_ticks


def _group_members(record: ProcessRecord) -> list[int]:
    """Live processes of the recorded process group that started after its leader."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if (stat is not None and stat[1] == record.pid and stat[0] not in ("Z", "X")
                and stat[2] >= record.start_ticks):
            members.append(int(entry.name))
    return members


def stop_process(record: ProcessRecord | None, *, grace: float = 10.0,
                 crash: bool = False) -> bool:
    """Stop a recorded process and its process group: SIGTERM, then SIGKILL after ``grace``.

    The group holds the children Flower started (superexec, ClientApps,
    ServerApp), which would otherwise linger for seconds. ``crash`` sends
    SIGKILL at once, as a power cut would (fault tests). Returns whether
    anything was still running.
    """
    if record is None:
        return False
    if not is_alive(record) and not _group_members(record):
        return False
    steps = [(signal.SIGKILL, 5.0)] if crash else [(signal.SIGTERM, grace), (signal.SIGKILL, 5.0)]
    for sig, wait in steps:
        try:
            os.killpg(record.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not _group_members(record):
                _reap(record.pid)
                return True
            time.sleep(0.1)
    _reap(record.pid)
    return True


def wait_exit(record: ProcessRecord, timeout: float) -> int | None:
    """Wait up to ``timeout`` seconds for a process we started to exit; its exit code or None."""
    child = _CHILDREN.get(record.pid)
    if child is None:
        if record.pid in _EXIT_CODES:
            return _EXIT_CODES[record.pid]
        raise DeploymentError(f"process {record.pid} was not started by this process")
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    _reap(record.pid)
    return _EXIT_CODES[record.pid]


def _log_tail(path: str | Path, lines: int = 15) -> str:
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


# ----------------------------------------------------------------------- the flwr CLI side


def write_connection(federation: Federation, address: str) -> Path:
    """``$FLWR_HOME/config.toml`` for the flwr CLI: one TLS connection named after us.

    The CLI's own home is isolated from ``~/.flwr`` so the default file's
    ``supergrid`` connection (Flower's hosted service) can never be picked by
    accident (FLOWER_NOTES §4.11).
    """
    federation.home.mkdir(parents=True, exist_ok=True)
    path = federation.home / "config.toml"
    path.write_text(
        "# Written by `creditlab federation up`: the flwr CLI's connection to our SuperLink.\n"
        f'[superlink]\ndefault = "{federation.name}"\n\n'
        f'[superlink.{federation.name}]\naddress = "{address}"\n'
        f'root-certificates = "{federation.ca_cert}"\n')
    return path


def flwr_cli(federation: Federation, *args: str, prefix: Sequence[str] = (),
             timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``flwr ARGS`` against this federation's config (its own FLWR_HOME)."""
    command = [*prefix, str(Path(sys.executable).parent / "flwr"), *args]
    done = subprocess.run(command, env=flower_env(federation.home), capture_output=True,
                          text=True, timeout=timeout, cwd=federation.directory,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise DeploymentError(f"`flwr {' '.join(args)}` failed ({done.returncode}): "
                              f"{(done.stdout + done.stderr).strip()[-1500:]}")
    return done


def _json_out(text: str) -> Any:
    """The JSON document in a CLI's output (flwr prints log lines around it)."""
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise DeploymentError(f"expected JSON from the flwr CLI, got: {text[-500:]}")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def list_nodes(federation: Federation, *, prefix: Sequence[str] = ()) -> list[dict[str, Any]]:
    """``flwr supernode list --format json``: each node's id, status and timestamps."""
    out = _json_out(flwr_cli(federation, "supernode", "list", federation.name,
                             "--format", "json", prefix=prefix).stdout)
    return list(out.get("nodes", [])) if isinstance(out, dict) else list(out)


def register_node(federation: Federation, public_key: Path, label: str, *,
                  prefix: Sequence[str] = ()) -> int | None:
    """Register a SuperNode's public key with the SuperLink; returns its node id.

    With ``--enable-supernode-auth`` only registered keys may connect, so
    this is the lab operator's decision of who is in the federation. The
    node id is fixed here, which gives each party a stable identity across
    restarts. A key the SuperLink already knows (a persistent ``--database``)
    returns None.
    """
    done = flwr_cli(federation, "supernode", "register", str(public_key), federation.name,
                    "--name", label, "--format", "json", prefix=prefix, check=False)
    text = done.stdout + done.stderr
    try:
        answer = _json_out(done.stdout)
    except DeploymentError:
        answer = {}
    if isinstance(answer, dict) and answer.get("success"):
        return int(answer["node-id"])
    if "already in use" in text:
        return None
    raise DeploymentError(f"registering {label}'s key {public_key} failed: {text.strip()[-800:]}")


def unregister_node(federation: Federation, node_id: int, *, prefix: Sequence[str] = ()
                    ) -> None:
    """Remove a node's key from the SuperLink: it can no longer connect."""
    flwr_cli(federation, "supernode", "unregister", str(node_id), federation.name,
             "--format", "json", prefix=prefix)


def _probe(url: str, ca: Path, prefix: Sequence[str]) -> bool:
    """GET ``url`` over TLS checked against our CA (from inside ``prefix``'s namespace)."""
    if prefix:
        snippet = ("import ssl,sys,urllib.request as u;"
                   "u.urlopen(sys.argv[1],context=ssl.create_default_context(cafile=sys.argv[2]),"
                   "timeout=2)")
        done = subprocess.run([*prefix, sys.executable, "-c", snippet, url, str(ca)],
                              capture_output=True, timeout=30)
        return done.returncode == 0
    try:
        context = ssl.create_default_context(cafile=str(ca))
        with urllib.request.urlopen(url, context=context, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError):
        return False


def wait_healthy(state: FederationState, *, timeout: float = 60.0,
                 prefix: Sequence[str] = ()) -> None:
    """Wait until the SuperLink answers ``/health`` over TLS, or say why it did not."""
    deadline = time.monotonic() + timeout
    url = f"https://{state.address}/health"
    while time.monotonic() < deadline:
        if _probe(url, Path(state.ca_cert), prefix):
            return
        if not is_alive(state.superlink):
            break
        time.sleep(0.3)
    log = state.superlink.log if state.superlink else ""
    raise DeploymentError(f"the SuperLink at {state.address} did not become healthy; "
                          f"last lines of {log}:\n{_log_tail(log)}")


def wait_online(federation: Federation, roles: Iterable[str], *, timeout: float = 90.0,
                prefix: Sequence[str] = ()) -> None:
    """Wait until the SuperLink lists the parties' nodes as online (and their processes live).

    Nodes are recognised by the ids their keys were registered under; without
    those (a persistent SuperLink that already knew the keys) by their count.
    """
    state = federation.load_state()
    roles = list(roles)
    wanted = {state.nodes[r].node_id for r in roles}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [r for r in roles if not is_alive(state.nodes[r].process)]
        if dead:
            record = state.nodes[dead[0]].process
            log = record.log if record else ""
            raise DeploymentError(f"the {dead[0]}'s SuperNode exited; last lines of {log}:\n"
                                  f"{_log_tail(log)}")
        online = {int(n["node-id"]) for n in list_nodes(federation, prefix=prefix)
                  if n.get("status") == "online"}
        known = None not in wanted
        if (known and wanted <= online) or (not known and len(online) >= len(roles)):
            return
        time.sleep(1.0)
    raise DeploymentError(f"the SuperNodes {roles} did not come online within {timeout:.0f}s; "
                          f"see their logs under {federation.directory / 'nodes'}")


# ----------------------------------------------------------------------- starting pieces


def start_superlink(federation: Federation, state: FederationState, *,
                    prefix: Sequence[str] = ()) -> ProcessRecord:
    """The SuperLink: TLS on one HTTP port (Fleet, Control, Runtime), node auth on.

    ``--disable-runtime-dependency-installation`` because the parties' and
    the lab's environments are installed by their operators, not by ``uv sync``
    from a package index at run start.
    """
    federation.link_dir.mkdir(parents=True, exist_ok=True)
    command = [
        "flower-superlink",
        "--ssl-ca-certfile", str(federation.ca_cert),
        "--ssl-certfile", str(federation.server_cert),
        "--ssl-keyfile", str(federation.server_key),
        "--enable-supernode-auth",
        "--disable-runtime-dependency-installation",
        "--host", state.host, "--port", str(state.port),
    ]
    if state.database:
        command += ["--database", state.database]
    return spawn(command, env=flower_env(federation.link_dir), cwd=federation.link_dir,
                 log=federation.link_dir / "superlink.log", prefix=prefix)


def config_string(values: Mapping[str, str]) -> str:
    """``key="value" …`` as Flower's ``--node-config`` / ``--run-config`` parse it.

    Values are TOML-typed, so strings are quoted; Flower's parser cuts a
    quoted value at the next double quote, so a value holding one is refused.
    """
    for key, value in values.items():
        if '"' in value or "\n" in value:
            raise DeploymentError(f"{key} = {value!r}: a double quote or line break cannot be "
                                  "passed in a Flower config string; rename the path")
    return " ".join(f"{key}={json.dumps(value)}" for key, value in values.items())


def node_config(node: NodeRecord) -> str:
    """The SuperNode's ``--node-config``: its role, its data file and its party directory."""
    return config_string({"role": node.role, "data-path": node.data_path,
                          "party-dir": node.party_dir})


def start_node(federation: Federation, role: str, *, prefix: Sequence[str] = (),
               node: NodeRecord | None = None, home: Path | None = None) -> ProcessRecord:
    """Start (or restart) one party's SuperNode; the party's own one is recorded in state.json.

    A restarted node uses the same key and node config, so the SuperLink
    gives it the same node id and the party finds its session on its disk.
    ``node`` and ``home`` start another node (another key, port, directory)
    without recording it: tests of refused nodes use them.
    """
    state = federation.load_state()
    own = node is None
    node = node or state.nodes[role]
    home = home or federation.node_dir(role)
    home.mkdir(parents=True, exist_ok=True)
    Path(node.party_dir).mkdir(parents=True, exist_ok=True)
    command = [
        "flower-supernode",
        "--root-certificates", str(federation.ca_cert),
        "--auth-supernode-private-key", node.private_key,
        "--superlink", state.address,
        "--port", str(node.port),
        "--node-config", node_config(node),
    ]
    record = spawn(command, env=flower_env(home), cwd=home, prefix=prefix,
                   log=home / "supernode.log")
    if own:
        state.nodes[role].process = record
        federation.save_state(state)
    return record


def restart_node(federation: Federation, role: str, *, timeout: float = 180.0,
                 prefix: Sequence[str] = ()) -> ProcessRecord:
    """Start a party's SuperNode and retry until the SuperLink lets it in.

    A SuperNode that was killed without signing off stays "online" at the
    SuperLink until two heartbeat intervals pass without a heartbeat (60 s in
    Flower 1.42, not configurable); until then the SuperLink refuses to
    activate the same key again and the new process exits with code 305,
    "Failed to activate SuperNode". So after a crash the party's node is
    started again every few seconds until its log says it has its node id.
    """
    deadline = time.monotonic() + timeout
    log = federation.node_dir(role) / "supernode.log"
    while True:
        offset = log.stat().st_size if log.exists() else 0
        record = start_node(federation, role, prefix=prefix)
        while time.monotonic() < deadline:
            with log.open("rb") as handle:
                handle.seek(offset)
                if b"SuperNode ID:" in handle.read():
                    return record
            if not is_alive(record):
                break
            time.sleep(0.5)
        stop_process(record)  # its SuperExec child would linger for seconds
        if time.monotonic() >= deadline:
            raise DeploymentError(f"the {role}'s SuperNode was not let in again within "
                                  f"{timeout:.0f}s; last lines of {log}:\n{_log_tail(log)}")
        time.sleep(5.0)


# -------------------------------------------------------------------------- up / down


def up(name: str, directory: Path, experiment_path: Path, *, database: bool = False,
       host: str = "127.0.0.1", hosts: Sequence[str] = LOOPBACK_HOSTS, port: int | None = None,
       prefixes: Mapping[str, Sequence[str]] | None = None, timeout: float = 90.0
       ) -> FederationState:
    """Start a federation (or whatever part of it is not running) and wait until it is online.

    Parameters
    ----------
    name : str
        Connection name: ``flwr run . <name>`` and ``creditlab run --federation <name>``.
    directory : Path
        Where certificates, keys, logs, party directories and ``state.json`` go.
    experiment_path : Path
        Experiment TOML whose ``[bank].data`` / ``[platform].data`` become each
        SuperNode's ``data-path`` (in production each party names its own file).
    database : bool
        Keep the SuperLink's state in ``link/state.db`` (SQLite) instead of memory.
    host, hosts, port
        Bind address of the SuperLink; the names/addresses clients dial (first
        one is dialled, all go into the certificate); port (free one if None).
    prefixes : mapping, optional
        Command prefix per component (``"superlink"``, ``"cli"``, ``"bank"``,
        ``"platform"``), e.g. ``["ip", "netns", "exec", "ns"]``.
    """
    federation = Federation(name, directory)
    federation.directory.mkdir(parents=True, exist_ok=True)
    prefixes = dict(prefixes or {})
    cli_prefix = prefixes.get("cli", ())
    experiment: Experiment = load_experiment(experiment_path)
    if federation.state_file.exists():
        state = federation.load_state()
        if state.name != name:
            raise DeploymentError(f"{federation.directory} holds the federation "
                                  f"{state.name!r}, not {name!r}: pick another --dir")
    else:
        chosen = port or free_port()  # free here; a new network namespace has all free
        state = FederationState(
            name=name, directory=str(federation.directory), host=host, port=chosen,
            address=f"{hosts[0]}:{chosen}", ca_cert=str(federation.ca_cert),
            experiment=str(Path(experiment_path).resolve()),
            database=str(federation.link_dir / "state.db") if database else None)
    for role in ROLES:
        ensure_node_key(federation.private_key(role), federation.public_key(role))
        if role not in state.nodes:
            state.nodes[role] = NodeRecord(
                role=role, port=free_port(), party_dir=str(federation.party_dir(role)),
                data_path=str(getattr(experiment, role).data),
                private_key=str(federation.private_key(role)),
                public_key=str(federation.public_key(role)))
    ensure_certificates(federation, list(hosts))
    write_connection(federation, state.address)
    federation.save_state(state)

    if not is_alive(state.superlink):
        for role in ROLES:  # nodes of a dead SuperLink would keep retrying forever
            stop_process(state.nodes[role].process)
        state.superlink = start_superlink(federation, state, prefix=prefixes.get("superlink", ()))
        federation.save_state(state)
        wait_healthy(state, timeout=timeout, prefix=cli_prefix)
        for role in ROLES:
            node_id = register_node(federation, federation.public_key(role), role,
                                    prefix=cli_prefix)
            if node_id is not None:
                state.nodes[role].node_id = node_id
        federation.save_state(state)
    for role in ROLES:
        if not is_alive(federation.load_state().nodes[role].process):
            restart_node(federation, role, prefix=prefixes.get(role, ()),
                         timeout=max(timeout, 180.0))
    wait_online(federation, ROLES, timeout=timeout, prefix=cli_prefix)
    return federation.load_state()


def down(federation: Federation) -> dict[str, bool]:
    """Stop the federation's processes by recorded PID: SuperNodes first, then the SuperLink.

    Returns, per component, whether it was still running.
    """
    state = federation.load_state()
    stopped = {}
    for role, node in state.nodes.items():
        stopped[role] = stop_process(node.process)
        node.process = None
    stopped["superlink"] = stop_process(state.superlink)
    state.superlink = None
    federation.save_state(state)
    return stopped


def status(federation: Federation) -> dict[str, Any]:
    """Which recorded processes are alive, and the SuperLink's own list of nodes."""
    state = federation.load_state()
    report: dict[str, Any] = {
        "name": state.name, "address": state.address, "directory": state.directory,
        "superlink": {"alive": is_alive(state.superlink),
                      "pid": state.superlink.pid if state.superlink else None},
        "nodes": {role: {"alive": is_alive(node.process), "port": node.port,
                         "pid": node.process.pid if node.process else None,
                         "party_dir": node.party_dir, "data_path": node.data_path}
                  for role, node in state.nodes.items()},
        "supernodes": None,
    }
    if report["superlink"]["alive"]:
        try:
            report["supernodes"] = list_nodes(federation)
        except DeploymentError as exc:
            report["supernodes"] = f"unavailable: {exc}"
    return report


# --------------------------------------------------------------------------------- run


def run_config(experiment: Path, workdir: Path, *, tracking_uri: str = "",
               reference_bank_dir: str = "") -> str:
    """``--run-config`` for ``flwr run``: keys declared in pyproject's [tool.flwr.app.config]."""
    return config_string({"experiment": str(experiment.resolve()),
                          "workdir": str(workdir.resolve()), "mlflow-tracking-uri": tracking_uri,
                          "reference-bank-dir": reference_bank_dir})


def run_on_federation(experiment: Path, federation: Federation, *, workdir: Path,
                      tracking_uri: str = "", echo: bool = True,
                      prefix: Sequence[str] = (), timeout: float = 3600.0,
                      references: bool = True) -> dict[str, Any]:
    """``flwr run <repo> <name> --stream`` and the run's ``summary.json``.

    The ServerApp runs next to the SuperLink and writes
    ``<workdir>/<experiment>/flwr-<run id>/``; the bank's party directory is
    named for the central references only when ``references`` is set and it
    is on this machine (on loopback it is; in production it is not, and the
    summary says references were skipped).
    """
    state = federation.load_state()
    spec = load_experiment(experiment)
    bank_dir = state.nodes["bank"].party_dir if references else ""
    command = [str(Path(sys.executable).parent / "flwr"), "run", str(REPO_ROOT),
               federation.name, "--stream", "--run-config",
               run_config(experiment, workdir, tracking_uri=tracking_uri,
                          reference_bank_dir=bank_dir)]
    workdir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([*prefix, *command], env=flower_env(federation.home),
                               cwd=federation.directory, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    lines: list[str] = []
    run_id: int | None = None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo:
                sys.stdout.write(line)
                sys.stdout.flush()
            found = re.search(r"run (\d+)", line, re.IGNORECASE)
            if run_id is None and found:
                run_id = int(found.group(1))
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)
    run_root = workdir.resolve() / spec.name
    if run_id is not None:
        run_dir = run_root / f"flwr-{run_id}"
    else:  # the id was not printed: take the newest run folder
        folders = sorted(run_root.glob("flwr-*"), key=lambda p: p.stat().st_mtime)
        run_dir = folders[-1] if folders else run_root / "flwr-unknown"
    summary_file = run_dir / "summary.json"
    if process.returncode != 0 or not summary_file.exists():
        failure = run_dir / "failure.json"
        reason = (json.loads(failure.read_text())["error"] if failure.exists()
                  else "".join(lines[-20:]).strip())
        raise DeploymentError(f"the run on federation {federation.name!r} did not finish "
                              f"(flwr run exited {process.returncode}): {reason}")
    return dict(json.loads(summary_file.read_text()))
