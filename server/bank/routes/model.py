"""``GET /v1/model``: which model the bank serves, so a loan system can record it."""

from __future__ import annotations

from fastapi import APIRouter

from server.bank.deps import ClientDep, StateDep
from server.bank.schemas import ModelOut

router = APIRouter(tags=["model"])


@router.get("/v1/model", response_model=ModelOut)
async def model_info(client: ClientDep, state: StateDep) -> ModelOut:
    """Model version, part ids and hashes, the bank's feature names and the points scale."""
    return state.model.info()
