"""Where the CLI finds the API and its token: flags first, then the environment."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_API_URL = "http://127.0.0.1:8000"


class ClientSettings(BaseSettings):
    """`MERIDIAN_API_URL` and `MERIDIAN_TOKEN` (the admin token `meridian up` writes to
    `.meridian/admin.token`, or one from `meridian token`)."""

    model_config = SettingsConfigDict(env_prefix="MERIDIAN_", extra="ignore")

    api_url: str = DEFAULT_API_URL
    token: SecretStr | None = None

    def bearer(self) -> str | None:
        value = self.token.get_secret_value().strip() if self.token is not None else ""
        return value or None
