"""Per-party standardisation of features (DESIGN §3, step 3 "Prepare").

Each party standardises only its own columns, with the mean and standard
deviation of the *training* rows only — fitting on validation or test rows
would leak their distribution into the model and flatter the reported AUC.
The fitted parameters are saved next to the party's model part (they are
needed to score new applicants) as plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Standardiser"]


@dataclass(frozen=True)
class Standardiser:
    """Fitted ``(x − mean) / scale`` per column.

    Build it with :meth:`fit` (or :meth:`from_dict` when loading a part); the
    fields are the fitted parameters.

    Attributes
    ----------
    feature_names : list of str
        Column names, in matrix order (used in error messages and to check a
        loaded part is applied to the right columns).
    mean : numpy.ndarray of shape (n_features,)
        Training-row means.
    scale : numpy.ndarray of shape (n_features,)
        Training-row standard deviations (population, ``ddof = 0``, as
        scikit-learn's ``StandardScaler``).
    """

    feature_names: list[str]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, X_train: np.ndarray, feature_names: Sequence[str] | None = None) -> Standardiser:
        """Fit mean and standard deviation on the training rows.

        Parameters
        ----------
        X_train : array of shape (n, n_features)
            This party's training rows only.
        feature_names : sequence of str, optional
            Column names; ``x0, x1, …`` when omitted.

        Raises
        ------
        ValueError
            If a column is constant on the training rows (it carries no
            information and would divide by zero), naming the column; or if
            values are missing/non-finite.
        """
        X = np.asarray(X_train, dtype=np.float64)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"expected a non-empty 2-d training matrix, got shape {X.shape}")
        names = (
            [f"x{i}" for i in range(X.shape[1])] if feature_names is None else list(feature_names)
        )
        if len(names) != X.shape[1]:
            raise ValueError(f"{len(names)} feature names for {X.shape[1]} columns")
        if not np.all(np.isfinite(X)):
            bad = names[int(np.argmax(~np.all(np.isfinite(X), axis=0)))]
            raise ValueError(
                f"column {bad!r} has missing or infinite values on the training rows; "
                "quarantine or impute them before standardising"
            )
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        tolerance = 1e-12 * np.maximum(1.0, np.abs(mean))
        constant = [name for name, s, t in zip(names, scale, tolerance, strict=True) if s <= t]
        if constant:
            raise ValueError(
                f"column {constant[0]!r} is constant on the training rows, so it carries no "
                "information and cannot be standardised; remove it from the party's features"
                + (f" (also constant: {', '.join(constant[1:])})" if len(constant) > 1 else "")
            )
        return cls(feature_names=names, mean=mean, scale=scale)

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Standardise rows with the fitted parameters (any split, new applicants)."""
        arr = np.asarray(X, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != len(self.feature_names):
            raise ValueError(
                f"expected {len(self.feature_names)} columns ({', '.join(self.feature_names)}), "
                f"got shape {arr.shape}"
            )
        return (arr - self.mean) / self.scale

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters (lists of floats), for ``part.json``."""
        return {
            "feature_names": list(self.feature_names),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Standardiser:
        """Rebuild from :meth:`to_dict` output, checking the lengths agree."""
        try:
            names = [str(name) for name in data["feature_names"]]
            mean = np.asarray(data["mean"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"standardiser parameters are incomplete or malformed ({exc}); "
                "expected keys feature_names, mean, scale"
            ) from exc
        if not (mean.shape == scale.shape == (len(names),)):
            raise ValueError(
                f"standardiser has {len(names)} names, {mean.size} means, {scale.size} scales"
            )
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)) or not np.all(np.isfinite(mean)):
            raise ValueError("standardiser scales must be positive and all values finite")
        return cls(feature_names=names, mean=mean, scale=scale)
