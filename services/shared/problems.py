"""RFC 9457 problem details: the one shape of every error answer, and the handlers that make it.

Domain errors are mapped to statuses in one table here; HTTP-level failures (validation, unknown
routes, oversized bodies, crashes) are converted by the handlers below.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.shared.errors import (
    BadRequestError,
    ConflictError,
    DomainError,
    FieldIssue,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
)
from services.shared.request_context import current_request_id

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
PROBLEM_BASE = "https://pilotmatch.dev/problems/"

DEFAULT_STATUS_BY_ERROR: dict[type[DomainError], int] = {
    BadRequestError: 400,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    InvalidInputError: 422,
    UnavailableError: 503,
}

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}

_SLUGS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "payload-too-large",
    415: "unsupported-media-type",
    422: "validation-failed",
    429: "rate-limited",
    500: "internal-error",
    502: "bad-gateway",
    503: "unavailable",
    504: "gateway-timeout",
}


class ProblemField(BaseModel):
    field: str = Field(description="Dotted path of the field at fault, e.g. `industry_chains[2]`.")
    loc: list[str | int] = Field(description="The same path as a list.")
    message: str
    type: str = Field(description="Machine-readable error type, e.g. `missing`, `string_too_long`.")


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[PROBLEM_BASE + "validation-failed"])
    title: str = Field(examples=["Validation failed"])
    status: int = Field(examples=[422])
    detail: str = Field(examples=["1 field is invalid."])
    instance: str | None = None
    request_id: str | None = None
    errors: list[ProblemField] | None = Field(
        default=None, description="For validation errors: every field at fault."
    )


def problem_type(status: int) -> str:
    return PROBLEM_BASE + _SLUGS.get(status, "error")


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: list[FieldIssue] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(status),
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
    }
    if errors is not None:
        body["errors"] = [
            {
                "field": issue.field,
                "loc": list(issue.loc),
                "message": issue.message,
                "type": issue.type,
            }
            for issue in errors
        ]
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_issues(exc: RequestValidationError) -> tuple[int, str, list[FieldIssue]]:
    issues: list[FieldIssue] = []
    malformed = False
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            malformed = True
            position = loc[-1] if loc else "?"
            ctx_error = (err.get("ctx") or {}).get("error", "JSON decode error")
            issues.append(
                FieldIssue(("body",), f"{ctx_error} at character {position}", "json_invalid")
            )
            continue
        # "body" is FastAPI's prefix for the request body; callers think in field names.
        if loc and loc[0] == "body":
            loc = loc[1:]
        issues.append(
            FieldIssue(
                loc=loc or ("body",),
                message=str(err.get("msg", "")),
                type=str(err.get("type", "value_error")),
            )
        )
    if malformed:
        return 400, "The request body is not valid JSON.", issues
    count = len(issues)
    return 422, f"{count} field{'s are' if count != 1 else ' is'} invalid.", issues


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts on the request's path (asked of the router)."""
    return [
        method
        for method in _METHOD_ORDER
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def install_problem_handlers(
    app: FastAPI, status_by_error: dict[type[DomainError], int] | None = None
) -> None:
    table = status_by_error or DEFAULT_STATUS_BY_ERROR

    async def on_domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        status = next((s for cls, s in table.items() if isinstance(exc, cls)), 400)
        issues = exc.issues if isinstance(exc, InvalidInputError) else None
        headers = None
        if isinstance(exc, UnavailableError) and exc.retry_after is not None:
            headers = {"Retry-After": str(exc.retry_after)}
        return problem_response(status, exc.detail, title=exc.title, errors=issues, headers=headers)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        status, detail, issues = _validation_issues(exc)
        return problem_response(status, detail, errors=issues)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else _TITLES.get(exc.status_code, "")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No route for {request.method} {request.url.path}."
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; RFC 9110 wants
            # every method the resource supports.
            headers["Allow"] = ", ".join(allowed_methods(request))
            detail = f"{request.method} is not allowed on {request.url.path}."
        return problem_response(exc.status_code, detail, headers=headers or None)

    app.add_exception_handler(DomainError, on_domain_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    # Unexpected exceptions are answered by RequestContextMiddleware, which keeps the request ID.


_DESCRIPTIONS = {
    400: "The request cannot be understood: malformed JSON, or a cursor this service did not "
    "issue.",
    401: "Missing, unknown, revoked or expired API key.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such resource.",
    409: "The write conflicts with an existing resource (e.g. a duplicate `external_ref`).",
    413: "The request body is too large for this endpoint.",
    415: "The body is not JSON: send it as `application/json` (UTF-8).",
    422: "Validation failed; `errors` lists every field at fault.",
    429: "Rate limit exhausted; retry after `Retry-After` seconds.",
    500: "Unexpected error, logged with the request ID; never carries a stack trace.",
    503: "Temporarily unavailable; retry after `Retry-After` seconds when it is given.",
}


def problem_content() -> dict[str, Any]:
    """The ``content`` of every error answer: a ``Problem`` as ``application/problem+json``."""
    return {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses.

    ``descriptions`` overrides the default wording per status, keyed ``s404="…"``.
    """
    return {
        status: {
            "description": descriptions.get(f"s{status}", _DESCRIPTIONS[status]),
            "content": problem_content(),
        }
        for status in statuses
    }
