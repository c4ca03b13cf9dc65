"""How the coordinator reaches the parties: Flower's Grid, or direct calls in tests.

The protocol driver (:mod:`federation.driver`) asks for one *exchange* at a
time: a message to one or both parties, sent together, answered together.
Sending to both in one push matters in deployment, where each round trip
costs seconds (FLOWER_NOTES §3.3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

from flwr.app import Message
from flwr.serverapp import Grid

from federation.node import ROLES, PartyNode
from federation.payload import Payload

Requests = Mapping[str, tuple[str, Payload]]
"""role -> (message type, payload)."""


class PartyFailed(RuntimeError):
    """A party answered with an error; the message names the party and its reason."""

    def __init__(self, role: str, message_type: str, reason: str) -> None:
        super().__init__(f"the {role} failed on {message_type}: {reason}")
        self.role = role
        self.reason = reason


class Transport(Protocol):
    def exchange(self, requests: Requests) -> dict[str, Payload]: ...


class InProcessTransport:
    """Calls two :class:`PartyNode` objects directly: the protocol without Flower."""

    def __init__(self, nodes: Mapping[str, PartyNode] | None = None) -> None:
        self.nodes = dict(nodes) if nodes else {
            role: PartyNode({"role": role}, {}) for role in ROLES}

    def exchange(self, requests: Requests) -> dict[str, Payload]:
        replies = {}
        for role, (message_type, payload) in requests.items():
            try:
                replies[role] = self.nodes[role].handle(message_type, payload)
            except Exception as exc:
                raise PartyFailed(role, message_type, f"{type(exc).__name__}: {exc}") from exc
        return replies


class FlowerTransport:
    """Sends through a Flower ``Grid`` (simulation or deployment engine)."""

    def __init__(self, grid: Grid, *, timeout: float = 3600.0, wait_for_nodes: float = 300.0
                 ) -> None:
        self.grid = grid
        self.timeout = timeout
        self.node_of_role = self._discover_roles(wait_for_nodes)
        self._round = 0

    def _discover_roles(self, wait: float) -> dict[str, int]:
        """Ask every connected node its role; exactly one bank and one platform must answer."""
        deadline = time.monotonic() + wait
        node_ids = list(self.grid.get_node_ids())
        while len(node_ids) < len(ROLES) and time.monotonic() < deadline:
            time.sleep(1.0)
            node_ids = list(self.grid.get_node_ids())
        if len(node_ids) < len(ROLES):
            raise RuntimeError(f"only {len(node_ids)} SuperNode(s) connected after {wait:.0f}s; "
                               "start one with role=\"bank\" and one with role=\"platform\"")
        messages = [Message(Payload().to_records(), dst_node_id=n, message_type="query.role")
                    for n in node_ids]
        found: dict[str, int] = {}
        for reply in self.grid.send_and_receive(messages, timeout=self.timeout):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id} could not say its role: "
                                   f"{reply.error.reason}")
            role = str(Payload.from_records(reply.content).meta["role"])
            if role in found:
                raise RuntimeError(
                    f"two SuperNodes claim the role {role!r} (nodes {found[role]} and "
                    f"{reply.metadata.src_node_id}); each role must be held by exactly one node")
            found[role] = reply.metadata.src_node_id
        missing = [r for r in ROLES if r not in found]
        if missing:
            raise RuntimeError(f"no SuperNode holds the role(s) {missing}")
        return found

    def exchange(self, requests: Requests) -> dict[str, Payload]:
        self._round += 1
        messages = [
            Message(payload.to_records(), dst_node_id=self.node_of_role[role],
                    message_type=message_type, group_id=str(self._round))
            for role, (message_type, payload) in requests.items()
        ]
        role_of_node = {v: k for k, v in self.node_of_role.items()}
        replies = list(self.grid.send_and_receive(messages, timeout=self.timeout))
        out: dict[str, Payload] = {}
        for reply in replies:
            role = role_of_node[reply.metadata.src_node_id]
            if reply.has_error():
                raise PartyFailed(role, requests[role][0], reply.error.reason)
            out[role] = Payload.from_records(reply.content)
        for role, (message_type, _) in requests.items():
            if role not in out:
                raise PartyFailed(role, message_type,
                                  f"no reply within {self.timeout:.0f}s (is its SuperNode up?)")
        return out
