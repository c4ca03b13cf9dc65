"""Scoring: ``POST /v1/scores`` and ``POST /v1/scores/batch`` (federated inference, §4.4).

The bank computes its half ``u_b`` from its own features, asks the platform
for ``u_p`` of the same enterprise (which the platform gives only under an
authorization of this bank), adds them, calibrates and scales. There is no
path that scores with ``u_b`` alone: without the platform's half the answer
is an error, for one enterprise or for one entry of a batch.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import numpy as np
from fastapi import APIRouter, Request

from server.bank.deps import BankState, ClientDep, StateDep
from server.bank.schemas import (
    BatchItemOut,
    BatchScoreRequest,
    BatchScoreResponse,
    ScoreOut,
    ScoreRequest,
)
from server.errors import ApiError, ErrorBody
from server.platform.schemas import PartialScoreOut, PartialScoreRefusal

router = APIRouter(tags=["scores"])

#: HTTP status of a platform refusal of one subject.
_REFUSAL_STATUS = {"subject_not_found": 404}


def _bank_row(state: BankState, request: ScoreRequest) -> np.ndarray:
    """The applicant's bank features, or a 404/422 saying what to send."""
    try:
        row = state.model.bank_row(request.uscc, request.features)
    except ValueError as exc:
        raise ApiError(422, "bad_features", f"{exc}; see GET /v1/model for the names") from exc
    if row is None:
        raise ApiError(404, "customer_not_found", "the bank's feature store has no row for this "
                       "enterprise; send its features in the request")
    return row


def _refusal(refusal: PartialScoreRefusal) -> ApiError:
    return ApiError(_REFUSAL_STATUS.get(refusal.code, 403), refusal.code,
                    f"the platform gave no partial score: {refusal.message}; no score was made")


def _score_out(state: BankState, request_id: str, platform_request_id: str, uscc: str,
               row: np.ndarray, partial: PartialScoreOut) -> ScoreOut:
    combined = state.model.combine(row, partial.partial_logit,
                                   {c.item: c.contribution for c in partial.items})
    return ScoreOut(uscc=uscc, pd=combined.pd, logit=combined.logit, points=combined.points,
                    band=combined.band, band_label=combined.band_label,
                    reasons=combined.reasons, model_version=state.model.version,
                    request_id=request_id, platform_request_id=platform_request_id)


@router.post("/v1/scores", response_model=ScoreOut)
async def score(body: ScoreRequest, client: ClientDep, state: StateDep,
                request: Request) -> ScoreOut:
    """Probability of default, points, band and reasons for one enterprise."""
    row = _bank_row(state, body)
    answer = await state.platform.partial_scores([body.uscc], body.purpose.value)
    if answer.refused:
        raise _refusal(answer.refused[0])
    return _score_out(state, request.state.request_id, answer.request_id, body.uscc, row,
                      answer.scores[0])


@router.post("/v1/scores/batch", response_model=BatchScoreResponse)
async def score_batch(body: BatchScoreRequest, client: ClientDep, state: StateDep,
                      request: Request) -> BatchScoreResponse:
    """Score up to 100 enterprises; one platform call per purpose in the batch.

    Entries the platform refuses (or without bank features) come back
    ``refused`` with the reason; if the platform is unreachable the whole
    batch is a 503 — never a batch of half-made scores.
    """
    request_id = request.state.request_id
    results: list[BatchItemOut | None] = [None] * len(body.requests)
    rows: dict[int, np.ndarray] = {}
    by_purpose: dict[str, list[int]] = defaultdict(list)
    for index, entry in enumerate(body.requests):
        try:
            rows[index] = _bank_row(state, entry)
        except ApiError as exc:
            results[index] = _refused(index, entry.uscc, exc, request_id)
            continue
        by_purpose[entry.purpose.value].append(index)
    purposes = list(by_purpose)
    answers = await asyncio.gather(*(
        state.platform.partial_scores(
            list(dict.fromkeys(body.requests[i].uscc for i in by_purpose[p])), p)
        for p in purposes))
    for purpose, answer in zip(purposes, answers, strict=True):
        scored = {s.uscc: s for s in answer.scores}
        refused = {r.uscc: r for r in answer.refused}
        for index in by_purpose[purpose]:
            uscc = body.requests[index].uscc
            if uscc in scored:
                results[index] = BatchItemOut(index=index, uscc=uscc, status="scored", score=(
                    _score_out(state, request_id, answer.request_id, uscc, rows[index],
                               scored[uscc])))
            else:
                results[index] = _refused(index, uscc, _refusal(refused[uscc]), request_id)
    done = [r for r in results if r is not None]
    n_scored = sum(r.status == "scored" for r in done)
    return BatchScoreResponse(request_id=request_id, model_version=state.model.version,
                              scored=n_scored, refused=len(done) - n_scored, results=done)


def _refused(index: int, uscc: str, exc: ApiError, request_id: str) -> BatchItemOut:
    return BatchItemOut(index=index, uscc=uscc, status="refused",
                        error=ErrorBody(code=exc.code, message=exc.message,
                                        request_id=request_id))


