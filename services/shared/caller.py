"""Who a request comes from, as the gateway tells the services behind it.

The gateway verifies the API key, drops any of these headers a client sent, and sends upstream
the consumer the key belongs to (``X-Pilotmatch-Consumer``) and the key's scopes
(``X-Pilotmatch-Scopes``, space-separated). Catalog and matching sit on the internal network
only, so a request that carries no consumer header comes from inside (matching reading the
change log, a health probe): it is trusted with everything.

Plain Python, no HTTP framework: the services' routes read the headers and call ``from_headers``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.shared.errors import BadRequestError

CONSUMER_HEADER = "X-Pilotmatch-Consumer"
SCOPES_HEADER = "X-Pilotmatch-Scopes"
ADMIN_SCOPE = "admin"

_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]{1,200}")


@dataclass(frozen=True)
class Caller:
    """A consumer the gateway verified, or (``consumer_id`` None) a caller inside the system."""

    consumer_id: str | None
    is_admin: bool = False

    @property
    def is_internal(self) -> bool:
        return self.consumer_id is None

    @property
    def sees_everything(self) -> bool:
        """Admins and internal callers see and change every consumer's demands."""
        return self.consumer_id is None or self.is_admin

    @property
    def restricted_to(self) -> str | None:
        """The only owner whose demands this caller may see; None when it may see all."""
        return None if self.sees_everything else self.consumer_id

    def may_see(self, owner: str | None) -> bool:
        """Whether a demand owned by ``owner`` (None: no owner) is visible to this caller."""
        return self.sees_everything or owner == self.consumer_id


INTERNAL = Caller(None)


def from_headers(consumer: str | None, scopes: str | None) -> Caller:
    """The caller named by the gateway's headers; a 400 for a malformed consumer id."""
    if consumer is None:
        return INTERNAL
    if not _PRINTABLE_ASCII.fullmatch(consumer):
        raise BadRequestError(f"{CONSUMER_HEADER} must be 1 to 200 printable ASCII characters.")
    return Caller(consumer, is_admin=ADMIN_SCOPE in (scopes or "").split())
