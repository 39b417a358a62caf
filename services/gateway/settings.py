"""Gateway settings (environment variables, case-insensitive)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr, model_validator

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
    upstream_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)

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
