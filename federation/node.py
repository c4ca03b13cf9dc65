"""A SuperNode's view of CreditLab: which role it plays and where its session lives.

The same :class:`PartyNode` serves the Flower ClientApp and the in-process
transport of the fast tests. Every message names its run (``run_key``, and
``run_dir`` for simulation), so a node that was restarted mid-run finds its
session on its own disk without any memory of earlier messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from federation.payload import Payload, unpack_json
from federation.session import forget_session, open_session, start_session
from lab.experiment import Experiment

ROLES = ("bank", "platform")


def role_of(node_config: Mapping[str, object]) -> str:
    """The node's role: ``role`` in deployment, partition 0 = bank / 1 = platform in simulation.

    Flower's simulation engine gives a node only ``partition-id`` and
    ``num-partitions`` (FLOWER_NOTES §2.6), so the mapping lives here, once.
    """
    if "role" in node_config:
        role = str(node_config["role"])
    elif "partition-id" in node_config:
        index = int(str(node_config["partition-id"]))
        role = ROLES[index] if index < len(ROLES) else f"partition {index}"
    else:
        raise ValueError("node config has neither 'role' nor 'partition-id': start the "
                         "SuperNode with --node-config 'role=\"bank\"' (or \"platform\")")
    if role not in ROLES:
        raise ValueError(f"node role {role!r} is not one of {ROLES}")
    return role


class PartyNode:
    """Routes protocol actions to this node's party session."""

    def __init__(self, node_config: Mapping[str, object]) -> None:
        self.node_config = node_config

    @property
    def role(self) -> str:
        return role_of(self.node_config)

    def party_dir(self, meta: Mapping[str, object]) -> Path:
        """Deployment: ``<party-dir>/<run_key>`` on the party's own disk; simulation:
        ``<run_dir>/<role>`` (one machine, one folder per role under the run)."""
        if "party-dir" in self.node_config:
            return Path(str(self.node_config["party-dir"])) / str(meta["run_key"])
        return Path(str(meta["run_dir"])) / self.role

    def handle(self, message_type: str, payload: Payload) -> Payload:
        """Run the action named by ``message_type`` (``query.setup`` → ``setup``)."""
        action = message_type.split(".", 1)[1]
        if action == "role":
            return Payload(meta={"role": self.role})
        directory = self.party_dir(payload.meta)
        try:
            if action == "setup" and not (directory / "state.npz").exists():
                experiment = Experiment.model_validate(unpack_json(payload.meta["experiment"]))
                data_path = self.node_config.get("data-path")
                session = start_session(directory, self.role, experiment,
                                        str(data_path) if data_path else None)
            else:
                session = open_session(directory)
            session.prefetch = "party-dir" not in self.node_config  # deployment: one process
            return session.handle(action, payload)               # per message, see PartySession
        except Exception:
            forget_session(directory)  # its in-memory changes were not saved
            raise
