"""The bank's client of the platform's ``POST /v1/partial-scores``.

Every way the call can fail maps to one clear answer for the loan system,
and none of them produces a score:

- the platform cannot be reached, times out or answers 5xx → 503
  ``platform_unavailable`` with ``Retry-After``;
- the platform refuses the bank itself (key, role) or does not know the
  model → 502 with a code that says what the bank's operator must fix;
- the platform answers with another model part than the one the bank part
  was trained with → 502 ``model_mismatch``.

Refusals of single subjects (no authorization …) come back inside a 200 and
are the caller's to turn into per-subject errors.
"""

from __future__ import annotations

import logging

import httpx
from pydantic import ValidationError

from server.errors import ApiError
from server.platform.schemas import PartialScoreRequest, PartialScoresOut

__all__ = ["PlatformClient"]

logger = logging.getLogger("creditlab.bank")


class PlatformClient:
    """Calls the platform with the bank's key over one pooled HTTP client.

    Parameters
    ----------
    client : httpx.AsyncClient
        Base URL set to the platform; in tests an ASGI transport to the real
        platform app, in production a keep-alive pool to it.
    api_key : str
        The bank's platform key (sent as ``X-API-Key``; never logged).
    model_id, model_sha256 : str
        The platform part the bank part pairs with.
    retry_after_s : int
        ``Retry-After`` hint when the platform is unavailable.
    """

    def __init__(self, client: httpx.AsyncClient, api_key: str, *, model_id: str,
                 model_sha256: str, retry_after_s: int) -> None:
        self.client = client
        self._headers = {"X-API-Key": api_key}
        self.model_id = model_id
        self.model_sha256 = model_sha256
        self.retry_after_s = retry_after_s

    def _unavailable(self, why: str) -> ApiError:
        logger.warning("platform unavailable: %s", why)
        return ApiError(503, "platform_unavailable",
                        "the platform could not be reached for its part of the score, so no "
                        f"score was made; retry after {self.retry_after_s} s",
                        {"Retry-After": str(self.retry_after_s)})

    async def partial_scores(self, usccs: list[str], purpose: str) -> PartialScoresOut:
        """The platform's answer for ``usccs`` (scores and per-subject refusals)."""
        body = PartialScoreRequest(model_id=self.model_id, usccs=usccs, purpose=purpose)
        try:
            response = await self.client.post("/v1/partial-scores", headers=self._headers,
                                              content=body.model_dump_json())
        except httpx.TimeoutException as exc:
            raise self._unavailable(f"timeout ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise self._unavailable(f"transport error ({type(exc).__name__})") from exc
        status = response.status_code
        if status >= 500:
            raise self._unavailable(f"HTTP {status}")
        if status in (401, 403):
            raise ApiError(502, "platform_refused_bank",
                           "the platform refused this bank's credentials; the bank's operator "
                           "must check CREDITLAB_BANK_PLATFORM_API_KEY")
        if status == 404 and _error_code(response) != "model_not_found":
            raise ApiError(502, "platform_url_wrong",
                           "POST /v1/partial-scores was not found at the platform URL (it is not "
                           "a CreditLab platform API); the bank's operator must check "
                           "CREDITLAB_BANK_PLATFORM_URL (the base URL, without /v1)")
        if status == 404:
            raise ApiError(502, "model_mismatch",
                           "the platform does not serve this bank the platform part its model "
                           "was trained with; deploy the same run's parts on both sides, with "
                           "this bank's institution named for the part in CREDITLAB_MODELS")
        if status != 200:
            raise ApiError(502, "platform_error",
                           f"the platform answered HTTP {status}; no score was made")
        try:
            answer = PartialScoresOut.model_validate_json(response.content)
        except ValidationError as exc:
            raise ApiError(502, "platform_error", "the platform's answer was malformed; no "
                           "score was made") from exc
        if answer.model_id != self.model_id or answer.model_sha256 != self.model_sha256:
            raise ApiError(502, "model_mismatch",
                           "the platform scored with another model part than the one this "
                           "bank model was trained with; no score was made")
        return answer


def _error_code(response: httpx.Response) -> str | None:
    """The platform's stable error code in a JSON error body, if the answer has one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None
