"""How the coordinator reaches the parties: Flower's Grid, or direct calls in tests.

The protocol driver (:mod:`federation.driver`) asks for one *exchange* at a
time: a message to one or both parties, sent together, answered together.
Sending to both in one push matters in deployment, where each round trip
costs seconds (FLOWER_NOTES §3.3).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from flwr.app import Message
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid

from federation.node import ROLES, PartyNode
from federation.payload import Payload

Requests = Mapping[str, tuple[str, Payload]]
"""role -> (message type, payload)."""

TRANSIENT_ERRORS = frozenset({
    ErrorCode.MESSAGE_UNAVAILABLE, ErrorCode.REPLY_MESSAGE_UNAVAILABLE,
    ErrorCode.NODE_UNAVAILABLE, ErrorCode.CLIENT_APP_CRASHED})
"""Error replies that say a copy was lost, not that the party refused: re-send it."""


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
    ``send_and_receive`` sleeps 3 s between pulls). Every ``retry_after``
    seconds the coordinator looks at which SuperNodes are online and when
    each was last activated: a party whose node was restarted since its copy
    went out (or whose node came back under a new id, found by asking the
    connected nodes their roles) is sent the same message again; a party
    that is merely slow is not, since each copy costs it a fresh ClientApp
    process (only after 8 × ``retry_after`` does it get one more, as a safety
    net). A reply to *any* copy answers the exchange, and the SuperLink's
    "node unavailable" or "ClientApp crashed" error replies count as a lost
    copy. Re-sending is safe: parties answer a repeated sequence number from
    their stored reply and refuse a late copy of an older one. After
    ``party_timeout`` seconds without an answer the run stops with
    :class:`PartyAway`.
    """

    def __init__(self, grid: Grid, *, party_timeout: float = 600.0, retry_after: float = 30.0,
                 poll: float = 0.1, wait_for_nodes: float = 300.0) -> None:
        self.grid = grid
        self.party_timeout = party_timeout
        self.retry_after = retry_after
        self.poll = poll
        self.exchanges: list[dict[str, Any]] = []
        """One entry per exchange (sequence number, message types, seconds, attempts):
        the per-message latency that deployment adds, measured where it is paid."""
        self.node_of_role = self._discover_roles(wait_for_nodes)

    def _ask_roles(self, node_ids: list[int], timeout: float) -> dict[str, int]:
        messages = [Message(Payload().to_records(), dst_node_id=n, message_type="query.role")
                    for n in node_ids]
        found: dict[str, int] = {}
        for reply in self._push_and_pull(messages, timeout):
            if reply.has_error() and reply.error.code in TRANSIENT_ERRORS:
                continue  # that node went away meanwhile: it holds no role now
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

    def _online(self) -> dict[int, str]:
        """Online node id → when it was last activated (a restarted SuperNode gets a new time)."""
        return {int(node.node_id): str(getattr(node, "last_activated_at", ""))
                for node in self.grid.get_nodes()}

    def _roles_due(self, missing: list[str], activation: dict[str, str],
                   last_sent: dict[str, float], now: float) -> set[str]:
        """Which unanswered parties need another copy now.

        A party whose SuperNode was (re)activated since the last copy went out
        lost that copy with its old process: send it again. A party that is
        online and was not restarted is still working on it (or queued behind
        its own slow ClientApp): another copy would only add a process to its
        queue, so it gets one only after 8 × ``retry_after`` as a safety net.
        A party that is offline gets nothing until it is back.
        """
        online = self._online()
        if any(self.node_of_role[role] not in online for role in missing):
            unknown = [n for n in online if n not in self.node_of_role.values()]
            if unknown:  # perhaps a restarted node without a registered identity
                self.node_of_role.update(self._ask_roles(unknown, timeout=self.retry_after))
        due = set()
        for role in missing:
            node = self.node_of_role[role]
            if node not in online:
                continue
            if online[node] != activation.get(role) or \
                    now - last_sent[role] >= 8 * self.retry_after:
                due.add(role)
        return due

    def exchange(self, requests: Requests) -> dict[str, Payload]:
        out: dict[str, Payload] = {}
        timings: dict[str, dict[str, float]] = {}
        started = time.monotonic()
        sent: dict[str, str] = {}
        """Message id → role, for every copy sent in this exchange and not yet answered."""
        copies = dict.fromkeys(requests, 0)
        last_sent: dict[str, float] = {}
        activation: dict[str, str] = {}
        due, next_check = set(requests), started + self.retry_after
        while True:
            now = time.monotonic()
            missing = [role for role in requests if role not in out]
            if now >= next_check:
                next_check = now + self.retry_after
                due |= self._roles_due(missing, activation, last_sent, now)
            if due:
                online = self._online()
                roles = [role for role in missing if role in due]
                messages = [
                    Message(requests[role][1].to_records(), dst_node_id=self.node_of_role[role],
                            message_type=requests[role][0],
                            group_id=str(requests[role][1].meta.get("seq", "")))
                    for role in roles]
                ids = list(self.grid.push_messages(messages))
                if len(ids) < len(messages) or not all(ids):
                    raise RuntimeError("the SuperLink refused to take the messages (HTTP 413 or "
                                       "similar): check its body-size limit and the payload size")
                sent.update(zip(ids, roles, strict=True))
                for role in roles:
                    copies[role] += 1
                    last_sent[role] = now
                    activation[role] = online.get(self.node_of_role[role], "")
                due = set()
            for reply in self.grid.pull_messages(list(sent)):
                role = sent.pop(reply.metadata.reply_to_message_id, None)
                if role is None or role in out:
                    continue
                if reply.has_error():
                    if reply.error.code in TRANSIENT_ERRORS:
                        activation[role] = "lost"  # a new copy at the next check, if online
                        continue
                    raise PartyFailed(role, requests[role][0], reply.error.reason)
                out[role] = Payload.from_records(reply.content)
                if "timing" in reply.content:
                    timings[role] = {k: round(float(v), 4)
                                     for k, v in reply.content["timing"].items()}
            if len(out) == len(requests):
                self.exchanges.append({
                    "seq": next(iter(requests.values()))[1].meta.get("seq"),
                    "types": {role: req[0] for role, req in requests.items()},
                    "seconds": round(time.monotonic() - started, 4),
                    "attempts": max(copies.values()), "parties": timings})
                return out
            waited = time.monotonic() - started
            if waited > self.party_timeout:
                away = sorted(set(requests) - set(out))
                raise PartyAway(away, requests[away[0]][0], waited)
            time.sleep(self.poll)


class PartyAway(RuntimeError):
    """A party stayed away longer than the configured timeout."""

    def __init__(self, roles: list[str], message_type: str, waited: float) -> None:
        super().__init__(
            f"the {' and '.join(roles)} did not answer {message_type} for {waited:.0f}s "
            "(party timeout): the run stops and no result is recorded. Each party's "
            "checkpoints stay in its own directory; restart its SuperNode and run again.")
        self.roles = roles
