"""A SuperNode's view of CreditLab: which role it plays and where its session lives.

The same :class:`PartyNode` serves the Flower ClientApp (with ``context.state``
as its memory) and the in-process transport of the fast tests.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from pathlib import Path

from federation.payload import Payload, unpack_json
from federation.session import open_session, start_session
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
        role = ROLES[int(node_config["partition-id"])] if int(
            node_config["partition-id"]) < len(ROLES) else "spare"
    else:
        raise ValueError("node config has neither 'role' nor 'partition-id': start the "
                         "SuperNode with --node-config 'role=\"bank\"' (or \"platform\")")
    if role not in ROLES:
        raise ValueError(f"node role {role!r} is not one of {ROLES}")
    return role


class PartyNode:
    """Routes protocol actions to this node's party session."""

    def __init__(self, node_config: Mapping[str, object],
                 memory: MutableMapping[str, str]) -> None:
        self.node_config = node_config
        self.memory = memory

    @property
    def role(self) -> str:
        return role_of(self.node_config)

    def handle(self, message_type: str, payload: Payload) -> Payload:
        """Run the action named by ``message_type`` (``query.setup`` → ``setup``)."""
        action = message_type.split(".", 1)[1]
        if action == "role":
            return Payload(meta={"role": self.role})
        if action == "setup":
            experiment = Experiment.model_validate(unpack_json(payload.meta["experiment"]))
            if "party-dir" in self.node_config:  # deployment: the party's own disk
                party_dir = Path(str(self.node_config["party-dir"])) / str(
                    payload.meta["run_key"])
            else:  # simulation: one machine, one folder per role under the run
                party_dir = Path(str(payload.meta["run_dir"])) / self.role
            data_path = self.node_config.get("data-path")
            session = start_session(party_dir, self.role, experiment,
                                    str(data_path) if data_path else None)
            self.memory["party_dir"] = str(party_dir)
            return session.handle("setup", payload)
        if "party_dir" not in self.memory:
            raise RuntimeError(f"{self.role}: '{action}' arrived before set-up")
        return open_session(Path(self.memory["party_dir"])).handle(action, payload)
