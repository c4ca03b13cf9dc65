"""What both apps need to score with a saved model part: the part and its features.

Why here and not in each app: the bank and the platform each hold one half
of the same model and must compute their half the same way the training run
did — standardise with the part's own fitted parameters, then ``X·w (+ b)``
via :meth:`models.lr.LRPart.partial_logit`. One helper for both halves is
what makes "the served score equals the offline score" a property of the
code, not of two copies of it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crypto.identifiers import normalise_id
from lab.datasets import load_party_table
from models.lr import LRPart
from models.persistence import PART_FILE, load_part
from models.preprocess import Standardiser

__all__ = ["FeatureTable", "ServedPart"]


@dataclass(frozen=True)
class ServedPart:
    """A loaded, hash-checked model part.

    Attributes
    ----------
    part_id, sha256 : str
        As recorded in ``part.json`` and the run's manifest.
    role : str
        ``"bank"`` or ``"platform"``.
    part : LRPart
        Weights (and the intercept on the bank's part).
    standardiser : Standardiser
        The training rows' means and scales of this party's features.
    metadata : dict
        The part's free metadata (experiment name, best epoch …).
    """

    part_id: str
    sha256: str
    role: str
    part: LRPart
    standardiser: Standardiser
    metadata: dict[str, object]

    @classmethod
    def load(cls, directory: Path) -> ServedPart:
        """Load ``directory`` (``save_part`` output); the weights' hash is verified first.

        Raises
        ------
        ValueError
            If the part has no standardiser (it could not score new rows the
            way it was trained), naming the directory.
        """
        part, standardiser, metadata = load_part(directory)
        document = json.loads((Path(directory) / PART_FILE).read_text(encoding="utf-8"))
        if standardiser is None:
            raise ValueError(f"{directory}: the part has no standardiser, so new rows cannot be "
                             "scored as the training rows were; save it with its standardiser")
        return cls(part_id=str(document["part_id"]), sha256=str(document["sha256"]),
                   role=str(document["role"]), part=part, standardiser=standardiser,
                   metadata=metadata)

    @property
    def feature_names(self) -> list[str]:
        """The part's feature columns, in model order."""
        return list(self.part.feature_names)

    def contributions(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``(partial logit, per-feature contributions)`` of one row of raw features.

        A feature's contribution is ``w_j · (x_j − mean_j) / scale_j``: its
        push on the logit of default relative to an average training row.
        The partial logit is their sum plus the intercept, computed by the
        part itself so it is the training code's number.
        """
        row = self.standardiser.transform(np.asarray(x, dtype=np.float64).reshape(1, -1))
        logit = float(self.part.partial_logit(row)[0])
        return logit, row[0] * self.part.weights


class FeatureTable:
    """One party's serving features, keyed by normalised id.

    Built from a CSV with :func:`lab.datasets.load_party_table` (the loader the
    training run used, with its checks), so a served row is read exactly as
    the trained row was.
    """

    def __init__(self, ids: list[str], X: np.ndarray, feature_names: list[str]) -> None:
        self.feature_names = list(feature_names)
        self._row = {normalise_id(i): n for n, i in enumerate(ids)}
        self._X = X

    @classmethod
    def from_csv(cls, path: Path, *, id_column: str, features: list[str]) -> FeatureTable:
        """Load ``features`` of every usable row of ``path``."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such serving feature file")
        table = load_party_table(path, id_column=id_column, features=features)
        return cls(table.ids, table.X, table.feature_names)

    def __len__(self) -> int:
        return len(self._row)

    def __contains__(self, subject: str) -> bool:
        return subject in self._row

    def row(self, subject: str, columns: list[str] | None = None) -> np.ndarray | None:
        """The subject's features (all, or ``columns`` in that order); None if unknown."""
        index = self._row.get(subject)
        if index is None:
            return None
        values = self._X[index]
        if columns is None:
            return values.copy()
        return np.array([values[self.feature_names.index(c)] for c in columns])
