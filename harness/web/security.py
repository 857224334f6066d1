"""What keeps the workspace safe: CSRF tokens, sign-in rate limits, security headers, a body size cap.

Sessions are Starlette's signed cookies (itsdangerous), HttpOnly and SameSite=Strict; they hold
only the user name and the CSRF token, and the user's role is read from the registry on every
request, so a disabled account or a changed role takes effect at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_FIELD = "csrf"
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str) or len(token) < 32:
        token = session[CSRF_FIELD] = new_token()
    return token


def csrf_ok(session: dict[str, Any], given: object) -> bool:
    expected = session.get(CSRF_FIELD)
    return (isinstance(expected, str) and isinstance(given, str) and len(expected) >= 32
            and hmac.compare_digest(expected.encode(), given.encode()))


@dataclass
class LoginLimiter:
    """At most ``attempts`` failed sign-ins per client address and per user name in ``window`` seconds."""

    attempts: int = 5
    window: float = 300.0
    failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self.failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, client: str, username: str, now: float | None = None) -> int:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic() if now is None else now
        waits = [int(q[0] + self.window - now) + 1 for key in (f"ip:{client}", f"user:{username}")
                 if len(q := self._recent(key, now)) >= self.attempts]
        return max(waits, default=0)

    def failed(self, client: str, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for key in (f"ip:{client}", f"user:{username}"):
            self._recent(key, now).append(now)
        if len(self.failures) > 100_000:  # a flood of names: forget the oldest rather than grow without bound
            for key in list(self.failures)[:50_000]:
                del self.failures[key]

    def succeeded(self, username: str) -> None:
        self.failures.pop(f"user:{username}", None)


class SecurityHeaders:
    """Headers on every response; a route may set its own Content-Security-Policy (the report page)."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app, self.https = app, https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = {b"content-security-policy": PAGE_CSP.encode(), b"x-content-type-options": b"nosniff",
                         b"x-frame-options": b"DENY", b"referrer-policy": b"no-referrer",
                         b"cross-origin-opener-policy": b"same-origin",
                         b"permissions-policy": b"camera=(), microphone=(), geolocation=()",
                         b"cache-control": b"no-store"}
                if self.https:
                    extra[b"strict-transport-security"] = b"max-age=31536000"
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, sending)


class BodyLimit:
    """Refuse a request body past ``limit`` bytes with 413, whether or not it declares its length."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await _too_large(send, self.limit)
            return
        seen = 0

        async def receiving() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, receiving, send)
        except BodyTooLarge:
            await _too_large(send, self.limit)


class BodyTooLarge(Exception):
    pass


async def _too_large(send: Send, limit: int) -> None:
    body = f"The request is larger than {limit:,} bytes; nothing was changed.".encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
