"""Gateway settings (environment variables, case-insensitive)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from services.shared.settings import ServiceSettings, ServiceUrl

_WEAK_KEYS = {"changeme", "change-me", "secret", "admin", "password", "test", "dev", "key"}


class GatewaySettings(ServiceSettings):
    port: int = 8000
    catalog_url: ServiceUrl = "http://127.0.0.1:8001"
    matching_url: ServiceUrl = "http://127.0.0.1:8002"
    admin_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PILOTMATCH_ADMIN_KEY", "admin_key"),
        description="An API key with every scope, for bootstrap.",
    )
    upstream_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Time an upstream has to answer (most routes)."
    )
    import_timeout_seconds: float = Field(
        default=120.0, gt=0, le=3600, description="Time the catalog has to answer `/v1/import`."
    )
    matching_timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        le=300,
        description="Time matching has to answer; above matching's `min_version` wait (5 s).",
    )
    report_timeout_seconds: float = Field(
        default=120.0,
        gt=0,
        le=3600,
        description="Time matching has to answer `/v1/reports/…`: the first report after a "
        "catalog change ranks every open demand.",
    )
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    upstream_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of idempotent requests that could not connect."
    )
    upstream_retry_backoff_seconds: float = Field(default=0.05, ge=0, le=10)
    upstream_max_connections: int = Field(
        default=100, ge=1, le=10_000, description="Pooled connections per upstream."
    )
    circuit_failure_threshold: int = Field(
        default=5, ge=1, description="Consecutive failures that open an upstream's circuit."
    )
    circuit_reset_seconds: float = Field(
        default=10.0, gt=0, le=600, description="How long an open circuit refuses calls."
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Web origins allowed to call the API from a browser (comma-separated); "
        "empty: CORS off.",
    )
    max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    rate_limit_per_minute: int = Field(
        default=600,
        ge=1,
        le=10_000_000,
        description="Requests per minute per API key, unless its consumer has its own limit.",
    )
    rate_limit_burst_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="A key may spend this many seconds' worth of its rate at once.",
    )
    rate_limit_import_cost: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Requests' worth of a key's rate limit that one `/v1/import` call spends.",
    )
    rate_limit_match_cost: int = Field(
        default=2,
        ge=1,
        le=1_000_000,
        description="Requests' worth of a key's rate limit that one matching call spends "
        "(`/v1/match`, `/v1/demands/{id}/matches`, `/similar`).",
    )
    redis_url: str | None = Field(
        default=None,
        description="Share rate limits across gateway replicas through Redis (redis://…).",
    )
    key_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        le=3600,
        description="How long a verified key is trusted before the catalog is asked again; "
        "a revocation takes effect within this time.",
    )

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part for part in value.split(",")]
        if isinstance(value, list | tuple):
            origins = [str(o).strip().rstrip("/") for o in value if str(o).strip()]
            for origin in origins:
                if origin != "*" and not origin.startswith(("http://", "https://")):
                    raise ValueError(f"must be comma-separated http(s) origins, got {origin!r}")
            return origins
        return value

    @model_validator(mode="after")
    def _strong_key_outside_development(self) -> GatewaySettings:
        if self.environment == "development":
            return self
        key = self.admin_key.get_secret_value() if self.admin_key else ""
        if len(key) < 24 or key.lower() in _WEAK_KEYS:
            raise ValueError(
                "PILOTMATCH_ADMIN_KEY must be set to a random value of at least 24 characters "
                f"outside development (ENVIRONMENT={self.environment})"
            )
        return self
