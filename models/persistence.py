"""Saving and loading one party's model part inside its own domain.

Each party writes its part to its own directory:

- ``weights.npz`` — the arrays of :meth:`models.lr.LRPart.state_dict`
  (weights, intercept, optimizer state), written with ``np.savez`` and read
  with ``allow_pickle=False``, so loading a part never runs code;
- ``part.json`` — role, feature names, optimizer config, standardiser
  parameters, free metadata and the SHA-256 of ``weights.npz``.

What goes into the run's model manifest (MLflow, DESIGN §3 step 6) is the
entry :func:`save_part` returns: part id, role, hash and feature names —
never the weights, which stay in the party's domain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from models.lr import LRPart, OptimizerConfig
from models.preprocess import Standardiser

__all__ = ["PartIntegrityError", "load_part", "save_part"]

WEIGHTS_FILE = "weights.npz"
PART_FILE = "part.json"
FORMAT_VERSION = 1


class PartIntegrityError(ValueError):
    """A saved part's files do not match each other (changed or corrupted)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_part(
    directory: Path,
    part: LRPart,
    *,
    role: str,
    standardiser: Standardiser | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Write a part to ``directory`` and return its manifest entry.

    Parameters
    ----------
    directory : Path
        The party's own folder for this part (created if missing).
    part : LRPart
        The trained part.
    role : str
        ``"bank"`` or ``"platform"`` (free text, recorded as given).
    standardiser : Standardiser or None
        The party's fitted standardiser, needed to score new rows.
    metadata : dict
        JSON-able facts about the part (run id, epoch, experiment name …).

    Returns
    -------
    dict
        ``{"part_id", "role", "sha256", "feature_names"}`` — safe to log
        centrally; it identifies the part without revealing it.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if standardiser is not None and standardiser.feature_names != part.feature_names:
        raise ValueError(
            "the standardiser was fitted on other columns than the part's features: "
            f"{standardiser.feature_names} vs {part.feature_names}"
        )
    weights_path = directory / WEIGHTS_FILE
    with weights_path.open("wb") as handle:
        np.savez(handle, **part.state_dict())
    digest = _sha256(weights_path)
    part_id = uuid.uuid4().hex
    document = {
        "format_version": FORMAT_VERSION,
        "part_id": part_id,
        "role": role,
        "feature_names": list(part.feature_names),
        "fit_intercept": part.fit_intercept,
        "optimizer": part.optimizer_config.model_dump(),
        "standardiser": None if standardiser is None else standardiser.to_dict(),
        "metadata": metadata,
        "weights_file": WEIGHTS_FILE,
        "sha256": digest,
    }
    try:
        text = json.dumps(document, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata must be JSON-able (no NaN, arrays or objects): {exc}") from exc
    (directory / PART_FILE).write_text(text + "\n", encoding="utf-8")
    return {
        "part_id": part_id,
        "role": role,
        "sha256": digest,
        "feature_names": list(part.feature_names),
    }


def load_part(directory: Path) -> tuple[LRPart, Standardiser | None, dict[str, Any]]:
    """Load a part written by :func:`save_part`, verifying its hash first.

    Returns
    -------
    tuple
        ``(part, standardiser or None, metadata)``; the part resumes training
        exactly where it was saved (optimizer state included).

    Raises
    ------
    FileNotFoundError
        If ``part.json`` or ``weights.npz`` is missing.
    PartIntegrityError
        If ``weights.npz`` does not hash to the value in ``part.json``
        (naming the file) — a changed file must never be scored with.
    """
    directory = Path(directory)
    part_path = directory / PART_FILE
    if not part_path.is_file():
        raise FileNotFoundError(f"{part_path}: no part description; was save_part() run here?")
    try:
        document = json.loads(part_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise PartIntegrityError(f"{part_path}: not valid JSON ({exc})") from exc
    weights_path = directory / str(document.get("weights_file", WEIGHTS_FILE))
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: the part's weights file is missing")
    actual = _sha256(weights_path)
    if actual != document.get("sha256"):
        raise PartIntegrityError(
            f"{weights_path}: SHA-256 {actual} does not match {document.get('sha256')} recorded "
            f"in {part_path}; the weights were changed or corrupted — restore the saved part "
            "or retrain"
        )
    part = LRPart(
        list(document["feature_names"]),
        fit_intercept=bool(document["fit_intercept"]),
        optimizer=OptimizerConfig(**document["optimizer"]),
    )
    with np.load(weights_path, allow_pickle=False) as arrays:
        part.load_state_dict({key: arrays[key] for key in arrays.files})
    raw_standardiser = document.get("standardiser")
    standardiser = None if raw_standardiser is None else Standardiser.from_dict(raw_standardiser)
    return part, standardiser, dict(document.get("metadata") or {})
