"""Partial scores for federated inference (DESIGN §4.4).

A bank sends a model id and some USCCs. The model must be one the platform
serves to *that bank* (``CREDITLAB_MODELS`` binds each part to the bank that
trained it; another bank's id is answered as unknown). For each USCC it checks
that a live authorization of *that bank*, for that subject and purpose,
allows scoring, and only then computes ``u_p``. The rest are listed as
refused with the reason — never scored, never guessed. Each used catalog
item is recorded for its providers' usage feedback.
"""

from __future__ import annotations

from fastapi import APIRouter

from server.errors import ApiError
from server.platform.deps import (
    REFUSAL_TEXT,
    AuditDep,
    BankCaller,
    ScorerDep,
    SessionDep,
    find_consent,
)
from server.platform.schemas import (
    ItemContribution,
    PartialScoreOut,
    PartialScoreRefusal,
    PartialScoreRequest,
    PartialScoresOut,
)

router = APIRouter(tags=["federated inference"])


@router.post("/v1/partial-scores", response_model=PartialScoresOut)
async def partial_scores(body: PartialScoreRequest, caller: BankCaller, session: SessionDep,
                         scorer: ScorerDep, audit: AuditDep) -> PartialScoresOut:
    """The platform's part ``u_p`` of the logit for each authorized USCC."""
    audit.action = "partial_scores"
    audit.purpose = body.purpose.value
    subjects = list(dict.fromkeys(body.usccs))
    audit.subjects = subjects
    part = scorer.part_for(body.model_id, caller.name)
    if part is None:
        raise ApiError(404, "model_not_found", "the platform serves no model with this id to "
                       "this bank; use the platform part id from the run's manifest.json, and "
                       "ask the platform operator to serve that part to your institution")
    scores: list[PartialScoreOut] = []
    refused: list[PartialScoreRefusal] = []
    for uscc in subjects:
        consent = find_consent(session, caller.institution_id, uscc, body.purpose.value)
        authorization = consent.scoring()
        code = consent.refusal or (None if authorization else "not_authorized_for_scoring")
        if code is None:
            assert authorization is not None
            result = scorer.score(body.model_id, uscc)
            if result is None:
                refused.append(PartialScoreRefusal(
                    uscc=uscc, code="subject_not_found",
                    message="the platform holds no data on this subject, so it has no "
                            "partial score; the subject cannot be scored jointly"))
                continue
            scores.append(PartialScoreOut(
                uscc=uscc, partial_logit=result.partial_logit, authorization_id=authorization.id,
                items=[ItemContribution(item=i, contribution=c)
                       for i, c in sorted(result.item_contributions.items())]))
            audit.authorization_ids.append(authorization.id)
            for item in scorer.items_of(body.model_id):
                audit.use(item, masked=True)
        else:
            refused.append(PartialScoreRefusal(uscc=uscc, code=code, message=REFUSAL_TEXT[code]))
    if refused:
        audit.reason = "refused:" + ",".join(sorted({r.code for r in refused}))[:31]
    return PartialScoresOut(model_id=part.part_id, model_sha256=part.sha256, scores=scores,
                            refused=refused, request_id=audit.request_id)
