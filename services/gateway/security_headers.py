"""Response headers that tell browsers to treat the API's answers as data, never as pages.

The gateway is the only public door, so it sets them on every answer (its own and forwarded
ones alike). ``/docs`` and ``/redoc`` are HTML pages that load Swagger UI or ReDoc from a CDN
with inline scripts, so they get no ``Content-Security-Policy`` (the API's one would blank them).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API serves JSON only: no scripts, styles, frames or anything else may load from it.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOC_PAGES = frozenset({"/docs", "/redoc"})

_ALWAYS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeadersMiddleware:
    """Add the headers above; an answer's own ``Cache-Control`` is kept, else ``no-store``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with_csp = scope["path"] not in DOC_PAGES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(k, v) for k, v in _ALWAYS if k not in present]
                if b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if with_csp and b"content-security-policy" not in present:
                    extra.append((b"content-security-policy", API_CSP.encode()))
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
