"""Forwarding to the services behind the gateway: which upstream serves a path, and the hop.

One hop: pick the upstream and its route timeout, ask the upstream's circuit breaker, send with the
request body streamed, retry connect failures of idempotent requests with backoff, then stream the
answer back. Hop-by-hop headers (RFC 9110 §7.6.1, including those the ``Connection`` header names)
are dropped both ways; ``X-Request-ID`` and W3C ``traceparent`` travel upstream. Failures become
problem details: timeout 504, unreachable or open circuit 503, broken answer 502.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from services.gateway.circuit import CircuitBreaker
from services.gateway.clients import (
    RawHeaders,
    Timeouts,
    UpstreamBroken,
    UpstreamClient,
    UpstreamConnectError,
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
)
from services.shared.caller import CONSUMER_HEADER, SCOPES_HEADER
from services.shared.problems import problem_response
from services.shared.request_context import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)

# Paths the matching service answers; everything else under /v1 belongs to the catalog.
_MATCHING_PATHS = re.compile(
    r"^/v1/(match|index|reports/coverage|demands/[^/]+/matches"
    r"|(platforms|manufacturers)/[^/]+/similar)/?$"
)
_IMPORT_PATH = re.compile(r"^/v1/import/?$")
_REPORT_PATHS = re.compile(r"^/v1/reports/[^/]+/?$")
# The matching paths that rank (``/v1/index`` only reports status).
_RANKING_PATHS = re.compile(
    r"^/v1/(match|demands/[^/]+/matches|(platforms|manufacturers)/[^/]+/similar)/?$"
)

# RFC 9110 §7.6.1 hop-by-hop fields (and the legacy Proxy-Connection). Headers that the
# ``Connection`` field names are hop-by-hop too and are added per message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "proxy-connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_HOP_BY_HOP_BYTES = frozenset(name.encode() for name in HOP_BY_HOP)
# Request fields the gateway sets itself or keeps: the client library writes Host; the caller's
# key stays here; Expect is answered by the gateway's own server.
_NOT_FORWARDED_UP = _HOP_BY_HOP_BYTES | {
    b"host",
    b"x-api-key",
    # Set by the gateway from the verified key; a caller's own value is never passed on: the
    # services behind decide whose demands a request may see by them.
    CONSUMER_HEADER.lower().encode(),
    SCOPES_HEADER.lower().encode(),
    b"expect",
    REQUEST_ID_HEADER.lower().encode(),
    b"traceparent",
    b"tracestate",
}
# Response fields the gateway's server writes itself (and the request ID, which it echoes).
_NOT_FORWARDED_DOWN = _HOP_BY_HOP_BYTES | {b"date", b"server", REQUEST_ID_HEADER.lower().encode()}

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Answers up to this size (with a Content-Length) are read whole and sent in one message; larger
# or open-ended ones are streamed chunk by chunk.
_SMALL_BODY = 64 * 1024


def upstream_for(path: str) -> str:
    return "matching" if _MATCHING_PATHS.match(path) else "catalog"


def costly_route(path: str) -> Literal["import", "match"] | None:
    """Which of the expensive kinds of route ``path`` is, if any (for the rate limit's cost)."""
    if _IMPORT_PATH.match(path):
        return "import"
    if _RANKING_PATHS.match(path):
        return "match"
    return None


@dataclass(frozen=True)
class RouteTimeouts:
    """Seconds each kind of route gives its upstream to answer."""

    default: Timeouts
    import_: Timeouts
    matching: Timeouts
    # A report ranks every open demand once per index version: the first one after a change
    # may take far longer than a single match.
    report: Timeouts | None = None

    def for_path(self, path: str) -> Timeouts:
        if _IMPORT_PATH.match(path):
            return self.import_
        if self.report is not None and _REPORT_PATHS.match(path):
            return self.report
        if _MATCHING_PATHS.match(path):
            return self.matching
        return self.default


@dataclass
class Upstream:
    name: str
    base_url: str
    client: UpstreamClient
    circuit: CircuitBreaker
    retries: int = 2
    backoff_seconds: float = 0.05

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: ~base, ~2x base, ~4x base, …"""
        return self.backoff_seconds * (2**attempt) * random.uniform(0.5, 1.0)


# --- W3C trace context ----------------------------------------------------------------------

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """The caller's (trace id, flags) when ``value`` is a valid ``traceparent``, else ``None``."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace_id == _ZERO_TRACE:
        return None
    if span_id == _ZERO_SPAN:
        return None
    return trace_id, flags


def next_traceparent(incoming: str | None) -> tuple[str, bool]:
    """The ``traceparent`` to send upstream, and whether it continues the caller's trace.

    The gateway is a hop of its own: it keeps the caller's trace id and flags, with a new span id.
    Without a valid incoming one it starts a trace (sampled).
    """
    parsed = parse_traceparent(incoming)
    if parsed is None:
        return f"00-{_random_hex(128)}-{_random_hex(64)}-01", False
    trace_id, flags = parsed
    return f"00-{trace_id}-{_random_hex(64)}-{flags}", True


def _random_hex(bits: int) -> str:
    # Trace and span ids need to be unique, not secret: no system call per id (W3C §3.2.2.3
    # asks for randomness, not cryptographic strength). Never all zeros, which means "invalid".
    value = random.getrandbits(bits) or 1
    return f"{value:0{bits // 4}x}"


# --- headers --------------------------------------------------------------------------------


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)


def upstream_request_headers(
    headers: RawHeaders, request_id: str
) -> tuple[list[tuple[str, str]], int | None]:
    """Headers to send upstream, and the body's length: 0 for none, ``None`` when not declared."""
    named = _connection_tokens(headers)
    drop = _NOT_FORWARDED_UP | named if named else _NOT_FORWARDED_UP
    out: list[tuple[str, str]] = []
    length: int | None = 0
    incoming_traces: list[str] = []
    incoming_state: list[str] = []
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == b"content-length":
            length = int(raw_value) if raw_value.strip().isdigit() else None
        elif name == b"transfer-encoding":
            length = None
        elif name == b"traceparent":
            incoming_traces.append(raw_value.decode("latin-1"))
        elif name == b"tracestate":
            incoming_state.append(raw_value.decode("latin-1"))
        if name in drop:
            continue
        out.append((name.decode("latin-1"), raw_value.decode("latin-1")))
    out.append((REQUEST_ID_HEADER, request_id))
    # More than one traceparent is as good as none (W3C Trace Context §3.2.1).
    traceparent, continued = next_traceparent(
        incoming_traces[0] if len(incoming_traces) == 1 else None
    )
    out.append(("traceparent", traceparent))
    if continued and incoming_state:
        out.append(("tracestate", ",".join(incoming_state)))
    return out, length


def downstream_response_headers(headers: RawHeaders) -> list[tuple[bytes, bytes]]:
    named = _connection_tokens(headers)
    drop = _NOT_FORWARDED_DOWN | named if named else _NOT_FORWARDED_DOWN
    return [(name.lower(), value) for name, value in headers if name.lower() not in drop]


# --- the hop --------------------------------------------------------------------------------


def _target(scope: Scope, base_url: str) -> str:
    raw_path: bytes | None = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else quote(scope["path"])
    query: bytes = scope.get("query_string", b"")
    return f"{base_url}{path}?{query.decode('latin-1')}" if query else base_url + path


async def forward(
    scope: Scope,
    receive: Receive,
    upstream: Upstream,
    timeouts: Timeouts,
    extra_headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """Send the request in ``scope`` to ``upstream``; the answer, or a problem, to send back."""
    method: str = scope["method"]
    headers, length = upstream_request_headers(scope["headers"], current_request_id())
    headers.extend(extra_headers)
    url = _target(scope, upstream.base_url)
    may_retry = method in IDEMPOTENT_METHODS
    body_started = caller_gone = False

    async def stream_body() -> AsyncIterator[bytes]:
        nonlocal body_started, caller_gone
        body_started = True
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                caller_gone = True
                raise ClientDisconnect()
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    # A small body with a declared length is read whole: one write upstream, and a retry can
    # send it again. Anything else is streamed through as it arrives.
    small_body: bytes | None = None
    if length is not None and 0 < length <= _SMALL_BODY:
        try:
            small_body = b"".join([chunk async for chunk in stream_body()])
        except ClientDisconnect:
            return _CALLER_GONE
        body_started = False

    circuit = upstream.circuit
    attempt = 0
    while True:
        if not circuit.allow():
            return _circuit_open(upstream)
        try:
            body: bytes | AsyncIterator[bytes] | None = small_body
            if small_body is None and length != 0:
                body = stream_body()
            response = await upstream.client.send(method, url, headers, body, timeouts)
        except UpstreamConnectError as exc:
            circuit.record_failure()
            if may_retry and not body_started and attempt < upstream.retries:
                delay = upstream.backoff(attempt)
                attempt += 1
                logger.info(
                    "upstream %s unreachable (%s); retry %d in %.0f ms",
                    upstream.name,
                    exc,
                    attempt,
                    delay * 1000,
                )
                await asyncio.sleep(delay)
                continue
            return _failed(upstream, exc, attempt)
        except UpstreamError as exc:
            if caller_gone:
                # The caller hung up mid-upload: not the upstream's fault, and no one to answer.
                circuit.release()
                return _CALLER_GONE
            circuit.record_failure()
            return _failed(upstream, exc, attempt)
        except BaseException:
            circuit.release()
            raise
        circuit.record_success()
        return ProxiedResponse(
            upstream.name, response, downstream_response_headers(response.headers)
        )


# Sent to no one (the caller has gone); 499 is the de-facto code for that in proxy logs.
_CALLER_GONE = Response(status_code=499)


def _failed(upstream: Upstream, exc: UpstreamError, retries: int) -> Response:
    tries = f" after {retries + 1} attempts" if retries else ""
    if isinstance(exc, UpstreamTimeout):
        logger.warning("upstream %s timed out (%s)", upstream.name, exc)
        return problem_response(504, f"The {upstream.name} service did not answer in time.")
    if isinstance(exc, UpstreamBroken):
        logger.warning("upstream %s broke off its answer (%s)", upstream.name, exc)
        return problem_response(502, f"The {upstream.name} service sent no valid answer.")
    logger.warning("upstream %s unreachable%s (%s)", upstream.name, tries, exc)
    return problem_response(503, f"The {upstream.name} service is unavailable.")


def _circuit_open(upstream: Upstream) -> Response:
    retry_after = max(1, round(upstream.circuit.retry_after()))
    return problem_response(
        503,
        f"The {upstream.name} service is unavailable; the gateway stopped sending to it after "
        f"repeated failures and will try again in {retry_after} s.",
        headers={"Retry-After": str(retry_after)},
    )


class ProxiedResponse(Response):
    """The upstream's answer, sent on as it arrives (small bodies in one message)."""

    def __init__(
        self, upstream: str, response: UpstreamResponse, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self.upstream = upstream
        self.status_code = response.status
        self.raw_headers = headers
        self.background = None
        self._response = response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = self._response
        try:
            length = response.content_length
            if length is not None and length <= _SMALL_BODY:
                await self._send_whole(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            try:
                async for chunk in response.chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except UpstreamError as exc:
                # Headers are gone already: all that is left is to cut the answer short.
                logger.warning("upstream %s failed mid-answer (%s)", self.upstream, exc)
                raise
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()
        if self.background is not None:
            await self.background()

    async def _send_whole(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._response.read()
        except UpstreamError as exc:
            # Nothing sent yet: answer with a problem instead.
            status = 504 if isinstance(exc, UpstreamTimeout) else 502
            logger.warning("upstream %s failed mid-answer (%s)", self.upstream, exc)
            verb = "did not finish its answer in time" if status == 504 else "broke off its answer"
            await problem_response(status, f"The {self.upstream} service {verb}.")(
                scope, receive, send
            )
            return
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": body})
        if self.background is not None:
            await self.background()


async def fetch(
    upstream: Upstream,
    path: str,
    timeout: float,
    *,
    method: str = "GET",
    json_body: bytes | None = None,
) -> tuple[int, bytes]:
    """A call of the gateway's own (readiness, OpenAPI, key checks): no retries, no circuit."""
    headers = [(REQUEST_ID_HEADER, current_request_id())]
    if json_body is not None:
        headers.append(("Content-Type", "application/json"))
    response = await upstream.client.send(
        method,
        upstream.base_url + path,
        headers,
        json_body,
        Timeouts(connect=min(timeout, 2.0), read=timeout),
    )
    try:
        return response.status, await response.read()
    finally:
        await response.aclose()
