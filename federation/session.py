"""One party's side of a run: its data, keys and model, and the action for each message.

A :class:`PartySession` lives in its party's own directory (``party_dir``):
the private key, the PSI secret, the alignment, checkpoints and the final
model part are files there and nowhere else. In Flower's deployment engine
every message starts a fresh ClientApp process, so the session is rebuilt
from that directory on each message; in simulation it is also kept in
memory (:func:`open_session`) so that data and keys load once.

Actions take and return a :class:`~federation.payload.Payload`. The ClientApp
routes Flower messages here, and the in-process transport used by the fast
tests calls :meth:`PartySession.handle` directly: one code path for both.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from nacl.public import PrivateKey, PublicKey, SealedBox

from crypto.identifiers import check_ids
from crypto.paillier import (
    generate_keypair,
    key_fingerprint,
    private_key_from_json,
    private_key_to_json,
    public_key_from_bytes,
    public_key_to_bytes,
)
from crypto.pool import get_pool
from crypto.psi import PsiParty, intersect
from crypto.vector import residues_from_wire, residues_to_wire
from federation.alignment import split_positions
from federation.hetero_lr import BankParty, PlatformParty, StepVectors
from federation.payload import Payload, get_encrypted, put_encrypted
from lab.datasets import PartyTable, load_party_table
from lab.errors import DataError
from lab.experiment import BankSection, Experiment, PlatformSection
from models.lr import LRPart, batch_schedule
from models.persistence import save_part
from models.preprocess import Standardiser

PartySpec = BankSection | PlatformSection


class ProtocolError(RuntimeError):
    """A message arrived that this party cannot act on in its current state."""


@dataclass
class SessionState:
    """The small, JSON-able part of a session (saved with the arrays in one state file)."""

    role: str
    experiment: dict[str, Any]
    data_path: str
    psi_secret_hex: str = ""
    peer_public_key_hex: str = ""
    peer_box_key_hex: str = ""
    epoch: int = 0
    best_epoch: int = 0
    best_loss: float | None = None
    bad_epochs: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    pending_mask_hex: list[str] = field(default_factory=list)
    version: int = 0
    last_seq: int = -1
    """Sequence number of the last message acted on; its reply is kept for re-delivery."""


class PartySession:
    """A bank's or platform's state for one run, rebuilt from its own directory."""

    def __init__(self, directory: Path, state: SessionState) -> None:
        self.directory = directory
        self.state = state
        self.prefetch = True
        """Precompute the next step's randomness after replying (off where the process
        ends with each message, as on Flower's deployment engine: it would be thrown away)."""
        self.experiment = Experiment.model_validate(state.experiment)
        self.arrays: dict[str, np.ndarray] = {}
        self._table: PartyTable | None = None
        self._party: BankParty | PlatformParty | None = None
        self.last_reply: Payload | None = None
        keyfile = directory / "paillier_key.json"
        self.public_key, self.private_key = (
            private_key_from_json(keyfile.read_text(),
                                  test_only=self.experiment.crypto.test_only_keys)
            if keyfile.exists() else (None, None))

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def create(cls, directory: Path, role: str, experiment: Experiment,
               data_path: str | None = None) -> PartySession:
        directory.mkdir(parents=True, exist_ok=True)
        spec = cls._spec_of(experiment, role)
        state = SessionState(role=role, experiment=experiment.model_dump(mode="json"),
                             data_path=str(data_path or spec.data))
        return cls(directory, state)

    @classmethod
    def load(cls, directory: Path) -> PartySession:
        """Rebuild a session from its one state file (see :meth:`save`)."""
        with np.load(directory / STATE_FILE, allow_pickle=False) as data:
            files = {k: data[k] for k in data.files}
        state = SessionState(**json.loads(files.pop("session").tobytes()))
        session = cls(directory, state)
        session.arrays = {k[2:]: v for k, v in files.items() if k.startswith("a.")}
        model = {k[2:]: v for k, v in files.items() if k.startswith("m.")}
        if model:
            session.party.part.load_state_dict(model)
        session.last_reply = _unpack_reply(files)
        return session

    def save(self, reply: Payload | None = None) -> None:
        """Write the whole state, and the reply to the message just handled, in one file.

        One ``os.replace`` makes the write atomic: a process killed mid-save
        leaves the previous state whole, and a message re-delivered after a
        crash finds either the old state (and is acted on again) or the new
        state with its reply (and gets that reply again) — never a mix.
        """
        self.state.version += 1
        files: dict[str, np.ndarray] = {
            "session": np.frombuffer(json.dumps(self.state.__dict__).encode(), dtype=np.uint8)}
        files.update({f"a.{k}": v for k, v in self.arrays.items()})
        if self._party is not None:
            files.update({f"m.{k}": v for k, v in self._party.part.state_dict().items()})
        if reply is not None:
            files.update(_pack_reply(reply))
            self.last_reply = reply
        tmp = self.directory / f".{STATE_FILE}.tmp.npz"
        np.savez(tmp, **files)
        os.replace(tmp, self.directory / STATE_FILE)

    def _save_model(self, name: str) -> None:
        tmp = self.directory / f".{name}.tmp.npz"
        np.savez(tmp, **self.party.part.state_dict())
        os.replace(tmp, self.directory / name)

    @staticmethod
    def _spec_of(experiment: Experiment, role: str) -> PartySpec:
        return experiment.bank if role == "bank" else experiment.platform

    # -- lazily built pieces ---------------------------------------------------------------
    @property
    def role(self) -> str:
        return self.state.role

    @property
    def spec(self) -> PartySpec:
        return self._spec_of(self.experiment, self.role)

    @property
    def table(self) -> PartyTable:
        if self._table is None:
            self._table = load_party_table(
                Path(self.state.data_path), id_column=self.spec.id_column,
                features=list(self.spec.features),
                label_column=self.spec.label_column if self.role == "bank" else None)
        return self._table

    @property
    def peer_public_key(self):
        return public_key_from_bytes(bytes.fromhex(self.state.peer_public_key_hex),
                                     test_only=self.experiment.crypto.test_only_keys)

    @property
    def party(self) -> BankParty | PlatformParty:
        """The protocol party over the aligned, standardised features (built after align)."""
        if self._party is None:
            if "aligned_rows" not in self.arrays:
                raise ProtocolError(f"{self.role}: training asked for before alignment")
            X = self.table.X[self.arrays["aligned_rows"]]
            standardiser = self.standardiser
            part = LRPart(list(self.spec.features), fit_intercept=self.role == "bank",
                          optimizer=self.experiment.train.optimizer_config())
            keys = (self.public_key, self.private_key, self.peer_public_key)
            if self.role == "bank":
                y = self.table.y[self.arrays["aligned_rows"]]
                self._party = BankParty(standardiser.transform(X), y, part, *keys,
                                        pool=get_pool())
            else:
                self._party = PlatformParty(standardiser.transform(X), part, *keys,
                                            pool=get_pool())
        return self._party

    @property
    def standardiser(self) -> Standardiser:
        path = self.directory / "standardiser.json"
        if not path.exists():
            X = self.table.X[self.arrays["aligned_rows"]][self.arrays["train"]]
            standardiser = Standardiser.fit(X, feature_names=list(self.spec.features))
            path.write_text(json.dumps(standardiser.to_dict()))
        return Standardiser.from_dict(json.loads(path.read_text()))

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, action: str, payload: Payload) -> Payload:
        """Run one action and persist the state it changed, together with the reply.

        A message the coordinator re-sends (its first reply was lost, or this
        node crashed after acting) carries the same sequence number: it gets
        the stored reply instead of being acted on twice — a gradient is never
        applied twice, a mask never redrawn under a reply already sent.
        """
        seq = int(payload.meta.get("seq", -1))
        if seq >= 0 and seq == self.state.last_seq and self.last_reply is not None:
            return self.last_reply
        if 0 <= seq < self.state.last_seq:
            # a late copy of a message already answered (the coordinator re-sends
            # unanswered messages): acting on it would apply an old step again
            raise ProtocolError(f"{self.role}: message {seq} arrived after message "
                                f"{self.state.last_seq}; a stale copy, not acted on")
        method = getattr(self, f"on_{action}", None)
        if method is None:
            raise ProtocolError(f"{self.role}: unknown action {action!r}")
        reply = method(payload)
        self.state.last_seq = seq
        self.save(reply)
        if self.prefetch and action in _TRAINING_ACTIONS and self._party is not None:
            self._party.prefetch_randomness(self._next_encryption_rows())
        return reply

    def _next_encryption_rows(self) -> int:
        """Values our next encryption will cover: one batch (the last one may be smaller)."""
        return min(self.experiment.train.batch_size, len(self.arrays["train"]))

    # -- set-up ----------------------------------------------------------------------------
    def on_setup(self, payload: Payload) -> Payload:
        """Load and check our table, quarantine bad rows, make our key pair."""
        table = self.table
        report = check_ids(table.ids, self.spec.id_kind)
        self._write_quarantine(table, report)
        crypto = self.experiment.crypto
        self.public_key, self.private_key = generate_keypair(
            crypto.key_bits, test_only=crypto.test_only_keys)
        keyfile = self.directory / "paillier_key.json"
        keyfile.write_text(private_key_to_json(self.private_key))
        keyfile.chmod(0o600)
        box_key = PrivateKey.generate()
        boxfile = self.directory / "box_key.bin"
        boxfile.write_bytes(bytes(box_key))
        boxfile.chmod(0o600)
        keep, _ = report.unique_valid()  # first row of each valid id; the rest quarantined
        if not keep:
            first = report.invalid[0] if report.invalid else (0, "", "no rows")
            raise DataError(table.path, column=self.spec.id_column, problem=(
                f"no row has a valid id of kind {self.spec.id_kind!r} ({len(report.invalid)} "
                f"invalid; row {first[0] + 2}: {first[2]})"),
                remedy=f"check id_kind and id_column in [{self.role}] of the experiment, or "
                       "the file's id column")
        self.arrays["usable_rows"] = np.asarray(keep, dtype=np.int64)
        reply = Payload()
        reply.put("public_key", np.frombuffer(public_key_to_bytes(self.public_key),
                                              dtype=np.uint8), "public-key")
        reply.put("box_key", np.frombuffer(bytes(box_key.public_key), dtype=np.uint8),
                  "public-key")
        reply.meta.update({
            "role": self.role, "fingerprint": key_fingerprint(self.public_key),
            "ciphertext_bytes": (self.public_key.nsquare.bit_length() + 7) // 8,
            "rows": len(table.ids) + len(table.quarantined),
            "rows_usable": len(keep), "rows_quarantined": len(table.quarantined),
            "ids_invalid": len(report.invalid), "ids_duplicated": len(report.duplicates),
            "features": len(self.spec.features),
        })
        return reply

    def _write_quarantine(self, table: PartyTable, report) -> None:
        """Every excluded row with its reason: never a silent drop, never a raw id."""
        with (self.directory / "quarantine.csv").open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "row", "column", "reason"])
            for q in table.quarantined:
                writer.writerow([table.path.name, q.row, q.column, q.reason])
            for index, masked, reason in report.invalid:
                writer.writerow([table.path.name, index + 2, self.spec.id_column,
                                 f"{reason} ({masked})"])
            for masked, rows in report.duplicates:
                for index in rows[1:]:
                    writer.writerow([table.path.name, index + 2, self.spec.id_column,
                                     f"duplicate id {masked}: first at row {rows[0] + 2}"])

    # -- alignment (ECDH-PSI) --------------------------------------------------------------
    def on_psi_blind(self, payload: Payload) -> Payload:
        """Store the peer's public keys; hash our usable ids to the group and blind them.

        The keys ride on this first PSI message rather than a message of their
        own because each round trip costs seconds in Flower's deployment
        engine. The Paillier key lets us check that what the peer sends is
        under its own key; the X25519 key lets the platform seal the final
        partial scores so that only the bank, not the relaying coordinator,
        reads them. The platform shuffles its tokens first, so the positions
        the bank later names say nothing about the order of the platform's file.
        """
        self.state.peer_public_key_hex = payload.arrays["public_key"].tobytes().hex()
        self.state.peer_box_key_hex = payload.arrays["box_key"].tobytes().hex()
        secret = PsiParty.new_secret()
        self.state.psi_secret_hex = secret.hex()
        psi = PsiParty(secret=secret)
        rows = self.arrays["usable_rows"]
        if self.role == "platform":
            rows = np.random.default_rng().permutation(rows)
            self.arrays["usable_rows"] = rows
        normalised = check_ids(self.table.ids, self.spec.id_kind).normalised
        ids = [str(normalised[i]) for i in rows]
        return Payload().put("tokens", psi.blind_own(ids, workers=_workers()), "psi-token")

    def on_psi_cross(self, payload: Payload) -> Payload:
        """Blind the other side's tokens with our secret.

        The platform returns the bank's double-blinded tokens (in the bank's order);
        the bank keeps the platform's double-blinded tokens to intersect.
        """
        psi = PsiParty(secret=bytes.fromhex(self.state.psi_secret_hex))
        doubled = psi.blind_other(payload.arrays["tokens"], workers=_workers())
        if self.role == "bank":
            self.arrays["peer_doubled"] = doubled
            return Payload()
        return Payload().put("tokens", doubled, "psi-token")

    def on_psi_intersect(self, payload: Payload) -> Payload:
        """Bank: intersect, fix the aligned order, split it, and tell the platform positions."""
        own, peer = intersect(payload.arrays["tokens"], self.arrays.pop("peer_doubled"))
        order = np.argsort(own, kind="stable")  # our file order: the split must not depend
        own, peer = own[order], peer[order]     # on this run's random PSI secrets
        self.arrays["aligned_rows"] = self.arrays["usable_rows"][own]
        y = self.table.y[self.arrays["aligned_rows"]]
        split = self.experiment.split
        train, val, test = split_positions(y, split.test_fraction, split.validation_fraction,
                                           seed=self.experiment.experiment.seed,
                                           stratify=split.stratify)
        self.arrays.update(train=train, validation=val, test=test)
        reply = Payload().put("peer_positions", peer.astype(np.int64), "id-list")
        for name, positions in (("train", train), ("validation", val), ("test", test)):
            reply.put(name, positions, "id-list")
        reply.meta["rows_aligned"] = len(own)
        return reply

    def on_align(self, payload: Payload) -> Payload:
        """Platform: take the aligned order and the split the bank chose."""
        positions = payload.arrays["peer_positions"]
        self.arrays["aligned_rows"] = self.arrays["usable_rows"][positions]
        for name in ("train", "validation", "test"):
            self.arrays[name] = payload.arrays[name].astype(np.int64)
        return Payload(meta={"rows_aligned": len(positions)})

    # -- training --------------------------------------------------------------------------
    def _batch_rows(self, epoch: int, batch: int) -> np.ndarray:
        train = self.arrays["train"]
        schedule = batch_schedule(len(train), self.experiment.train.batch_size,
                                  self.experiment.experiment.seed, epoch)
        return train[schedule[batch]]

    def on_step(self, payload: Payload) -> Payload:
        """Apply last step's gradient (if any), then start the next batch or close the epoch."""
        party = self.party
        if "residues" in payload.arrays:
            party.pending = self._restore_pending()
            party.apply_gradient(residues_from_wire(payload.arrays["residues"]))
        reply = Payload()
        if payload.meta.get("epoch_end"):
            epoch = int(payload.meta["epoch"])
            self.state.epoch = epoch
            self._save_model(f"model_epoch_{epoch}.npz")
            if self.role == "bank":
                put_encrypted(reply, "residuals",
                              party.encrypt_loss_residuals(self.arrays["validation"]),
                              "ciphertext")
            return reply
        rows = self._batch_rows(int(payload.meta["epoch"]), int(payload.meta["batch"]))
        if self.role == "bank":
            put_encrypted(reply, "residuals", party.encrypt_residuals(rows), "ciphertext")
        else:
            put_encrypted(reply, "quarter_logits", party.encrypt_quarter_logits(rows),
                          "ciphertext")
        self._keep_pending()
        return reply

    def on_cross(self, payload: Payload) -> Payload:
        """Our features times the peer's encrypted vector, masked (step 2)."""
        party = self.party
        party.pending = self._restore_pending()
        reply = Payload()
        if self.role == "bank":
            vector = get_encrypted(payload, "quarter_logits", self.peer_public_key)
            put_encrypted(reply, "masked_gradient", party.masked_gradient(vector), "masked")
        else:
            vector = get_encrypted(payload, "residuals", self.peer_public_key)
            masked, loss_terms = party.masked_gradient(vector)
            put_encrypted(reply, "masked_gradient", masked, "masked")
            put_encrypted(reply, "loss_terms", loss_terms, "aggregate")
        self._keep_pending()
        return reply

    def on_decrypt(self, payload: Payload) -> Payload:
        """Decrypt the peer's masked gradient under our key (step 3); bank: batch loss too."""
        party = self.party
        masked = get_encrypted(payload, "masked_gradient", self.public_key)
        residues = party.decrypt_for_peer(masked)
        reply = Payload().put("residues", residues_to_wire(residues, self.public_key.n),
                              "masked")
        if self.role == "bank":
            pending = self._restore_pending()
            loss = party.decrypt_loss(pending.rows,
                                      get_encrypted(payload, "loss_terms", self.public_key))
            reply.meta["train_loss"] = loss
        return reply

    def _keep_pending(self) -> None:
        """Copy the step's private vectors and mask into state, so a restarted node has them."""
        pending = self.party.pending
        if pending is None:
            return
        self.arrays["pending_rows"] = pending.rows
        self.arrays["pending_vector"] = pending.own_vector
        self.state.pending_mask_hex = [format(m, "x") for m in (pending.mask or [])]

    def _restore_pending(self) -> StepVectors:
        if "pending_rows" not in self.arrays:
            raise ProtocolError(f"{self.role}: a step message arrived with no step under way")
        mask = [int(h, 16) for h in self.state.pending_mask_hex] or None
        return StepVectors(rows=self.arrays["pending_rows"],
                           own_vector=self.arrays["pending_vector"], mask=mask)

    # -- validation loss and early stopping ------------------------------------------------
    def on_loss_terms(self, payload: Payload) -> Payload:
        """Platform: [[Σu_p·d_b + Σu_p²/8]]_B on validation rows, for the bank's loss."""
        residuals = get_encrypted(payload, "residuals", self.peer_public_key)
        terms = self.party.loss_terms(self.arrays["validation"], residuals)
        return put_encrypted(Payload(), "loss_terms", terms, "aggregate")

    def on_validation_loss(self, payload: Payload) -> Payload:
        """Bank: reveal the validation loss to ourselves; decide whether to stop."""
        train = self.experiment.train
        loss = self.party.decrypt_loss(self.arrays["validation"],
                                       get_encrypted(payload, "loss_terms", self.public_key))
        epoch = self.state.epoch
        if self.state.best_loss is None or loss < self.state.best_loss - train.min_delta:
            self.state.best_loss, self.state.best_epoch, self.state.bad_epochs = loss, epoch, 0
        else:
            self.state.bad_epochs += 1
        stop = self.state.bad_epochs >= train.patience or epoch >= train.max_epochs
        return Payload(meta={"validation_loss": loss, "best_epoch": self.state.best_epoch,
                             "stop": bool(stop)})

    # -- final evaluation and saving -------------------------------------------------------
    def _finalise(self, best_epoch: int) -> dict[str, Any]:
        """Restore the best epoch's weights and save our part in our own directory."""
        with np.load(self.directory / f"model_epoch_{best_epoch}.npz",
                     allow_pickle=False) as data:
            self.party.part.load_state_dict({k: data[k] for k in data.files})
        entry = save_part(self.directory / "model", self.party.part, role=self.role,
                          standardiser=self.standardiser,
                          metadata={"experiment": self.experiment.experiment.name,
                                    "best_epoch": best_epoch,
                                    "key_fingerprint": key_fingerprint(self.public_key)})
        return entry

    def on_partial_scores(self, payload: Payload) -> Payload:
        """Platform: u_p of validation and test rows for the bank's final evaluation."""
        entry = self._finalise(int(payload.meta["best_epoch"]))
        reply = Payload(meta={"manifest": json.dumps(entry)})
        box = SealedBox(PublicKey(bytes.fromhex(self.state.peer_box_key_hex)))
        for name in ("validation", "test"):
            scores = self.party.partial_scores(self.arrays[name]).astype("<f8")
            sealed = box.encrypt(scores.tobytes())
            reply.put(name, np.frombuffer(sealed, dtype=np.uint8), "inference-partial-scores")
        return reply

    def on_score(self, payload: Payload) -> Payload:
        """Bank: combine partial scores, measure AUC/KS/Gini; only aggregates go back."""
        # Imported here, not at the top: scikit-learn's import costs every deployment
        # message a second (a fresh ClientApp process per message), and only this
        # final scoring needs it.
        from models.metrics import evaluate, ks_points, roc_points

        entry = self._finalise(int(payload.meta["best_epoch"]))
        reply = Payload(meta={"manifest": json.dumps(entry)})
        y_all = self.party.y
        box = SealedBox(PrivateKey((self.directory / "box_key.bin").read_bytes()))
        for name in ("validation", "test"):
            rows = self.arrays[name]
            partial = np.frombuffer(box.decrypt(payload.arrays[name].tobytes()), dtype="<f8")
            scores = self.party.scores(rows, partial)
            for metric, value in evaluate(y_all[rows], scores).items():
                reply.meta[f"{name}_{metric}"] = float(value)
            if name == "test":
                np.save(self.directory / "test_scores.npy", scores)
                fpr, tpr, _ = roc_points(y_all[rows], scores)
                reply.put("roc", _thin(np.stack([fpr, tpr], axis=1)), "aggregate")
                reply.put("ks", _thin(np.stack(ks_points(y_all[rows], scores), axis=1)),
                          "aggregate")
        return reply


STATE_FILE = "state.npz"


def _pack_reply(reply: Payload) -> dict[str, np.ndarray]:
    files = {f"r.{k}": v for k, v in reply.arrays.items()}
    header = json.dumps({"kinds": reply.kinds, "meta": reply.meta})
    files["reply"] = np.frombuffer(header.encode(), dtype=np.uint8)
    return files


def _unpack_reply(files: dict[str, np.ndarray]) -> Payload | None:
    if "reply" not in files:
        return None
    header = json.loads(files["reply"].tobytes())
    arrays = {k[2:]: v for k, v in files.items() if k.startswith("r.")}
    return Payload(arrays=arrays, kinds=header["kinds"], meta=header["meta"])


def _thin(curve: np.ndarray, points: int = 64) -> np.ndarray:
    """At most ``points`` evenly spaced rows of a curve: enough to plot, an aggregate."""
    if len(curve) <= points:
        return curve
    return curve[np.linspace(0, len(curve) - 1, points).round().astype(int)]


_TRAINING_ACTIONS = frozenset({"step", "cross", "decrypt"})
"""Actions after which a party waits for its peer: time to precompute randomness."""


def _workers() -> int | None:
    """Worker processes for PSI: all cores unless CREDITLAB_CRYPTO_WORKERS says.

    ``0`` (no pool, crypto.pool's meaning) becomes 1 here: PSI then runs in-process.
    """
    value = os.environ.get("CREDITLAB_CRYPTO_WORKERS")
    return max(1, int(value)) if value else os.cpu_count()


_LIVE: dict[str, PartySession] = {}


def open_session(directory: Path) -> PartySession:
    """The session of ``directory``: from memory when this process has its newest state.

    Simulation may route a node's messages to different worker processes, and
    deployment starts a new process per message, so the copy in memory is used
    only if its version is the one on disk.
    """
    key = str(directory.resolve())
    cached = _LIVE.get(key)
    if cached is not None and cached.state.version == _version_on_disk(directory):
        return cached
    _LIVE[key] = PartySession.load(directory)
    return _LIVE[key]


def _version_on_disk(directory: Path) -> int:
    with np.load(directory / STATE_FILE, allow_pickle=False) as data:
        return int(json.loads(data["session"].tobytes())["version"])


def saved_arrays(directory: Path) -> dict[str, np.ndarray]:
    """A party's saved alignment and split arrays, without rebuilding its session."""
    with np.load(directory / STATE_FILE, allow_pickle=False) as data:
        return {k[2:]: data[k] for k in data.files if k.startswith("a.")}


def forget_session(directory: Path) -> None:
    """Drop the in-memory copy (after a failed action, whose changes were not saved)."""
    _LIVE.pop(str(directory.resolve()), None)


def start_session(directory: Path, role: str, experiment: Experiment,
                  data_path: str | None = None) -> PartySession:
    """A fresh session for a new run (replacing any stale one of this directory)."""
    session = PartySession.create(directory, role, experiment, data_path)
    _LIVE[str(directory.resolve())] = session
    return session

