"""Exact-loss centralised logistic regression, for comparison only.

The federated model optimises the Taylor-approximated loss (:mod:`models.taylor`).
To show what that approximation costs, a run also fits scikit-learn's
``LogisticRegression`` (exact log-loss, lbfgs) on the joined training data and
reports both AUCs side by side. This model never leaves the lab's test bench:
it needs all columns in one place, which is exactly what the federation avoids.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

__all__ = ["fit_sklearn_lr"]


def fit_sklearn_lr(
    X_train: np.ndarray, y_train: np.ndarray, *, l2: float = 0.001
) -> LogisticRegression:
    """Fit the exact-loss reference on the joined training rows.

    Parameters
    ----------
    X_train : array of shape (n, n_features)
        Joined (bank then platform) training features.
    y_train : array of shape (n,)
        Labels in {0, 1}.
    l2 : float, default 0.001
        The L2 coefficient of the federated objective
        ``mean loss + (l2/2)·‖w‖²``. scikit-learn minimises
        ``C·Σ loss + ½‖w‖²``; dividing ours by ``l2`` gives ``C = 1 / (l2·n)``,
        so both penalise the weights alike. ``l2 = 0`` gives a practically
        unregularised fit (``C = 1e12``).

    Returns
    -------
    sklearn.linear_model.LogisticRegression
        Fitted with lbfgs and ``max_iter = 2000``; the intercept is not
        penalised by lbfgs, as in the federated model.
    """
    X_arr = np.asarray(X_train, dtype=np.float64)
    y_arr = np.asarray(y_train).reshape(-1)
    if X_arr.ndim != 2 or X_arr.shape[0] != y_arr.size:
        raise ValueError(f"X_train has shape {X_arr.shape} but y_train has {y_arr.size} labels")
    if l2 < 0:
        raise ValueError(f"l2 must be ≥ 0, got {l2}")
    C = 1.0 / (l2 * X_arr.shape[0]) if l2 > 0 else 1e12
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=2000)
    model.fit(X_arr, y_arr)
    return model
