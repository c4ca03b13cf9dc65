"""The coordinator's script for one run: set-up → align → train → evaluate.

The coordinator holds no data and no key. It forwards each party's payload to
the other, records every forward in the privacy ledger, and keeps only the
aggregates the protocol names (losses, metrics, counts). This is the single
place where the protocol's message order lives; each party's arithmetic is in
:mod:`federation.hetero_lr` and its state in :mod:`federation.session`.

Round trips: set-up 1, alignment 4 (the public keys ride on the first PSI
message), each optimisation step 3, each epoch's closing step and validation
loss 3 more, final evaluation 2. In Flower's deployment engine each round trip
costs seconds whatever its size (docs/deployment.md), so messages are merged
wherever the protocol's order allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from federation.ledger import KeyDirectory, PrivacyLedger
from federation.payload import Payload, pack_json
from federation.transport import Transport
from lab.experiment import Experiment
from models.lr import batch_schedule, check_batch_size

PARTIES = ("bank", "platform")
PEER = {"bank": "platform", "platform": "bank"}
"""Receiving role -> the role whose payload it receives."""


class Observer(Protocol):
    """Receives progress: the lab turns it into progress bars and MLflow metrics."""

    def phase(self, name: str, detail: str = "") -> None: ...

    def batch(self, epoch: int, batch: int, batches: int, train_loss: float) -> None: ...

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None: ...


class QuietObserver:
    def phase(self, name: str, detail: str = "") -> None:
        pass

    def batch(self, epoch: int, batch: int, batches: int, train_loss: float) -> None:
        pass

    def epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


@dataclass
class RunResult:
    """What the coordinator knows at the end: aggregates only."""

    counts: dict[str, int] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    manifest: list[dict[str, Any]] = field(default_factory=list)
    ledger: PrivacyLedger = field(default_factory=PrivacyLedger)


class Coordinator:
    """Drives one hetero-LR run over a transport, recording what crosses."""

    def __init__(self, transport: Transport, experiment: Experiment, run_dir: Path, *,
                 run_key: str, observer: Observer | None = None, capture: bool = False
                 ) -> None:
        self.transport = transport
        self.experiment = experiment
        self.run_dir = run_dir
        self.run_key = run_key
        self.observer = observer or QuietObserver()
        self.result = RunResult(ledger=PrivacyLedger(KeyDirectory(), capture=capture))
        self.phase = "setup"
        self.seq = 0
        self._peer_keys: dict[str, Payload] = {}
        """Each party's copy of the other's public keys, sent with the first PSI message."""

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, requests: dict[str, tuple[str, Payload]]) -> dict[str, Payload]:
        """One exchange with one or both parties (sent together, answered together).

        Every message names the run and carries a sequence number, so a party
        restarted mid-run finds its state, and a re-sent message is answered
        from the party's stored reply instead of being acted on twice.
        """
        self.seq += 1
        for _, payload in requests.values():
            payload.meta.update(seq=self.seq, run_key=self.run_key, run_dir=str(self.run_dir))
        return self.transport.exchange(requests)

    def _forward(self, reply: Payload, *names: str, src: str, dst: str, message_type: str
                 ) -> Payload:
        """Relay the named arrays of ``src``'s reply to ``dst``, recording them in the ledger."""
        out = Payload()
        for name in names:
            out.put(name, reply.arrays[name], reply.kinds.get(name, "?"))
            for key, value in reply.meta.items():
                if key.startswith(f"{name}."):
                    out.meta[key] = value
        self.result.ledger.record(self.phase, message_type, src, dst, out)
        return out

    def _keep(self, reply: Payload, *names: str, src: str, message_type: str) -> None:
        """Record what the coordinator itself keeps from a reply: named arrays and scalars."""
        kept = Payload(meta={k: v for k, v in reply.meta.items() if "." not in k})
        for name in names:
            kept.put(name, reply.arrays[name], reply.kinds.get(name, "?"))
        self.result.ledger.record(self.phase, message_type, src, "coordinator", kept)

    # -- the run ---------------------------------------------------------------------------
    def run(self) -> RunResult:
        self.setup()
        self.align()
        self.train()
        self.evaluate()
        return self.result

    def setup(self) -> None:
        """Each party loads and checks its data and makes its keys; public keys are swapped."""
        self.phase = "setup"
        self.observer.phase("setup", "loading data and generating Paillier keys")
        meta = {"experiment": pack_json(self.experiment.model_dump(mode="json"))}
        replies = self._send({r: ("query.setup", Payload(meta=dict(meta))) for r in PARTIES})
        keys = self.result.ledger.keys
        for role, reply in replies.items():
            self._keep(reply, src=role, message_type="query.setup")
            keys.fingerprints[role] = str(reply.meta["fingerprint"])
            keys.ciphertext_bytes[role] = int(reply.meta["ciphertext_bytes"])
            for name in ("rows", "rows_usable", "rows_quarantined", "ids_invalid",
                         "ids_duplicated", "features"):
                self.result.counts[f"{role}_{name}"] = int(reply.meta[name])
        self._peer_keys = {dst: self._forward(
            replies[src], "public_key", "box_key", src=src, dst=dst,
            message_type="query.psi_blind") for dst, src in PEER.items()}

    def align(self) -> None:
        """ECDH-PSI; the bank intersects, splits and tells the platform positions only."""
        self.phase = "align"
        self.observer.phase("align", "ECDH-PSI on normalised ids")
        blinded = self._send({r: ("query.psi_blind", self._peer_keys[r]) for r in PARTIES})
        crossed = self._send({dst: ("query.psi_cross", self._forward(
            blinded[src], "tokens", src=src, dst=dst, message_type="query.psi_cross"))
            for dst, src in PEER.items()})
        reply = self._send({"bank": ("query.psi_intersect", self._forward(
            crossed["platform"], "tokens", src="platform", dst="bank",
            message_type="query.psi_intersect"))})["bank"]
        self._keep(reply, src="bank", message_type="query.psi_intersect")
        self._send({"platform": ("query.align", self._forward(
            reply, "peer_positions", "train", "validation", "test", src="bank",
            dst="platform", message_type="query.align"))})
        self.result.counts.update(
            rows_aligned=int(reply.meta["rows_aligned"]), rows_train=len(reply.arrays["train"]),
            rows_validation=len(reply.arrays["validation"]), rows_test=len(reply.arrays["test"]))
        self.observer.phase("align", f"{self.result.counts['rows_aligned']} rows aligned")

    def train(self) -> None:
        """Epochs of three-round-trip steps, then the validation loss and early stopping."""
        self.phase = "train"
        spec = self.experiment.train
        counts = self.result.counts
        n_train = counts["rows_train"]
        check_batch_size(spec.batch_size, n_train, counts["bank_features"],
                         counts["platform_features"])
        for epoch in range(spec.max_epochs):
            batches = len(batch_schedule(n_train, spec.batch_size,
                                         self.experiment.experiment.seed, epoch))
            residues: dict[str, Payload] = {r: Payload() for r in PARTIES}
            losses = []
            for batch in range(batches):
                started = self._send({r: ("train.step", residues[r].merge(
                    Payload(meta={"epoch": epoch, "batch": batch}))) for r in PARTIES})
                crossed = self._send({
                    "bank": ("train.cross", self._forward(
                        started["platform"], "quarter_logits", src="platform", dst="bank",
                        message_type="train.cross")),
                    "platform": ("train.cross", self._forward(
                        started["bank"], "residuals", src="bank", dst="platform",
                        message_type="train.cross"))})
                decrypted = self._send({
                    "bank": ("train.decrypt", self._forward(
                        crossed["platform"], "masked_gradient", "loss_terms", src="platform",
                        dst="bank", message_type="train.decrypt")),
                    "platform": ("train.decrypt", self._forward(
                        crossed["bank"], "masked_gradient", src="bank", dst="platform",
                        message_type="train.decrypt"))})
                residues = {dst: self._forward(decrypted[src], "residues", src=src, dst=dst,
                                               message_type="train.step")
                            for dst, src in PEER.items()}
                self._keep(decrypted["bank"], src="bank", message_type="train.decrypt")
                losses.append(float(decrypted["bank"].meta["train_loss"]))
                self.observer.batch(epoch, batch, batches, losses[-1])
            if self._close_epoch(epoch, residues, float(np.mean(losses))):
                break

    def _close_epoch(self, epoch: int, residues: dict[str, Payload], train_loss: float
                     ) -> bool:
        """Apply the last step, checkpoint, compute the validation loss; True to stop."""
        closed = self._send({r: ("train.step", residues[r].merge(
            Payload(meta={"epoch": epoch, "epoch_end": True}))) for r in PARTIES})
        self.phase = "validate"
        terms = self._send({"platform": ("evaluate.loss_terms", self._forward(
            closed["bank"], "residuals", src="bank", dst="platform",
            message_type="evaluate.loss_terms"))})
        verdict = self._send({"bank": ("evaluate.validation_loss", self._forward(
            terms["platform"], "loss_terms", src="platform", dst="bank",
            message_type="evaluate.validation_loss"))})["bank"]
        self._keep(verdict, src="bank", message_type="evaluate.validation_loss")
        self.phase = "train"
        metrics = {"train_loss": train_loss,
                   "validation_loss": float(verdict.meta["validation_loss"])}
        self.result.history.append({"epoch": epoch, **metrics})
        self.result.best_epoch = int(verdict.meta["best_epoch"])
        self.result.epochs_run = epoch + 1
        self.observer.epoch(epoch, metrics)
        return bool(verdict.meta["stop"])

    def evaluate(self) -> None:
        """The platform sends sealed partial scores; the bank scores and reports aggregates."""
        self.phase = "inference"
        # counted from 1, as the summary and MLflow count epochs
        self.observer.phase("evaluate", f"best epoch {self.result.best_epoch + 1}")
        meta = {"best_epoch": self.result.best_epoch}
        partial = self._send({"platform": ("evaluate.partial_scores",
                                           Payload(meta=dict(meta)))})["platform"]
        self._keep(partial, src="platform", message_type="evaluate.partial_scores")
        scored = self._send({"bank": ("evaluate.score", self._forward(
            partial, "validation", "test", src="platform", dst="bank",
            message_type="evaluate.score").merge(Payload(meta=dict(meta))))})["bank"]
        self._keep(scored, "roc", "ks", src="bank", message_type="evaluate.score")
        self.result.manifest = [json.loads(str(partial.meta["manifest"])),
                                json.loads(str(scored.meta["manifest"]))]
        self.result.metrics = {k: float(v) for k, v in scored.meta.items()
                               if isinstance(v, int | float) and not isinstance(v, bool)}
        self.result.curves = {name: scored.arrays[name].tolist() for name in ("roc", "ks")}
