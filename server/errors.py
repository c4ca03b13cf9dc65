"""Errors both apps answer with, in one JSON shape.

Why one exception type with a stable ``code``: a loan system branches on
the code (retry on ``platform_unavailable``, ask the customer for a new
authorization on ``authorization_expired``), a person reads the message,
and the audit log records the code. The body is always::

    {"error": {"code": "...", "message": "...", "request_id": "..."}}

Messages say what was wrong and what to do; they never quote a key, an id
number, an address or a feature value.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from lab.errors import CreditLabError

__all__ = ["ApiError", "ErrorBody", "ErrorResponse", "install_error_handlers"]


class ApiError(CreditLabError):
    """A refusal or failure with an HTTP status, a stable code and a remedy.

    Parameters
    ----------
    status : int
        HTTP status (401, 403, 404, 409, 422, 502, 503 …).
    code : str
        Stable machine-readable reason, e.g. ``"revoked_key"``.
    message : str
        What was wrong and what to do, without personal data.
    headers : dict, optional
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class ErrorBody(BaseModel):
    """The error itself."""

    code: str
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    """Every non-2xx answer of both APIs."""

    error: ErrorBody


def _request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", ""))


def _body(request: Request, code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message, "request_id": _request_id(request)}}


def _note(request: Request, code: str) -> None:
    """Let the audit record know why the request was refused."""
    audit = getattr(request.state, "audit", None)
    if audit is not None and audit.reason is None:
        audit.reason = code


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    _note(request, exc.code)
    return JSONResponse(_body(request, exc.code, exc.message), status_code=exc.status,
                        headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    _note(request, code)
    return JSONResponse(_body(request, code, str(exc.detail)), status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()))
        problems.append(f"{where}: {error.get('msg', 'invalid')}")
    _note(request, "invalid_request")
    message = "the request is not valid: " + "; ".join(problems) + ". See /docs for the schema"
    return JSONResponse(_body(request, "invalid_request", message), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one JSON shape (input values are never echoed)."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
