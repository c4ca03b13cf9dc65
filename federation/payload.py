"""What a protocol message carries, and how it maps onto Flower records.

Every array that crosses a domain is declared with a *kind* by the party that
produces it (see :mod:`federation.ledger`): the coordinator relays payloads
without opening them, and the privacy ledger checks each declaration against
the bytes that actually travel. Keeping the declaration next to the array in
one small structure means a party cannot send data without saying what it is.

Layout in a Flower ``RecordDict``:

- ``"arrays"``: an ``ArrayRecord`` of numpy arrays (ciphertexts travel as uint8
  ``(n, bytes_per_ciphertext)`` arrays, chunked by Flower);
- ``"kinds"``: a ``ConfigRecord`` mapping each array name to its kind;
- ``"meta"``: a ``ConfigRecord`` of scalars (key fingerprints, fixed-point
  scales, counts, control values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from crypto.vector import EncryptedVector, from_wire, to_wire

Scalar = int | float | str | bool | bytes


@dataclass
class Payload:
    """Named arrays with their declared kinds, plus scalar metadata."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Scalar] = field(default_factory=dict)

    def put(self, name: str, array: np.ndarray, kind: str) -> Payload:
        """Add one array with its declared kind; returns self for chaining."""
        self.arrays[name] = np.ascontiguousarray(array)
        self.kinds[name] = kind
        return self

    def merge(self, other: Payload) -> Payload:
        """Copy another payload's arrays, kinds and metadata into this one."""
        self.arrays.update(other.arrays)
        self.kinds.update(other.kinds)
        self.meta.update(other.meta)
        return self

    def nbytes(self) -> int:
        """Bytes of array data carried (metadata excluded)."""
        return int(sum(a.nbytes for a in self.arrays.values()))

    def to_records(self) -> RecordDict:
        """Encode as a Flower ``RecordDict``."""
        return RecordDict(
            {
                "arrays": ArrayRecord({k: Array(v) for k, v in self.arrays.items()}),
                "kinds": ConfigRecord(dict(self.kinds)),
                "meta": ConfigRecord(dict(self.meta)),
            }
        )

    @classmethod
    def from_records(cls, content: RecordDict) -> Payload:
        """Decode a ``RecordDict`` produced by :meth:`to_records`."""
        arrays: dict[str, np.ndarray] = {}
        if "arrays" in content:
            arrays = {k: v.numpy() for k, v in content["arrays"].items()}
        kinds = {k: str(v) for k, v in content["kinds"].items()} if "kinds" in content else {}
        meta: dict[str, Scalar] = dict(content["meta"].items()) if "meta" in content else {}
        return cls(arrays=arrays, kinds=kinds, meta=meta)


def pack_json(value: Any) -> str:
    """Serialise a small control structure (experiment spec, summaries) for ``meta``."""
    return json.dumps(value, sort_keys=True, default=str)


def unpack_json(text: Scalar) -> Any:
    """Inverse of :func:`pack_json`."""
    return json.loads(str(text))


def put_encrypted(payload: Payload, name: str, vector: EncryptedVector, kind: str) -> Payload:
    """Add an encrypted vector as a fixed-width uint8 array with its key fingerprint."""
    array, meta = to_wire(vector)
    payload.put(name, array, kind)
    payload.meta[f"{name}.fingerprint"] = str(meta["fingerprint"])
    payload.meta[f"{name}.frac_bits"] = int(meta["frac_bits"])
    return payload


def get_encrypted(payload: Payload, name: str, public_key) -> EncryptedVector:
    """Read an encrypted vector back, refusing one under another key than ``public_key``."""
    meta = {"fingerprint": payload.meta[f"{name}.fingerprint"],
            "frac_bits": int(payload.meta[f"{name}.frac_bits"])}
    return from_wire(payload.arrays[name], meta, public_key)
