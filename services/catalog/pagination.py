"""Opaque cursors for keyset pagination: they encode the last primary key of a page."""

from __future__ import annotations

import base64
import binascii

from services.shared.errors import FieldIssue, InvalidInputError

_MAX_KEY = 2**63 - 1  # primary keys are 64-bit integers


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"c1:{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, number = raw.partition(":")
        pk = int(number)
        if prefix != "c1" or not 0 <= pk <= _MAX_KEY:
            raise ValueError
        return pk
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(
            "The cursor is not one this service issued.",
            [FieldIssue(("query", "cursor"), "not a cursor this service issued", "invalid_cursor")],
        ) from None
