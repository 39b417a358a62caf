"""Domain errors shared by every service.

They know nothing of HTTP: each service's HTTP layer maps them to problem-details statuses in one
table (see ``services.shared.problems.DEFAULT_STATUS_BY_ERROR``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldIssue:
    """One field at fault: where it is (``loc``), what is wrong, and a machine-readable type."""

    loc: tuple[str | int, ...]
    message: str
    type: str = "value_error"

    @property
    def field(self) -> str:
        """Dotted path with list indexes in brackets, e.g. ``industry_chains[2]``."""
        out = ""
        for part in self.loc:
            if isinstance(part, int):
                out += f"[{part}]"
            else:
                out += f".{part}" if out else str(part)
        return out


class DomainError(Exception):
    """Base of every error a domain function raises on purpose."""

    title = "Request cannot be processed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFoundError(DomainError):
    title = "Not found"


class ConflictError(DomainError):
    title = "Conflict"


class InvalidInputError(DomainError):
    """Input that passed schema validation but breaks a domain rule."""

    title = "Invalid input"

    def __init__(self, detail: str, issues: list[FieldIssue] | None = None) -> None:
        super().__init__(detail)
        self.issues = issues or []


class BadRequestError(DomainError):
    """A request that cannot be understood at all (garbage cursor, malformed body)."""

    title = "Bad request"


class PayloadTooLargeError(DomainError):
    title = "Payload too large"


class UnavailableError(DomainError):
    """Temporarily unable to answer; ``retry_after`` (seconds) tells the caller when to retry."""

    title = "Service unavailable"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
