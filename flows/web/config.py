"""Settings of the web app (environment prefix ``SOHOA_``, like ``schemas.settings.Settings``).

Kept beside the app until they move into ``schemas.settings``: the archive-wide settings stay there, these only
concern the web entry point.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOHOA_", extra="ignore")

    admin_user: str = "admin"
    admin_password: SecretStr | None = Field(
        default=None, description="Creates the first admin account when the archive has no account yet.")
    web_secure_cookies: bool = Field(default=False, description="Mark cookies Secure (the app is served over TLS).")
    web_session_hours: float = Field(default=12.0, gt=0.0, description="A session ends after this long unused.")
    web_login_attempts: int = Field(default=5, ge=1, description="Failed logins per address and account ...")
    web_login_window_s: float = Field(default=900.0, gt=0.0, description="... within this many seconds.")
    web_page_size: int = Field(default=10, ge=1, le=100)
    web_batch_root: Path | None = Field(
        default=None, description="Folder whose sub-folders archivists may register as batches from the web app.")
