"""Coordinator, bank and platform on separate network namespaces of this machine.

Each gets its own namespace (``ip netns``) with one veth leg on a bridge in a
fourth, so they reach each other only over 10.x.y.0/24, like three hosts on
a LAN: the SuperLink binds the lab's address (in its certificate's SAN), the
SuperNodes dial it, and each namespace's loopback is its own. The file
system is still shared, so this proves the network set-up of
docs/deployment.md, not separate disks; the run is told nothing about the
bank's directory and records why the central references were skipped.

Needs root (``ip netns add``); skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from lab import deployment
from lab.deployment import Federation
from tests.test_deployment_e2e import deployed_model, experiment_copy, in_process

pytestmark = pytest.mark.e2e

PARTIES = ("lab", "bank", "platform")


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)


def netns_unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces are Linux-only"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    if os.geteuid() != 0:
        return "`ip netns add` needs root"
    probe = f"clprobe{secrets.token_hex(3)}"
    added = _ip("netns", "add", probe)
    if added.returncode != 0:
        return f"`ip netns add` failed: {added.stderr.strip()}"
    _ip("netns", "del", probe)
    return None


@pytest.fixture(scope="module")
def network() -> Iterator[dict[str, tuple[str, str]]]:
    """role → (namespace, address); all namespaces are deleted afterwards."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"network-namespace test skipped: {reason}")
    tag = secrets.token_hex(2)
    hub = f"clhub{tag}"
    subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(250)}"
    spaces = {role: (f"cl{role[:4]}{tag}", f"{subnet}.{i}") for i, role in
              enumerate(PARTIES, start=1)}
    made: list[str] = []
    try:
        for name in [hub, *(ns for ns, _ in spaces.values())]:
            assert _ip("netns", "add", name).returncode == 0
            made.append(name)
        steps = [["-n", hub, "link", "add", "br0", "type", "bridge"],
                 ["-n", hub, "link", "set", "br0", "up"]]
        for role, (ns, address) in spaces.items():
            inner, outer = f"v{role[:4]}{tag}", f"h{role[:4]}{tag}"
            steps += [["link", "add", inner, "type", "veth", "peer", "name", outer],
                      ["link", "set", inner, "netns", ns],
                      ["link", "set", outer, "netns", hub],
                      ["-n", hub, "link", "set", outer, "master", "br0", "up"],
                      ["-n", ns, "addr", "add", f"{address}/24", "dev", inner],
                      ["-n", ns, "link", "set", inner, "up"],
                      ["-n", ns, "link", "set", "lo", "up"]]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield spaces
    finally:
        for name in made:  # deleting a namespace deletes its veth legs too
            _ip("netns", "del", name)


def _connects(namespace: str, host: str, port: int) -> bool:
    snippet = ("import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])),"
               " timeout=3).close()")
    return subprocess.run(["ip", "netns", "exec", namespace, sys.executable, "-c", snippet,
                           host, str(port)], capture_output=True, timeout=30).returncode == 0


def test_parties_on_separate_namespaces_train_the_same_model(
        network: dict[str, tuple[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDITLAB_CRYPTO_WORKERS", "0")
    experiment = experiment_copy(tmp_path, max_epochs=1)  # the network is the point here
    prefixes = {role: ["ip", "netns", "exec", ns] for role, (ns, _) in network.items()}
    lab_address = network["lab"][1]
    fed = Federation("netns", tmp_path / "fed")
    try:
        state = deployment.up(
            fed.name, fed.directory, experiment, host=lab_address, hosts=[lab_address],
            prefixes={"superlink": prefixes["lab"], "cli": prefixes["lab"],
                      "bank": prefixes["bank"], "platform": prefixes["platform"]})
        assert state.address == f"{lab_address}:{state.port}"
        # the SuperLink is reachable over the LAN only, not on the parties' own loopback
        assert _connects(network["bank"][0], lab_address, state.port)
        assert not _connects(network["bank"][0], "127.0.0.1", state.port)
        # a party's local Runtime API (for its ClientApps) is not reachable from the other
        platform_port = state.nodes["platform"].port
        assert _connects(network["platform"][0], "127.0.0.1", platform_port)
        assert not _connects(network["bank"][0], network["platform"][1], platform_port)
        summary = deployment.run_on_federation(
            experiment, fed, echo=False, workdir=tmp_path / "runs", prefix=prefixes["lab"],
            references=False, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    finally:
        if fed.state_file.exists():
            deployment.down(fed)
    weights, auc = in_process(experiment, tmp_path / "reference")
    assert summary["test_auc"] == auc
    np.testing.assert_array_equal(deployed_model(fed, summary), weights)
    assert summary["epochs"] == 1
    assert summary["ledger_plaintext_violations"] == 0
    assert summary["references_skipped"].startswith(
        "not reachable from the coordinator's machine")
    assert "centralized_test_auc" not in summary
