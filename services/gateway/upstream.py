"""Forwarding to the services behind the gateway: which upstream serves a path, and the hop."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from services.shared.problems import problem_response
from services.shared.request_context import REQUEST_ID_HEADER, current_request_id

logger = logging.getLogger(__name__)

# Paths the matching service answers; everything else under /v1 belongs to the catalog.
_MATCHING_PATHS = re.compile(
    r"^/v1/(match|index|demands/[^/]+/matches|(platforms|manufacturers)/[^/]+/similar)/?$"
)

# RFC 9110 §7.6.1 hop-by-hop headers, plus ones the client library sets itself.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_NOT_FORWARDED = HOP_BY_HOP | {"x-api-key"}


def upstream_for(path: str) -> str:
    return "matching" if _MATCHING_PATHS.match(path) else "catalog"


@dataclass
class Upstream:
    name: str
    base_url: str
    client: httpx.AsyncClient


async def forward(request: Request, upstream: Upstream) -> Response:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
    headers = [(k, v) for k, v in headers if k.lower() != REQUEST_ID_HEADER.lower()]
    headers.append((REQUEST_ID_HEADER, current_request_id()))
    url = upstream.base_url + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    upstream_request = upstream.client.build_request(
        request.method,
        url,
        headers=headers,
        content=request.stream(),
    )
    try:
        response = await upstream.client.send(upstream_request, stream=True)
    except httpx.TimeoutException:
        logger.warning("upstream %s timed out", upstream.name)
        return problem_response(504, f"The {upstream.name} service did not answer in time.")
    except httpx.TransportError as exc:
        logger.warning("upstream %s unreachable: %s", upstream.name, type(exc).__name__)
        return problem_response(503, f"The {upstream.name} service is unavailable.")
    out_headers = {
        k: v
        for k, v in response.headers.items()
        if k.lower() not in HOP_BY_HOP and k.lower() != REQUEST_ID_HEADER.lower()
    }
    return StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        headers=out_headers,
        background=BackgroundTask(response.aclose),
    )
