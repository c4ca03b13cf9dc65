"""Party-local model math: Taylor loss, LR parts, batches, metrics, persistence."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from models.lr import (
    LRPart,
    OptimizerConfig,
    batch_schedule,
    check_batch_size,
    fit_central_taylor,
    mean_gradient,
)
from models.metrics import auc, evaluate, gini, ks, ks_points, roc_points
from models.persistence import PartIntegrityError, load_part, save_part
from models.preprocess import Standardiser
from models.reference import fit_sklearn_lr
from models.taylor import taylor_loss, taylor_residual

DATA = Path(__file__).resolve().parents[1] / "data" / "default_credit"
OPTIMIZERS = ["sgd", "adam", "rmsprop"]


@pytest.fixture(scope="module")
def default_credit() -> dict[str, np.ndarray]:
    """Joined default_credit (bank columns first), with a stratified 80/20 split."""
    bank = pd.read_csv(DATA / "bank.csv", dtype={"id": str})
    platform = pd.read_csv(DATA / "platform.csv", dtype={"id": str})
    assert list(bank["id"]) == list(platform["id"])
    X_bank = bank[[f"x{i}" for i in range(13)]].to_numpy(dtype=np.float64)
    X_platform = platform[[f"x{i}" for i in range(10)]].to_numpy(dtype=np.float64)
    y = bank["y"].to_numpy(dtype=np.int64)
    train, test = train_test_split(np.arange(y.size), test_size=0.2, stratify=y, random_state=42)
    return {
        "X_bank": X_bank,
        "X_platform": X_platform,
        "X": np.hstack([X_bank, X_platform]),
        "y": y,
        "train": np.sort(train),
        "test": np.sort(test),
    }


def _names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


# ----------------------------------------------------------------------------- Taylor


def test_taylor_residual_and_loss_match_hand_values() -> None:
    z = np.array([0.0, 2.0, -4.0])
    y = np.array([1, 0, 1])
    np.testing.assert_allclose(taylor_residual(z, y), [-0.5, 1.0, -1.5])
    expected = np.mean(
        [math.log(2), math.log(2) + 1 + 0.5, math.log(2) - 2 + 2 + 4]
    )  # log2 + z/2 + z²/8 − y·z per row
    assert taylor_loss(z, y) == pytest.approx(expected, abs=1e-15)


def test_taylor_loss_is_close_to_log_loss_near_zero() -> None:
    z = np.linspace(-0.5, 0.5, 11)
    for label in (0, 1):
        y = np.full_like(z, label)
        exact = np.mean(np.log1p(np.exp(z)) - y * z)
        assert taylor_loss(z, y) == pytest.approx(exact, abs=2e-4)


def test_taylor_residual_refuses_misaligned_rows() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        taylor_residual(np.zeros(3), np.zeros(4))


# ----------------------------------------------------------------------------- LR parts


def test_sgd_step_applies_l2_to_weights_but_not_intercept() -> None:
    part = LRPart(["a", "b"], fit_intercept=True, optimizer=OptimizerConfig(name="sgd", l2=0.5))
    assert part.weights.tolist() == [0.0, 0.0] and part.intercept == 0.0
    lr = 0.05
    part.step(np.array([1.0, -2.0]), 0.4)
    np.testing.assert_allclose(part.weights, [-lr * 1.0, lr * 2.0])
    assert part.intercept == pytest.approx(-lr * 0.4)
    w1, b1 = part.weights, part.intercept
    part.step(np.array([1.0, -2.0]), 0.4)
    np.testing.assert_allclose(part.weights, w1 - lr * (np.array([1.0, -2.0]) + 0.5 * w1))
    assert part.intercept == pytest.approx(b1 - lr * 0.4)
    X = np.array([[1.0, 2.0], [3.0, -1.0]])
    np.testing.assert_allclose(part.partial_logit(X), X @ part.weights + part.intercept)


def test_part_without_intercept_has_none() -> None:
    part = LRPart(["a"], fit_intercept=False, optimizer=OptimizerConfig())
    assert part.intercept == 0.0
    with pytest.raises(ValueError, match="no intercept"):
        part.step(np.array([1.0]), 0.5)
    with pytest.raises(ValueError, match="1 weights"):
        part.step(np.array([1.0, 2.0]))
    bank = LRPart(["a"], fit_intercept=True, optimizer=OptimizerConfig())
    with pytest.raises(ValueError, match="grad_b"):
        bank.step(np.array([1.0]))


def test_optimizer_config_validates() -> None:
    with pytest.raises(ValueError):
        OptimizerConfig(learning_rate=0)
    with pytest.raises(ValueError):
        OptimizerConfig(l2=-1)
    with pytest.raises(ValueError):
        OptimizerConfig(name="lbfgs")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_two_parts_equal_one_central_part(default_credit: dict, name: str) -> None:
    """Per-coordinate optimizers: split gradients give the central trajectory."""
    train = default_credit["train"]
    X_b, X_p = default_credit["X_bank"][train], default_credit["X_platform"][train]
    y = default_credit["y"][train]
    config = OptimizerConfig(name=name)
    bank = LRPart(_names("b", 13), fit_intercept=True, optimizer=config)
    platform = LRPart(_names("p", 10), fit_intercept=False, optimizer=config)
    epochs = 3
    for epoch in range(epochs):
        for rows in batch_schedule(y.size, 4096, 42, epoch):
            z = bank.partial_logit(X_b[rows]) + platform.partial_logit(X_p[rows])
            d = taylor_residual(z, y[rows])
            bank.step(mean_gradient(X_b[rows], d), float(np.sum(d) / d.size))
            platform.step(mean_gradient(X_p[rows], d))
    central = fit_central_taylor(
        np.hstack([X_b, X_p]),
        y,
        _names("b", 13) + _names("p", 10),
        optimizer=config,
        batch_size=4096,
        seed=42,
        epochs=epochs,
    )
    np.testing.assert_allclose(central.weights[:13], bank.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(central.weights[13:], platform.weights, rtol=0, atol=1e-12)
    assert central.intercept == pytest.approx(bank.intercept, abs=1e-12)
    assert np.abs(central.weights).max() > 0.01  # it really trained


def test_central_taylor_matches_sklearn_on_default_credit(default_credit: dict) -> None:
    train, test = default_credit["train"], default_credit["test"]
    X, y = default_credit["X"], default_credit["y"]
    taylor = fit_central_taylor(
        X[train],
        y[train],
        _names("f", 23),
        optimizer=OptimizerConfig(name="adam", learning_rate=0.05, l2=0.001),
        batch_size=4096,
        seed=42,
        epochs=15,
    )
    exact = fit_sklearn_lr(X[train], y[train], l2=0.001)
    auc_taylor = auc(y[test], taylor.partial_logit(X[test]))
    auc_exact = auc(y[test], exact.decision_function(X[test]))
    assert auc_taylor >= 0.70
    assert abs(auc_taylor - auc_exact) <= 0.015


def _random_problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 3))
    y = (X @ np.array([1.0, -0.5, 0.2]) + rng.normal(size=64) > 0).astype(np.int64)
    return X, y


def _train_steps(part: LRPart, X: np.ndarray, y: np.ndarray, steps: range) -> None:
    for step in steps:
        rows = np.arange(step * 8, step * 8 + 16) % X.shape[0]
        d = taylor_residual(part.partial_logit(X[rows]), y[rows])
        part.step(mean_gradient(X[rows], d), float(np.sum(d) / d.size))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_is_bit_identical(name: str) -> None:
    X, y = _random_problem()
    config = OptimizerConfig(name=name, learning_rate=0.1, l2=0.01)
    straight = LRPart(["a", "b", "c"], fit_intercept=True, optimizer=config)
    _train_steps(straight, X, y, range(5))

    first = LRPart(["a", "b", "c"], fit_intercept=True, optimizer=config)
    _train_steps(first, X, y, range(3))
    state = first.state_dict()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    if name == "adam":
        assert {"opt.state.0.exp_avg", "opt.state.0.exp_avg_sq", "opt.state.0.step"} <= set(state)
        assert float(state["opt.state.0.step"]) == 3.0
    resumed = LRPart(["a", "b", "c"], fit_intercept=True, optimizer=config)
    resumed.load_state_dict(state)
    _train_steps(resumed, X, y, range(3, 5))
    assert np.array_equal(resumed.weights, straight.weights)
    assert resumed.intercept == straight.intercept


def test_load_state_dict_rejects_mismatched_state() -> None:
    part = LRPart(["a", "b"], fit_intercept=True, optimizer=OptimizerConfig())
    part.step(np.array([0.1, 0.2]), 0.3)
    state = part.state_dict()
    with pytest.raises(ValueError, match="3 features"):
        LRPart(["a", "b", "c"], fit_intercept=True, optimizer=OptimizerConfig()).load_state_dict(
            state
        )
    with pytest.raises(ValueError, match="intercept"):
        LRPart(["a", "b"], fit_intercept=False, optimizer=OptimizerConfig()).load_state_dict(state)
    with pytest.raises(ValueError, match="unexpected key"):
        part.load_state_dict({**state, "momentum": np.zeros(2)})


# ----------------------------------------------------------------------------- batches


def test_batch_schedule_is_deterministic_and_covers_rows() -> None:
    first = batch_schedule(1000, 128, seed=7, epoch=2)
    again = batch_schedule(1000, 128, seed=7, epoch=2)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert np.array_equal(np.sort(np.concatenate(first)), np.arange(1000))
    other_epoch = batch_schedule(1000, 128, seed=7, epoch=3)
    assert not np.array_equal(first[0], other_epoch[0])
    other_seed = batch_schedule(1000, 128, seed=8, epoch=2)
    assert not np.array_equal(first[0], other_seed[0])
    # 1000 = 7 × 128 + 104; 104 ≥ 64 stays its own batch
    assert [len(b) for b in first] == [128] * 7 + [104]


def test_batch_schedule_merges_tiny_tail_and_full_batch_keeps_order() -> None:
    assert [len(b) for b in batch_schedule(9, 4, 0, 0)] == [4, 5]  # tail 1 < 2: merged
    assert [len(b) for b in batch_schedule(10, 4, 0, 0)] == [4, 4, 2]  # tail 2 = 4/2: kept
    for size in (0, -1, 50, 80):
        (only,) = batch_schedule(50, size, 3, 1)
        assert np.array_equal(only, np.arange(50))


def test_batch_size_guard() -> None:
    check_batch_size(52, 1000, 13, 10)  # 4 × 13 = 52 rows: allowed
    check_batch_size(0, 1000, 13, 10)
    with pytest.raises(ValueError, match="at least 52 rows") as info:
        check_batch_size(40, 1000, 13, 10)
    assert "batch_size ≥ 52" in str(info.value)
    # 100 rows at 60 a batch leave a batch of 40 (≥ 30, not merged): too small
    with pytest.raises(ValueError, match="batches of 40 rows"):
        check_batch_size(60, 100, 10, 13)
    with pytest.raises(ValueError, match="only 40 training rows"):
        check_batch_size(0, 40, 13, 2)


# ----------------------------------------------------------------------------- metrics


def test_metrics_against_hand_computed_values() -> None:
    y = np.array([0, 0, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8])
    # pairs (default, non-default): (0.35,0.1) ✓ (0.35,0.4) ✗ (0.8,0.1) ✓ (0.8,0.4) ✓ → 3/4
    assert auc(y, score) == pytest.approx(0.75)
    # threshold 0.8: TPR ½, FPR 0 → KS ½ (no threshold does better)
    assert ks(y, score) == pytest.approx(0.5)
    assert gini(y, score) == pytest.approx(0.5)
    assert evaluate(y, score) == {"auc": 0.75, "ks": 0.5, "gini": 0.5, "n": 4, "positives": 2}
    fpr, tpr, thresholds = roc_points(y, score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.isinf(thresholds[0])
    population, ks_tpr, ks_fpr = ks_points(y, score)
    np.testing.assert_allclose(population, [0.0, 0.25, 0.5, 0.75, 1.0])
    assert np.max(np.abs(ks_tpr - ks_fpr)) == pytest.approx(0.5)


def test_metrics_refuse_one_class() -> None:
    with pytest.raises(ValueError, match="all 3 labels are 0"):
        auc(np.zeros(3), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="both defaults"):
        evaluate(np.ones(2), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="0 or 1"):
        ks(np.array([0, 2]), np.array([0.1, 0.2]))


# ----------------------------------------------------------------------------- preprocessing


def test_standardiser_uses_training_rows_and_round_trips() -> None:
    train = np.array([[1.0, 10.0], [3.0, 30.0]])
    scaler = Standardiser.fit(train, ["a", "b"])
    np.testing.assert_allclose(scaler.mean, [2.0, 20.0])
    np.testing.assert_allclose(scaler.scale, [1.0, 10.0])
    np.testing.assert_allclose(scaler.transform(np.array([[4.0, 0.0]])), [[2.0, -2.0]])
    again = Standardiser.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(again.mean, scaler.mean)
    np.testing.assert_array_equal(again.scale, scaler.scale)
    assert again.feature_names == ["a", "b"]


def test_standardiser_names_constant_column() -> None:
    with pytest.raises(ValueError, match="column 'b' is constant"):
        Standardiser.fit(np.array([[1.0, 5.0], [2.0, 5.0]]), ["a", "b"])


# ----------------------------------------------------------------------------- persistence


def test_save_and_load_part_resume_identically(tmp_path: Path) -> None:
    X, y = _random_problem(1)
    config = OptimizerConfig(name="adam", learning_rate=0.1)
    part = LRPart(["a", "b", "c"], fit_intercept=True, optimizer=config)
    _train_steps(part, X, y, range(3))
    scaler = Standardiser.fit(X, ["a", "b", "c"])
    entry = save_part(
        tmp_path / "bank", part, role="bank", standardiser=scaler, metadata={"epoch": 3}
    )
    assert set(entry) == {"part_id", "role", "sha256", "feature_names"}
    assert len(entry["part_id"]) == 32 and entry["role"] == "bank"
    assert entry["feature_names"] == ["a", "b", "c"]
    document = json.loads((tmp_path / "bank" / "part.json").read_text())
    assert document["sha256"] == entry["sha256"]
    with np.load(tmp_path / "bank" / "weights.npz", allow_pickle=False) as arrays:
        assert "opt.state.0.exp_avg" in arrays.files

    loaded, loaded_scaler, metadata = load_part(tmp_path / "bank")
    assert metadata == {"epoch": 3}
    assert loaded_scaler is not None and loaded_scaler.feature_names == ["a", "b", "c"]
    assert np.array_equal(loaded.weights, part.weights)
    _train_steps(part, X, y, range(3, 5))
    _train_steps(loaded, X, y, range(3, 5))
    assert np.array_equal(loaded.weights, part.weights)
    assert loaded.intercept == part.intercept


def test_load_part_refuses_changed_weights(tmp_path: Path) -> None:
    part = LRPart(["a"], fit_intercept=False, optimizer=OptimizerConfig(name="sgd"))
    save_part(tmp_path, part, role="platform", standardiser=None, metadata={})
    other = LRPart(["a"], fit_intercept=False, optimizer=OptimizerConfig(name="sgd"))
    other.step(np.array([1.0]))
    with (tmp_path / "weights.npz").open("wb") as handle:
        np.savez(handle, **other.state_dict())
    with pytest.raises(PartIntegrityError, match="weights.npz"):
        load_part(tmp_path)
