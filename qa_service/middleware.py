"""Per-request plumbing as plain ASGI: request id, JSON access log, metrics, body-size limit,
content type check and a time limit. Plain ASGI so that the body limit also holds for
chunked uploads that carry no Content-Length."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

access_log = logging.getLogger("qa_service.access")


BODY_METHODS = ("POST", "PUT", "PATCH")


class BodyTooLarge(Exception):
    pass


async def _buffered(receive, limit: int):
    """Read the whole body here, refusing it past ``limit`` bytes, and replay it to the app.

    Counting while the app reads would not do: the framework turns an error raised inside
    its body parsing into a generic 400, and a chunked upload carries no Content-Length."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return _replay([message])
        size += len(message.get("body", b""))
        if size > limit:
            raise BodyTooLarge
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}])


def _replay(messages: list[dict]):
    async def receive():
        if messages:
            return messages.pop(0)
        return {"type": "http.disconnect"}

    return receive


async def _send_json(send, status: int, detail: str, request_id: str) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestMiddleware:
    def __init__(self, app, service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self.service.settings
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid
        method, path = scope["method"], scope["path"]
        start = time.perf_counter()
        status = {"code": 500, "started": False}

        async def send_wrapper(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        limit = settings.max_body_bytes
        try:
            problem = self._reject(method, headers, limit)
            if problem:
                await _send_json(send_wrapper, problem[0], problem[1], rid)
                return

            async def handle() -> None:
                body = await _buffered(receive, limit) if method in BODY_METHODS else receive
                await self.app(scope, body, send_wrapper)

            await asyncio.wait_for(handle(), settings.request_timeout_s)
        except BodyTooLarge:
            if not status["started"]:
                await _send_json(send_wrapper, 413, f"request body over {limit} bytes", rid)
        except TimeoutError:
            if not status["started"]:
                await _send_json(
                    send_wrapper, 504, f"request took over {settings.request_timeout_s} s", rid
                )
        finally:
            seconds = time.perf_counter() - start
            self.service.metrics.observe(path, method, status["code"], seconds)
            access_log.info(
                json.dumps(
                    {
                        "request_id": rid,
                        "method": method,
                        "path": path,
                        "status": status["code"],
                        "latency_ms": round(seconds * 1000, 2),
                    }
                )
            )

    @staticmethod
    def _reject(method: str, headers: dict[str, str], limit: int) -> tuple[int, str] | None:
        if method not in BODY_METHODS:
            return None
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return 413, f"request body over {limit} bytes"
        ctype = headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return 415, "Content-Type must be application/json"
        return None
