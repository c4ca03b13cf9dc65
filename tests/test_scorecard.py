"""Scorecard scaling, calibration and bands (models.scorecard)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.scorecard import (
    DEFAULT_BANDS,
    Calibration,
    RiskBand,
    ScorecardScaling,
    band_of,
    check_bands,
    sigmoid,
)


def test_default_scale_anchors() -> None:
    scale = ScorecardScaling()
    assert scale.factor == pytest.approx(20 / math.log(2))
    assert scale.factor == pytest.approx(28.853900817779268)
    assert scale.offset == pytest.approx(600 - 28.853900817779268 * math.log(50))
    assert scale.points_from_pd(1 / 51) == pytest.approx(600.0)  # odds 50:1
    assert scale.points_from_pd(1 / 101) == pytest.approx(620.0)  # odds 100:1
    assert scale.points_from_pd(1 / 26) == pytest.approx(580.0)  # odds 25:1
    assert scale.points_from_pd(0.5) == pytest.approx(scale.offset)


def test_points_from_logit_agree_with_points_from_pd() -> None:
    scale = ScorecardScaling(base_points=500, base_odds=20, pdo=40)
    for z in (-6.0, -1.5, 0.0, 0.7, 4.0):
        assert scale.points_from_logit(z) == pytest.approx(scale.points_from_pd(sigmoid(z)))
        assert scale.pd_from_points(scale.points_from_logit(z)) == pytest.approx(sigmoid(z))
    assert scale.points_from_logit(1.0) - scale.points_from_logit(0.0) == pytest.approx(
        -scale.points_per_logit())


def test_scale_and_pd_are_checked() -> None:
    with pytest.raises(ValueError):
        ScorecardScaling(pdo=0)
    with pytest.raises(ValueError):
        ScorecardScaling(base_odds=-1)
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        ScorecardScaling().points_from_pd(1.0)


def test_sigmoid_is_stable_at_the_extremes() -> None:
    values = sigmoid(np.array([-800.0, -30.0, 0.0, 30.0, 800.0]))
    assert values[0] == 0.0 and values[-1] == 1.0 and values[2] == 0.5
    assert values[1] == pytest.approx(math.exp(-30) / (1 + math.exp(-30)))
    assert sigmoid(2.0) == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_calibration_is_affine_and_keeps_the_order() -> None:
    assert Calibration().apply(1.25) == 1.25
    prior = Calibration(intercept=math.log(0.02 / 0.98) - math.log(0.2 / 0.8))
    assert sigmoid(prior.apply(math.log(0.2 / 0.8))) == pytest.approx(0.02)
    assert Calibration(slope=2, intercept=-1).apply(3.0) == 5.0
    with pytest.raises(ValueError):
        Calibration(slope=-1)


@pytest.mark.parametrize(("points", "band"), [
    (700, "A"), (640, "A"), (639.99, "B"), (600, "B"), (560, "C"), (521, "D"), (519.5, "E"),
    (-1e9, "E")])
def test_default_bands(points: float, band: str) -> None:
    assert band_of(points).name == band
    assert band_of(points, DEFAULT_BANDS).label


def test_band_tables_are_checked() -> None:
    with pytest.raises(ValueError, match="best first"):
        check_bands([RiskBand(name="A", min_points=600), RiskBand(name="B", min_points=650),
                     RiskBand(name="C", min_points=float("-inf"))])
    with pytest.raises(ValueError, match="-inf"):
        check_bands([RiskBand(name="A", min_points=600), RiskBand(name="B", min_points=500)])
    assert check_bands(DEFAULT_BANDS) == DEFAULT_BANDS
