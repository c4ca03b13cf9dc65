"""Scorecard scaling: from a logit of default to a probability, points and a risk band.

Why a separate module: a loan system and a risk committee speak in points
and bands, not logits. The arithmetic that turns a model's logit into those
must be one function used by the bank's scoring API, reports and any
offline re-scoring, so a served score and an offline score of the same
model can never differ by a convention.

The math
--------
A CreditLab model outputs ``z``, the logit of the probability of default
(label 1 = default): ``PD = sigmoid(z)``. Scorecards are scaled on the odds of
being *good*, ``odds = (1 − PD) / PD = exp(−z)``::

    points = offset + factor · ln(odds)
    factor = pdo / ln 2                       (pdo: points to double the odds)
    offset = base_points − factor · ln(base_odds)

With the defaults (600 points at odds 50:1, 20 points to double the odds)
``factor ≈ 28.8539`` and ``offset ≈ 487.1229``: 600 points is a PD of 1/51 ≈
1.96 %, 620 points a PD of 1/101. Points fall linearly in ``z``:
``points = offset − factor · z``, so a feature's contribution to ``z`` is a
contribution of ``−factor ·`` that many points — what reason codes report.

Calibration
-----------
A model trained on a sample whose default rate differs from the portfolio's
ranks well but is off in level. :class:`Calibration` maps the raw logit to a
calibrated one, ``z' = intercept + slope · z`` (Platt scaling; with
``slope = 1`` it is the prior correction ``intercept = logit(π_portfolio) −
logit(π_sample)``). The identity is the default, so an uncalibrated model is
served exactly as it was evaluated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "DEFAULT_BANDS",
    "Calibration",
    "RiskBand",
    "ScorecardScaling",
    "band_of",
    "check_bands",
    "sigmoid",
]


def sigmoid(z: float | np.ndarray) -> float | np.ndarray:
    """Numerically stable logistic function (no overflow warning for large |z|)."""
    arr = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(arr))
    out = np.where(arr >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return float(out) if out.ndim == 0 else out


class Calibration(BaseModel):
    """Affine map of the model's logit to a calibrated logit, ``intercept + slope · z``.

    Parameters
    ----------
    slope : float, default 1.0
        Must be > 0: a calibration may stretch the scale but never reverse the
        ranking the model was validated on.
    intercept : float, default 0.0
        Shift in logit units (prior correction for a different default rate).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    slope: float = Field(default=1.0, gt=0)
    intercept: float = 0.0

    def apply(self, z: float) -> float:
        """The calibrated logit."""
        return self.intercept + self.slope * float(z)


class ScorecardScaling(BaseModel):
    """Points scale: ``base_points`` at odds ``base_odds``:1 (good:bad), ``pdo`` to double.

    Parameters
    ----------
    base_points : float, default 600
        Points at the reference odds.
    base_odds : float, default 50
        Reference odds of good to bad (50 means 50:1, a PD of 1/51), > 0.
    pdo : float, default 20
        Points to double the odds, > 0 (more points always means less risk).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_points: float = 600.0
    base_odds: float = Field(default=50.0, gt=0)
    pdo: float = Field(default=20.0, gt=0)

    @property
    def factor(self) -> float:
        """Points per unit of ln(odds): ``pdo / ln 2``."""
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        """Points at odds 1:1: ``base_points − factor · ln(base_odds)``."""
        return self.base_points - self.factor * math.log(self.base_odds)

    def points_from_logit(self, z: float) -> float:
        """Points for a logit of default ``z`` (``ln odds_good = −z``)."""
        return self.offset - self.factor * float(z)

    def points_from_pd(self, pd: float) -> float:
        """Points for a probability of default in (0, 1)."""
        if not 0.0 < pd < 1.0:
            raise ValueError(f"a probability of default must be in (0, 1), got {pd}")
        return self.offset + self.factor * math.log((1.0 - pd) / pd)

    def pd_from_points(self, points: float) -> float:
        """Inverse of :meth:`points_from_pd`: the PD a score stands for."""
        return float(sigmoid((self.offset - float(points)) / self.factor))

    def points_per_logit(self) -> float:
        """Points lost per +1 of logit of default (for reason codes): ``factor``."""
        return self.factor


class RiskBand(BaseModel):
    """One band of the scale: scores ``≥ min_points`` (and below the next band up)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=8)
    min_points: float
    label: str = ""


#: Default bands on the default scale (600 at 50:1, pdo 20), best first. Each band
#: is 40 points wide, i.e. a factor of 4 in the odds:
#: A ≥ 640 (PD ≤ 0.50 %), B ≥ 600 (≤ 1.96 %), C ≥ 560 (≤ 7.4 %), D ≥ 520 (≤ 24 %), E below.
DEFAULT_BANDS: tuple[RiskBand, ...] = (
    RiskBand(name="A", min_points=640, label="低风险"),
    RiskBand(name="B", min_points=600, label="较低风险"),
    RiskBand(name="C", min_points=560, label="中等风险"),
    RiskBand(name="D", min_points=520, label="较高风险"),
    RiskBand(name="E", min_points=float("-inf"), label="高风险"),
)


def check_bands(bands: Sequence[RiskBand]) -> tuple[RiskBand, ...]:
    """Validate a band table: best first, strictly decreasing cut-offs, a catch-all last.

    Raises
    ------
    ValueError
        Naming the first band out of order, or saying the last band must start
        at ``-inf`` so that every score falls in a band.
    """
    bands = tuple(bands)
    if not bands:
        raise ValueError("at least one risk band is needed")
    for upper, lower in zip(bands, bands[1:], strict=False):
        if not lower.min_points < upper.min_points:
            raise ValueError(
                f"band {lower.name!r} starts at {lower.min_points}, not below band "
                f"{upper.name!r} at {upper.min_points}; list bands best first"
            )
    if bands[-1].min_points != float("-inf"):
        raise ValueError(
            f"the last band {bands[-1].name!r} must have min_points = -inf so every score "
            "has a band"
        )
    return bands


def band_of(points: float, bands: Sequence[RiskBand] = DEFAULT_BANDS) -> RiskBand:
    """The band a score falls in (bands as checked by :func:`check_bands`)."""
    for band in bands:
        if points >= band.min_points:
            return band
    return bands[-1]

