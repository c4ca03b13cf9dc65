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
            role: PartyNode({"role": role}) for role in ROLES}

    def exchange(self, requests: Requests) -> dict[str, Payload]:
        replies = {}
        for role, (message_type, payload) in requests.items():
            try:
                replies[role] = self.nodes[role].handle(message_type, payload)
            except Exception as exc:
                raise PartyFailed(role, message_type, f"{type(exc).__name__}: {exc}") from exc
        return replies


class FlowerTransport:
    """Sends through a Flower ``Grid`` (simulation or deployment engine).

    Replies are pulled every ``poll`` seconds (the Grid's own
    ``send_and_receive`` sleeps 3 s between pulls). A party that has not
    answered after ``retry_after`` seconds is sent the same message again —
    its SuperNode may have been restarted — after asking every connected node
    its role again (a restarted node without registered identity comes back
    under a new node id). Re-sending is safe: parties answer a repeated
    sequence number from their stored reply. After ``party_timeout`` seconds
    without an answer the run stops with :class:`PartyAway`.
    """

    def __init__(self, grid: Grid, *, party_timeout: float = 600.0, retry_after: float = 30.0,
                 poll: float = 0.1, wait_for_nodes: float = 300.0) -> None:
        self.grid = grid
        self.party_timeout = party_timeout
        self.retry_after = retry_after
        self.poll = poll
        self.node_of_role = self._discover_roles(wait_for_nodes)

    def _ask_roles(self, node_ids: list[int], timeout: float) -> dict[str, int]:
        messages = [Message(Payload().to_records(), dst_node_id=n, message_type="query.role")
                    for n in node_ids]
        found: dict[str, int] = {}
        for reply in self._push_and_pull(messages, timeout):
            if reply.has_error():
                raise RuntimeError(f"node {reply.metadata.src_node_id} could not say its role: "
                                   f"{reply.error.reason}")
            role = str(Payload.from_records(reply.content).meta["role"])
            if role in found:
                raise RuntimeError(
                    f"two SuperNodes claim the role {role!r} (nodes {found[role]} and "
                    f"{reply.metadata.src_node_id}); each role must be held by exactly one node: "
                    "stop the extra one or fix its --node-config")
            found[role] = reply.metadata.src_node_id
        return found

    def _discover_roles(self, wait: float) -> dict[str, int]:
        """Ask every connected node its role; exactly one bank and one platform must answer."""
        deadline = time.monotonic() + wait
        while True:
            node_ids = list(self.grid.get_node_ids())
            found = self._ask_roles(node_ids, timeout=min(60.0, wait)) if node_ids else {}
            missing = [r for r in ROLES if r not in found]
            if not missing:
                return found
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no SuperNode holds the role(s) {missing} after {wait:.0f}s "
                    f"({len(node_ids)} node(s) connected); start one per role with "
                    "--node-config 'role=\"bank\"' / 'role=\"platform\"'")
            time.sleep(1.0)

    def _push_and_pull(self, messages: list[Message], timeout: float) -> list[Message]:
        """Push, then pull until every message is answered or ``timeout`` passes."""
        ids = [i for i in self.grid.push_messages(messages) if i]
        if len(ids) < len(messages):
            raise RuntimeError("the SuperLink refused to take the messages (HTTP 413 or "
                               "similar): check its body-size limit and the payload size")
        pending = set(ids)
        replies: list[Message] = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(pending)):
                pending.discard(reply.metadata.reply_to_message_id)
                replies.append(reply)
            if pending:
                time.sleep(self.poll)
        return replies

    def exchange(self, requests: Requests) -> dict[str, Payload]:
        out: dict[str, Payload] = {}
        started = time.monotonic()
        attempt = 0
        while True:
            missing = {role: req for role, req in requests.items() if role not in out}
            if attempt:
                self.node_of_role.update(self._ask_roles(list(self.grid.get_node_ids()),
                                                         timeout=self.poll * 50))
            messages = [
                Message(payload.to_records(), dst_node_id=self.node_of_role[role],
                        message_type=message_type, group_id=str(payload.meta.get("seq", "")))
                for role, (message_type, payload) in missing.items()
            ]
            role_of_node = {v: k for k, v in self.node_of_role.items()}
            for reply in self._push_and_pull(messages, self.retry_after):
                role = role_of_node.get(reply.metadata.src_node_id)
                if role is None or role in out:
                    continue
                if reply.has_error():
                    raise PartyFailed(role, requests[role][0], reply.error.reason)
                out[role] = Payload.from_records(reply.content)
            if len(out) == len(requests):
                return out
            waited = time.monotonic() - started
            if waited > self.party_timeout:
                away = sorted(set(requests) - set(out))
                raise PartyAway(away, requests[away[0]][0], waited)
            attempt += 1


class PartyAway(RuntimeError):
    """A party stayed away longer than the configured timeout."""

    def __init__(self, roles: list[str], message_type: str, waited: float) -> None:
        super().__init__(
            f"the {' and '.join(roles)} did not answer {message_type} for {waited:.0f}s "
            "(party timeout): the run stops and no result is recorded. Each party's "
            "checkpoints stay in its own directory; restart its SuperNode and run again.")
        self.roles = roles
