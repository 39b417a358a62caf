"""OpenAPI documents: each service's own, and the one merged document the gateway publishes.

Every error answer is an RFC 9457 problem (``application/problem+json``, the ``Problem`` schema):
``install_openapi`` makes each service's document say so, and ``merge_openapi`` adds what only the
gateway answers (401, 403, 429, 502, 503, 504, and 413 for bodies) to every public operation,
with the scope each one needs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from services.shared.problems import PROBLEM_JSON, Problem, problem_content

API_KEY_SCHEME = "ApiKeyAuth"
REQUIRED_SCOPE_EXTENSION = "x-required-scope"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# What FastAPI declares for a 422 by default; every validation error is a Problem instead.
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

ScopeFor = Callable[[str, str], str]
"""The scope an operation needs, from its upper-case method and its path template."""


def install_openapi(app: FastAPI, tags: Sequence[dict[str, str]] = ()) -> None:
    """Make ``app.openapi()`` build a document whose errors are all problem details."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=list(tags) or None,
            )
            app.openapi_schema = problems_only(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem_schemas() -> dict[str, Any]:
    """``Problem`` and the schemas it refers to, as components."""
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = schema.pop("$defs", {})
    return {**definitions, "Problem": schema}


def problems_only(document: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx answer of ``document`` as ``application/problem+json`` with ``Problem``."""
    document = copy.deepcopy(document)
    for _path, _method, operation in operations(document):
        for status, response in operation.get("responses", {}).items():
            if status[0] in "45":
                response["content"] = problem_content()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(problem_schemas())
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of ``document``."""
    return [
        (path, method, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


SCOPE_DESCRIPTIONS = {
    "catalog:read": "Read platforms, manufacturers, demands, equipment, solutions, the change "
    "log and the industry-chain taxonomy (every `GET` on the catalog).",
    "catalog:write": "Create, change, delete and import catalog resources (`POST`, `PATCH`, "
    "`DELETE` on the catalog).",
    "match:read": "Rank suppliers for demands and find similar suppliers (the matching "
    "endpoints, including `POST /v1/match`, which stores nothing).",
    "admin": "Issue, list and revoke API keys (`/v1/admin/…`).",
}


def _security_scheme() -> dict[str, Any]:
    scopes = "\n".join(f"- `{name}`: {text}" for name, text in SCOPE_DESCRIPTIONS.items())
    return {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key issued by the operator (`pilotmatch keys create`) or through "
        "`POST /v1/admin/keys`. Each key carries scopes; every operation names the one it "
        f"needs in its security requirement and in `{REQUIRED_SCOPE_EXTENSION}`.\n\n"
        f"Scopes:\n{scopes}\n\n"
        "A missing, unknown, revoked or expired key is answered with 401; a key without the "
        "needed scope with 403.",
    }


_RETRY_AFTER = {
    "description": "Seconds to wait before retrying.",
    "schema": {"type": "integer", "minimum": 0},
}


def _rate_limit_headers(with_retry_after: bool) -> dict[str, Any]:
    headers: dict[str, Any] = {
        "RateLimit-Limit": {
            "description": "Requests allowed in a burst for this key.",
            "schema": {"type": "integer"},
        },
        "RateLimit-Remaining": {
            "description": "Requests left in the current burst.",
            "schema": {"type": "integer"},
        },
        "RateLimit-Reset": {
            "description": "Seconds until the burst is full again.",
            "schema": {"type": "integer"},
        },
    }
    if with_retry_after:
        headers = {"Retry-After": _RETRY_AFTER, **headers}
    return headers


def _gateway_responses(scope: str, has_body: bool) -> dict[str, dict[str, Any]]:
    """What the gateway itself may answer for a forwarded operation."""
    responses: dict[str, dict[str, Any]] = {
        "401": {
            "description": "Missing, unknown, revoked or expired API key.",
            "headers": {
                "WWW-Authenticate": {"description": "`ApiKey`.", "schema": {"type": "string"}}
            },
        },
        "403": {
            "description": f"The API key lacks the scope `{scope}`; the problem names it in "
            "`required_scope`.",
        },
        "429": {
            "description": "The key's rate limit is exhausted; retry after `Retry-After` seconds.",
            "headers": _rate_limit_headers(with_retry_after=True),
        },
        "502": {"description": "The service behind the gateway sent a broken answer."},
        "503": {
            "description": "A service behind the gateway (or the key check) is unavailable or "
            "not ready yet; retry after `Retry-After` seconds when it is given.",
            "headers": {"Retry-After": _RETRY_AFTER},
        },
        "504": {"description": "The service behind the gateway did not answer in time."},
    }
    if has_body:
        responses["413"] = {"description": "The request body is larger than the gateway accepts."}
    for response in responses.values():
        response["content"] = problem_content()
    return responses


def merge_openapi(
    base: dict[str, Any],
    upstreams: dict[str, dict[str, Any]],
    scope_for: ScopeFor,
    public_prefix: str = "/v1/",
) -> dict[str, Any]:
    """Add every public path (under ``public_prefix``), schema and tag of ``upstreams`` to ``base``.

    Public operations get the API-key security requirement with the scope ``scope_for`` names
    (also as ``x-required-scope`` and in the description) and the error answers the gateway adds.
    Health endpoints of upstreams stay private (the gateway has its own). A schema name used by
    two services with different content is an error: the document must not silently pick one.
    """
    merged = problems_only(base)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged["components"]["schemas"]
    tags: dict[str, dict[str, Any]] = {tag["name"]: tag for tag in merged.get("tags", [])}
    for service, spec in upstreams.items():
        spec = problems_only(spec)
        for path, item in spec.get("paths", {}).items():
            if not path.startswith(public_prefix):
                continue
            if path in paths:
                raise ValueError(f"path {path} is published by two services (one is {service})")
            paths[path] = item
            for method, operation in item.items():
                if method in HTTP_METHODS:
                    _publish(operation, scope_for(method.upper(), path))
        for name, schema in spec["components"]["schemas"].items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} differs between services (one is {service})")
            schemas[name] = schema
        for tag in spec.get("tags", []):
            tags.setdefault(tag["name"], tag)
    merged["components"].setdefault("securitySchemes", {})[API_KEY_SCHEME] = _security_scheme()
    merged["paths"] = dict(sorted(paths.items()))
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    used = {tag for _p, _m, operation in operations(merged) for tag in operation.get("tags", [])}
    missing = used - set(tags)
    if missing:
        raise ValueError(f"tags without a description: {', '.join(sorted(missing))}")
    merged["tags"] = [tag for name, tag in tags.items() if name in used]
    return merged


def _publish(operation: dict[str, Any], scope: str) -> None:
    operation["security"] = [{API_KEY_SCHEME: [scope]}]
    operation[REQUIRED_SCOPE_EXTENSION] = scope
    needs = f"Requires an API key with the scope `{scope}`."
    description = operation.get("description")
    operation["description"] = f"{description}\n\n{needs}" if description else needs
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status, response in _gateway_responses(scope, "requestBody" in operation).items():
        if status in responses:
            # The service's own wording is more specific; the gateway's headers still apply.
            response = {**response, "description": responses[status]["description"]}
        responses[status] = response
    operation["responses"] = dict(sorted(responses.items()))


__all__ = [
    "API_KEY_SCHEME",
    "PROBLEM_JSON",
    "REQUIRED_SCOPE_EXTENSION",
    "install_openapi",
    "merge_openapi",
    "problems_only",
]
