"""Merging the services' OpenAPI documents into the one the gateway publishes."""

from __future__ import annotations

import copy
from typing import Any

API_KEY_SCHEME = "ApiKeyAuth"


def merge_openapi(
    base: dict[str, Any], upstreams: dict[str, dict[str, Any]], public_prefix: str = "/v1/"
) -> dict[str, Any]:
    """Add every public path (under ``public_prefix``) and schema of ``upstreams`` to ``base``.

    Public operations get the API-key security requirement; health endpoints of upstreams stay
    private (the gateway has its own). A schema name used by two services with different
    content is an error: the published document must not silently pick one.
    """
    merged = copy.deepcopy(base)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    schemas: dict[str, Any] = merged.setdefault("components", {}).setdefault("schemas", {})
    for service, spec in upstreams.items():
        for path, item in spec.get("paths", {}).items():
            if not path.startswith(public_prefix):
                continue
            if path in paths:
                raise ValueError(f"path {path} is published by two services (one is {service})")
            item = copy.deepcopy(item)
            for operation in item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    operation.setdefault("security", [{API_KEY_SCHEME: []}])
            paths[path] = item
        for name, schema in spec.get("components", {}).get("schemas", {}).items():
            if name in schemas and schemas[name] != schema:
                raise ValueError(f"schema {name} differs between services (one is {service})")
            schemas[name] = schema
    merged["components"].setdefault("securitySchemes", {})[API_KEY_SCHEME] = {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key issued by the operator.",
    }
    merged["paths"] = dict(sorted(paths.items()))
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    return merged
