"""A cap on request bodies, so a client cannot make an API hold gigabytes in memory.

Uvicorn reads a body as the app asks for it, and FastAPI reads it whole before
validating, so without a cap a 1 GB POST costs 1 GB before its 422. The
largest legitimate request (a batch of 100 scores with 200 features each) is
well under 1 MiB. The refusal has the APIs' one error shape, and the
middleware sits inside the audit middleware so the refused request is
audited like any other.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "BodyLimitMiddleware"]

MAX_BODY_BYTES = 1 << 20


class BodyLimitMiddleware:
    """Answer 413 ``body_too_large`` to a body over ``max_bytes``, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        # A streamed body (no Content-Length) is counted as it arrives; past the cap
        # the app is told the client left, and whatever it answers is replaced by the 413.
        seen, too_large, refused = 0, False, False

        async def counted() -> Message:
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal refused
            if not too_large:
                await send(message)
            elif not refused:
                refused = True
                await self._refuse(scope, send)

        await self.app(scope, counted, watched)
        if too_large and not refused:
            await self._refuse(scope, send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        state = scope.setdefault("state", {})
        audit = state.get("audit")
        if audit is not None:
            audit.reason = "body_too_large"
        body = json.dumps({"error": {
            "code": "body_too_large",
            "message": f"the request body is larger than {self.max_bytes:,} bytes; send "
                       "smaller batches",
            "request_id": str(state.get("request_id", ""))}}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
