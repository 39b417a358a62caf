"""Request IDs: accepted from the caller or generated, kept in a context variable for logs."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's ID is echoed only when it is short and printable, so it can be logged and forwarded
# safely; anything else is replaced by a fresh one.
_ACCEPTABLE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(raw: str | None) -> str:
    if raw and _ACCEPTABLE_ID.match(raw):
        return raw
    return new_request_id()


def current_request_id() -> str:
    return request_id_var.get()
