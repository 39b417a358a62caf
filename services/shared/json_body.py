"""One strict reading of JSON request bodies, for every route that takes one.

RFC 8259 leaves some inputs to the parser's taste; two parsers that choose differently (a proxy
and a service, a validator and a store) are a classic way to smuggle data past a check. So a body
is read one way only:

- the media type must be JSON (``application/json`` or ``…+json``): anything else, or none, is
  a 415 (FastAPI would otherwise hand the raw bytes to validation as a confusing 422);
- the bytes must be UTF-8 (RFC 8259 §8.1), without a byte-order mark;
- every object's member names must be unique (no "last one wins");
- ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON and are refused;
- nesting deeper than the parser can follow is refused, not a crash.

Each refusal of the bytes is a 400 ``json_invalid`` problem naming the reason.
"""

from __future__ import annotations

import email.message
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from services.shared.problems import problem_response

JSON_MEDIA_TYPES = "application/json or application/*+json"


class _Refused(ValueError):
    pass


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _Refused(f"duplicate member name {name!r}")
            seen.add(name)
    return members


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON value")


def parse_json(raw: bytes) -> Any:
    """The body as Python data, or ``json.JSONDecodeError`` saying why it is not strict JSON."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("body is not valid UTF-8", "", exc.start) from None
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("body starts with a byte-order mark", text, 0)
    try:
        return json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except _Refused as exc:
        raise json.JSONDecodeError(str(exc), text, 0) from None
    except RecursionError:
        raise json.JSONDecodeError("body is nested too deeply", text, 0) from None


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose JSON body, if it takes one, is read as the module doc says."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        takes_body = self.body_field is not None

        async def strict_handler(request: Request) -> Response:
            request = StrictJSONRequest(request.scope, request.receive)
            content_type = request.headers.get("content-type")
            if takes_body and not is_json_media_type(content_type) and await request.body():
                return problem_response(
                    415,
                    f"The body must be JSON ({JSON_MEDIA_TYPES}); "
                    f"Content-Type was {content_type or 'none'}.",
                )
            return await handler(request)

        return strict_handler
