"""The Flower ClientApp every party's SuperNode runs.

It is a thin router: the node's role comes from its node config (deployment)
or partition id (simulation), the party's state from its own directory, and
each message type maps to one action of :class:`federation.session.PartySession`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flwr.app import Context, Message, MetricRecord
from flwr.clientapp import ClientApp

from federation.node import PartyNode
from federation.payload import Payload

QUERY_ACTIONS = ("role", "setup", "psi_blind", "psi_cross", "psi_intersect", "align")
TRAIN_ACTIONS = ("step", "cross", "decrypt")
EVALUATE_ACTIONS = ("loss_terms", "validation_loss", "partial_scores", "score")

app = ClientApp()


def _process_started() -> float:
    """When this process started (Unix time), from /proc; 0.0 where there is no /proc."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
    except (OSError, ValueError, IndexError, StopIteration):
        return 0.0
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def _serve(msg: Message, context: Context) -> Message:
    """Act on one message; the reply also carries where this message's time went.

    Timings travel in their own ``timing`` record, apart from the payload the
    coordinator relays (the transport reads and drops them): in deployment a
    fresh ClientApp process serves each message, and its start-up is most of
    the per-message latency (FLOWER_NOTES §3.3).
    """
    started = time.time()
    node = PartyNode(context.node_config)
    reply = node.handle(msg.metadata.message_type, Payload.from_records(msg.content))
    records = reply.to_records()
    process_started = _process_started()
    records["timing"] = MetricRecord({
        "delivered": started - float(msg.metadata.created_at),
        "process": started - process_started if process_started else -1.0,
        "handler": time.time() - started,
    })
    return Message(records, reply_to=msg)


for _name in QUERY_ACTIONS:
    app.query(_name)(_serve)
for _name in TRAIN_ACTIONS:
    app.train(_name)(_serve)
for _name in EVALUATE_ACTIONS:
    app.evaluate(_name)(_serve)
