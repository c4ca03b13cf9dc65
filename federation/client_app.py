"""The Flower ClientApp every party's SuperNode runs.

It is a thin router: the node's role comes from its node config (deployment)
or partition id (simulation), the party's state from its own directory, and
each message type maps to one action of :class:`federation.session.PartySession`.
"""

from __future__ import annotations

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from federation.node import PartyNode
from federation.payload import Payload

QUERY_ACTIONS = ("role", "setup", "peer_key", "psi_blind", "psi_cross", "psi_intersect",
                 "align")
TRAIN_ACTIONS = ("step", "cross", "decrypt")
EVALUATE_ACTIONS = ("loss_terms", "validation_loss", "partial_scores", "score")

app = ClientApp()


def _serve(msg: Message, context: Context) -> Message:
    node = PartyNode(context.node_config)
    reply = node.handle(msg.metadata.message_type, Payload.from_records(msg.content))
    return Message(reply.to_records(), reply_to=msg)


for _name in QUERY_ACTIONS:
    app.query(_name)(_serve)
for _name in TRAIN_ACTIONS:
    app.train(_name)(_serve)
for _name in EVALUATE_ACTIONS:
    app.evaluate(_name)(_serve)
