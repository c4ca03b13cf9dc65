"""The privacy ledger: every message that crosses a domain, and a check that can fail.

The coordinator relays every protocol message, so it is the one place that
sees them all. For each message it records the phase, the message type, the
direction (``bank -> platform``, ``platform -> coordinator`` …) and, for each
array, its declared kind, element count and bytes. :func:`check_entry` then
tests each declaration against the bytes themselves, so a party that sends a
plaintext vector under a false label is caught, not trusted:

``ciphertext``
    Paillier ciphertexts under the *sender's* key (the receiver cannot decrypt):
    uint8 ``(n, bytes(n²))`` rows, a fingerprint equal to the sender's published
    key and different from the receiver's, and high-entropy rows (a plaintext
    padded to ciphertext width has long runs of leading zero bytes).
``masked``
    values hidden by a fresh random mask (a masked gradient, under encryption
    or decrypted); per-feature length only, never per-sample.
``aggregate``
    sums the protocol names (counts, a loss, metrics, curve points): at most
    :data:`AGGREGATE_MAX` values.
``psi-token``
    blinded group elements, uint8 ``(n, 32)``, during alignment only.
``id-list``
    integer row positions into the aligned set, during alignment only.
``public-key``
    a party's Paillier public key, during set-up only.
``inference-partial-scores``
    the platform's partial scores of rows the bank scores, platform → bank, in
    the final inference phase only (DESIGN §4.4), sealed to the bank's X25519
    key so the relaying coordinator cannot read them: opaque uint8 bytes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from federation.payload import Payload

KINDS = (
    "ciphertext",
    "masked",
    "aggregate",
    "psi-token",
    "id-list",
    "public-key",
    "inference-partial-scores",
)
AGGREGATE_MAX = 128
"""Largest array a party may call an aggregate: far below the smallest batch the
rank-leakage guard allows on real data, so a per-sample vector cannot pass."""

PHASES_FOR_KIND = {
    "psi-token": {"align"},
    "id-list": {"align"},
    "public-key": {"setup"},
    "inference-partial-scores": {"inference"},
}


@dataclass
class ArrayEntry:
    """One array of one message, as the ledger records it."""

    name: str
    kind: str
    count: int
    nbytes: int
    fingerprint: str = ""


@dataclass
class LedgerEntry:
    """One message that crossed a domain boundary."""

    seq: int
    phase: str
    message_type: str
    src: str
    dst: str
    arrays: list[ArrayEntry] = field(default_factory=list)
    scalars: list[str] = field(default_factory=list)
    """Names of the scalar values carried (counts, losses, metrics): aggregates by design."""
    violations: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


@dataclass
class KeyDirectory:
    """Public facts the coordinator holds: each party's key fingerprint and ciphertext width."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    ciphertext_bytes: dict[str, int] = field(default_factory=dict)


def _leading_zero_rows(rows: np.ndarray, zero_bytes: int = 8) -> float:
    """Share of rows whose first ``zero_bytes`` bytes are all zero."""
    if rows.shape[0] == 0:
        return 0.0
    return float(np.mean(~rows[:, :zero_bytes].any(axis=1)))


def check_entry(
    entry: LedgerEntry, payload: Payload, keys: KeyDirectory
) -> list[str]:
    """Return every privacy violation in one message (empty when it is clean).

    A violation names the array and what was wrong with it. The check is
    deliberately strict: a kind that is not declared, a shape that does not
    fit the kind, or a kind outside the phase it belongs to all count.
    """
    problems: list[str] = []
    for name, array in payload.arrays.items():
        kind = payload.kinds.get(name)
        where = f"{entry.message_type} {entry.src}->{entry.dst} array '{name}'"
        if kind not in KINDS:
            problems.append(f"{where}: undeclared kind {kind!r}")
            continue
        allowed_phases = PHASES_FOR_KIND.get(kind)
        if allowed_phases is not None and entry.phase not in allowed_phases:
            problems.append(f"{where}: kind {kind} is not allowed in phase {entry.phase}")
        if kind == "inference-partial-scores":
            if (entry.src, entry.dst) != ("platform", "bank"):
                problems.append(f"{where}: partial scores may only go platform->bank")
            if array.dtype != np.uint8 or array.ndim != 1:
                problems.append(f"{where}: partial scores must travel sealed (uint8 bytes), "
                                f"got {array.dtype} {array.shape}")
        if kind == "ciphertext":
            problems.extend(_check_ciphertext(where, name, array, payload, entry, keys))
        elif kind in ("masked", "aggregate") and array.shape[0] > AGGREGATE_MAX:
            problems.append(
                f"{where}: {kind} array has {array.shape[0]} entries (> {AGGREGATE_MAX}):"
                " looks per-sample"
            )
        elif kind == "public-key" and array.dtype != np.uint8:
            problems.append(f"{where}: public-key must be raw bytes, got {array.dtype}")
        elif kind == "psi-token" and (array.dtype != np.uint8 or array.ndim != 2
                                      or array.shape[1] != 32):
            problems.append(f"{where}: psi-token must be uint8 (n, 32), got "
                            f"{array.dtype} {array.shape}")
        elif kind == "id-list" and not np.issubdtype(array.dtype, np.integer):
            problems.append(f"{where}: id-list must be integer positions, got {array.dtype}")
    return problems


def _check_ciphertext(
    where: str, name: str, array: np.ndarray, payload: Payload, entry: LedgerEntry,
    keys: KeyDirectory,
) -> list[str]:
    if array.dtype != np.uint8 or array.ndim != 2:
        return [f"{where}: ciphertext must be a uint8 (n, bytes) array, got "
                f"{array.dtype} {array.shape}"]
    problems = []
    fingerprint = str(payload.meta.get(f"{name}.fingerprint", ""))
    if fingerprint != keys.fingerprints.get(entry.src):
        problems.append(f"{where}: ciphertext is not under the sender's published key")
    if fingerprint and fingerprint == keys.fingerprints.get(entry.dst):
        problems.append(f"{where}: ciphertext is under the receiver's own key")
    width = keys.ciphertext_bytes.get(entry.src)
    if width is not None and array.shape[1] != width:
        problems.append(f"{where}: rows are {array.shape[1]} bytes, ciphertexts are {width}")
    if _leading_zero_rows(array) > 0.01:
        problems.append(f"{where}: rows start with zero bytes: a plaintext padded as ciphertext")
    return problems


class PrivacyLedger:
    """Records and checks every cross-domain message of one run."""

    def __init__(self, keys: KeyDirectory | None = None, *, capture: bool = False) -> None:
        self.keys = keys or KeyDirectory()
        self.entries: list[LedgerEntry] = []
        self.capture = capture
        self.captured: list[Payload] = []
        """Raw payloads, kept only when ``capture`` is set (tests scan them)."""

    def record(self, phase: str, message_type: str, src: str, dst: str,
               payload: Payload) -> LedgerEntry:
        """Log one message and check it; returns the entry (with any violations)."""
        entry = LedgerEntry(seq=len(self.entries), phase=phase, message_type=message_type,
                            src=src, dst=dst,
                            scalars=sorted(k for k in payload.meta if "." not in k))
        for name, array in payload.arrays.items():
            entry.arrays.append(ArrayEntry(
                name=name, kind=payload.kinds.get(name, "?"),
                count=int(array.shape[0]) if array.ndim else 1, nbytes=int(array.nbytes),
                fingerprint=str(payload.meta.get(f"{name}.fingerprint", "")),
            ))
        entry.violations = check_entry(entry, payload, self.keys)
        self.entries.append(entry)
        if self.capture:
            self.captured.append(payload)
        return entry

    @property
    def violations(self) -> list[str]:
        return [v for e in self.entries for v in e.violations]

    def summary(self) -> list[dict[str, object]]:
        """One row per (phase, message type, direction, kind): count, elements, bytes."""
        rows: dict[tuple[str, str, str, str, str], dict[str, int]] = defaultdict(
            lambda: {"messages": 0, "elements": 0, "bytes": 0})
        for e in self.entries:
            if e.scalars:
                row = rows[(e.phase, e.message_type, e.src, e.dst, "scalar-aggregates")]
                row["messages"] += 1
                row["elements"] += len(e.scalars)
            for a in e.arrays:
                row = rows[(e.phase, e.message_type, e.src, e.dst, a.kind)]
                row["messages"] += 1
                row["elements"] += a.count
                row["bytes"] += a.nbytes
        return [
            {"phase": k[0], "message_type": k[1], "src": k[2], "dst": k[3], "kind": k[4], **v}
            for k, v in sorted(rows.items())
        ]

    def to_json(self) -> dict[str, object]:
        return {
            "keys": asdict(self.keys),
            "messages": len(self.entries),
            "bytes": sum(e.nbytes for e in self.entries),
            "plaintext_violations": len(self.violations),
            "violations": self.violations,
            "summary": self.summary(),
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2), encoding="utf-8")
