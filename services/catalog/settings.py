"""Catalog service settings (environment variables, case-insensitive)."""

from __future__ import annotations

from pydantic import Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from services.shared.settings import ServiceSettings

DEFAULT_DATABASE_URL = "sqlite:///./var/pilotmatch.db"


def normalize_database_url(url: str) -> str:
    """Accept the URL forms operators use and pin the drivers we support.

    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://`` (psycopg 3); SQLite
    stays on the standard library driver. Anything else is refused with a clear message.
    """
    url = url.strip()
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL: {url!r}") from None
    backend = parsed.get_backend_name()
    driver = parsed.get_driver_name()
    if backend == "postgresql":
        if driver not in ("psycopg", "psycopg2"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        elif driver == "psycopg2":
            raise ValueError("use postgresql+psycopg:// (psycopg 3), not psycopg2")
    elif backend == "sqlite":
        if driver != "pysqlite":
            raise ValueError("SQLite URLs use the standard driver: sqlite:///path/to.db")
    else:
        raise ValueError(
            f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://"
        )
    return parsed.render_as_string(hide_password=False)


class CatalogSettings(ServiceSettings):
    port: int = 8001
    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Limit for one request body."
    )
    max_import_body_bytes: int = Field(
        default=64 * 1_048_576, ge=1024, description="Limit for a POST /v1/import body."
    )
    max_import_items: int = Field(default=10_000, ge=1, le=1_000_000)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    idempotency_ttl_seconds: float = Field(
        default=86_400, gt=0, description="How long a stored Idempotency-Key answer is replayed."
    )
    webhook_delivery_enabled: bool = Field(
        default=True, description="Run the webhook delivery worker in this process."
    )
    webhook_poll_interval_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often the worker looks for due deliveries."
    )
    webhook_attempt_timeout_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Time a receiver has to answer one delivery."
    )
    webhook_retry_scale: float = Field(
        default=1.0,
        gt=0,
        le=1,
        description="Multiplies the retry delays (5 s … 10 h); tests shrink them.",
    )
    webhook_retention_days: float = Field(
        default=30, gt=0, description="Events and their delivery log are kept this long."
    )
    webhook_max_per_consumer: int = Field(
        default=25,
        ge=1,
        le=10_000,
        description="Most webhooks one consumer may register: each event is delivered once per "
        "subscribed webhook, so an unbounded count would let one key multiply the outbound load.",
    )
    webhook_allow_private_targets: bool = Field(
        default=False,
        description="In production, allow webhook URLs on loopback, private or link-local "
        "addresses (always allowed in development and test).",
    )

    @property
    def webhook_private_targets_allowed(self) -> bool:
        return self.environment != "production" or self.webhook_allow_private_targets

    demand_lifetime_days: int = Field(
        default=90,
        ge=1,
        le=3650,
        description="An open or matched demand expires this many days after it was created "
        "or last renewed.",
    )
    demand_expiry_sweep_seconds: float = Field(
        default=60.0,
        gt=0,
        le=86_400,
        description="How often the catalog marks overdue demands expired.",
    )

    @field_validator("database_url")
    @classmethod
    def _valid_database_url(cls, value: str) -> str:
        return normalize_database_url(value)
