"""Settings of the web app (environment prefix ``SOHOA_``, like ``schemas.settings.Settings``).

Kept beside the app until they move into ``schemas.settings``: the archive-wide settings stay there, these only
concern the web entry point.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOHOA_", extra="ignore")

    admin_user: str = "admin"
    admin_password: SecretStr | None = Field(
        default=None, description="Creates the first admin account when the archive has no account yet.")
    web_secure_cookies: bool = Field(default=False, description="Mark cookies Secure (the app is served over TLS).")
    web_session_hours: float = Field(default=12.0, gt=0.0, description="A session ends after this long unused.")
    web_login_attempts: int = Field(default=5, ge=1, description="Failed logins per address and account ...")
    web_login_account_attempts: int = Field(default=10, ge=1, description="... per account, from any address ...")
    web_login_address_attempts: int = Field(default=20, ge=1, description="... per address, for any account ...")
    web_login_window_s: float = Field(default=900.0, gt=0.0, description="... within this many seconds.")
    trusted_proxies: str = Field(
        default="", description="Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed: IP "
                                "addresses or networks, comma-separated (SOHOA_TRUSTED_PROXIES). Empty: none.")
    web_page_size: int = Field(default=10, ge=1, le=100)
    web_batch_root: Path | None = Field(
        default=None, description="Folder whose sub-folders archivists may register as batches from the web app.")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"SOHOA_TRUSTED_PROXIES: «{item}» không phải địa chỉ IP hay dải mạng "
                                 "(vd. 127.0.0.1, 10.0.0.0/24)") from None
        return ",".join(items)

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The configured proxies (addresses or networks); empty when no proxy is trusted."""
        return [item for item in self.trusted_proxies.split(",") if item]
