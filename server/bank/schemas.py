"""Pydantic schemas of the bank scoring API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from server.errors import ErrorBody
from server.platform.schemas import Purpose, Uscc

__all__ = [
    "BatchItemOut",
    "BatchScoreRequest",
    "BatchScoreResponse",
    "ModelOut",
    "ReasonCode",
    "ScoreOut",
    "ScoreRequest",
]


def _finite(values: dict[str, float] | None) -> dict[str, float] | None:
    if values is not None and any(v != v or v in (float("inf"), float("-inf"))
                                  for v in values.values()):
        raise ValueError("feature values must be finite numbers")
    return values


class ScoreRequest(BaseModel):
    """Score one enterprise.

    ``features`` are the bank's own model features for this applicant; when
    omitted they are read from the bank's feature store (``CREDITLAB_BANK_FEATURES``).
    """

    model_config = ConfigDict(extra="forbid")

    uscc: Uscc
    purpose: Purpose = Purpose.loan_approval
    features: Annotated[dict[str, float] | None, Field(max_length=200),
                        AfterValidator(_finite)] = None


class ReasonCode(BaseModel):
    """One adverse reason: what pushed the score down, and by how many points.

    Bank reasons name the bank's feature; platform reasons name a catalog item
    only (``P-08`` 水费信息), never a platform feature or value.
    """

    code: str
    source: Literal["bank", "platform"]
    name: str
    contribution: float = Field(description="push on the logit of default (> 0: riskier)")
    points: float = Field(description="points lost through this reason")


class ScoreOut(BaseModel):
    """A score: probability of default, points, band and the top adverse reasons."""

    uscc: str
    pd: float = Field(description="calibrated probability of default")
    logit: float = Field(description="the model's logit of default, u_b + u_p, before "
                                     "calibration")
    points: float
    band: str
    band_label: str
    reasons: list[ReasonCode]
    model_version: str
    request_id: str
    platform_request_id: str


class BatchScoreRequest(BaseModel):
    """Score up to 100 enterprises with one call to the platform."""

    model_config = ConfigDict(extra="forbid")

    requests: Annotated[list[ScoreRequest], Field(min_length=1, max_length=100)]


class BatchItemOut(BaseModel):
    """One entry of a batch, in request order: a score, or why there is none."""

    index: int
    uscc: str
    status: Literal["scored", "refused"]
    score: ScoreOut | None = None
    error: ErrorBody | None = None


class BatchScoreResponse(BaseModel):
    """Batch answer; a refused entry never carries a score."""

    request_id: str
    model_version: str
    scored: int
    refused: int
    results: list[BatchItemOut]


class ModelOut(BaseModel):
    """The served model: version, parts, scale."""

    model_version: str
    experiment: str
    bank_part_id: str
    bank_part_sha256: str
    platform_part_id: str
    platform_part_sha256: str
    bank_features: list[str]
    base_points: float
    base_odds: float
    pdo: float
