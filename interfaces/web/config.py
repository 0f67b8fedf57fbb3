"""Settings of the web app: part of ``schemas.settings.Settings`` (``SOHOA_ADMIN_*``, ``SOHOA_WEB_*``,
``SOHOA_TRUSTED_PROXIES``), the one reader of the environment. ``WebSettings`` is the name the app's code uses for
them: the same class, so ``create_app(settings)`` takes both from one ``Settings``."""

from __future__ import annotations

from schemas.settings import Settings as WebSettings

__all__ = ["WebSettings"]
