"""Plots for a run's MLflow record: ROC, KS and the loss per epoch.

They are drawn from aggregates only (curve points the bank returned, losses
per epoch), never from per-row scores.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402


def roc_plot(curve: list[list[float]], auc: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    fpr, tpr = zip(*curve, strict=True)
    ax.plot(fpr, tpr, label=f"vertical LR (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test split")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def ks_plot(curve: list[list[float]], ks: float, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    population, tpr, fpr = zip(*curve, strict=True)
    ax.plot(population, tpr, label="defaults (cumulative)")
    ax.plot(population, fpr, label="non-defaults (cumulative)")
    ax.set(xlabel="share of applicants, highest risk first", ylabel="cumulative share",
           title=f"KS, test split (KS {ks:.3f})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loss_plot(history: list[dict[str, float]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    epochs = [h["epoch"] + 1 for h in history]
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train")
    ax.plot(epochs, [h["validation_loss"] for h in history], marker="o", label="validation")
    ax.set(xlabel="epoch", ylabel="Taylor loss (decrypted by the bank)", title="Loss per epoch")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
