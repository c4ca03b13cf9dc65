"""Central references: what the same data would give if it were pooled.

Pooling is exactly what the lab exists to avoid, so these run only where
one operator legitimately holds both tables — the demo, tests and
benchmarks on public data — to show what the vertical run costs (nothing,
against the same Taylor-loss model) and what the Taylor loss costs (little,
against scikit-learn's exact logistic regression). They use the bank's own
alignment and split from its directory, so every model sees the same rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crypto.identifiers import normalise_id
from federation.session import saved_arrays
from lab.datasets import load_party_table
from lab.experiment import Experiment
from models.lr import fit_central_taylor
from models.metrics import auc, ks
from models.preprocess import Standardiser
from models.reference import fit_sklearn_lr


def _joined(experiment: Experiment, bank_dir: Path
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Bank features, platform features and labels in the run's aligned order, plus the split."""
    bank_spec, platform_spec = experiment.bank, experiment.platform
    bank = load_party_table(bank_spec.data, id_column=bank_spec.id_column,
                            features=bank_spec.features, label_column=bank_spec.label_column)
    platform = load_party_table(platform_spec.data, id_column=platform_spec.id_column,
                                features=platform_spec.features)
    saved = saved_arrays(bank_dir)
    aligned = saved["aligned_rows"]
    split = {name: saved[name] for name in ("train", "validation", "test")}
    row_of = {normalise_id(i): n for n, i in enumerate(platform.ids)}
    platform_rows = np.array([row_of[normalise_id(bank.ids[i])] for i in aligned])
    assert bank.y is not None
    return bank.X[aligned], platform.X[platform_rows], bank.y[aligned], split


def _standardised(X: np.ndarray, train: np.ndarray) -> np.ndarray:
    return Standardiser.fit(X[train]).transform(X)


def central_references(experiment: Experiment, bank_dir: Path, epochs: int
                       ) -> dict[str, float]:
    """Test AUC/KS of the central Taylor LR (same batches and epochs), exact LR, bank-only LR."""
    X_bank, X_platform, y, split = _joined(experiment, bank_dir)
    train, test = split["train"], split["test"]
    X_bank = _standardised(X_bank, train)
    X = np.hstack([X_bank, _standardised(X_platform, train)])
    names = [f"bank.{f}" for f in experiment.bank.features] + [
        f"platform.{f}" for f in experiment.platform.features]
    spec = experiment.train
    taylor = fit_central_taylor(X[train], y[train], names, optimizer=spec.optimizer_config(),
                                batch_size=spec.batch_size, seed=experiment.experiment.seed,
                                epochs=epochs)
    taylor_scores = taylor.partial_logit(X[test])
    exact = fit_sklearn_lr(X[train], y[train]).decision_function(X[test])
    bank_only = fit_sklearn_lr(X_bank[train], y[train]).decision_function(X_bank[test])
    return {
        "centralized_taylor_test_auc": auc(y[test], taylor_scores),
        "centralized_taylor_test_ks": ks(y[test], taylor_scores),
        "centralized_test_auc": auc(y[test], exact),
        "centralized_test_ks": ks(y[test], exact),
        "bank_only_test_auc": auc(y[test], bank_only),
    }
