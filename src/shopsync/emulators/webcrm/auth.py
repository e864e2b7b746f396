"""Access and refresh tokens, as webCRM hands them out for an application token.

``POST /Auth/ApiLogin`` exchanges the application token (form field ``authCode``) for
an access token that lives ``token_ttl`` seconds and a refresh token;
``POST /Auth/ApiRefresh`` trades a refresh token for a new pair (the old refresh token
is then spent). Tokens are random opaque strings held in memory: restarting the
emulator logs everybody out, as a deploy of the live service may.

Every access token remembers which application token it was issued for, because
webCRM's rate limit is counted per application token, not per access token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass


def app_key(auth_code: str) -> str:
    """A stable, non-secret name for an application token (never the token itself)."""
    return "app-" + hashlib.sha256(auth_code.encode()).hexdigest()[:12]


@dataclass
class _Access:
    app: str
    expires: float


class TokenStore:
    """Issued tokens of one emulator process (thread-safe)."""

    def __init__(self, auth_code: str, ttl: int) -> None:
        self._auth_code = self._configured = auth_code
        self.ttl = ttl
        self._access: dict[str, _Access] = {}
        self._refresh: dict[str, str] = {}
        self._lock = threading.Lock()

    def check_auth_code(self, code: str | None) -> str | None:
        """The application's key when ``code`` is the configured application token."""
        if code and hmac.compare_digest(code.encode(), self._auth_code.encode()):
            return app_key(code)
        return None

    def issue(self, app: str) -> tuple[str, str]:
        """A new (access token, refresh token) pair for application ``app``."""
        access, refresh = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            self._access[access] = _Access(app, now + self.ttl)
            self._refresh[refresh] = app
        return access, refresh

    def refresh(self, refresh_token: str | None) -> tuple[str, str] | None:
        """Spend ``refresh_token`` for a new pair; None when it is unknown or spent."""
        if not refresh_token:
            return None
        with self._lock:
            app = self._refresh.pop(refresh_token, None)
        return self.issue(app) if app is not None else None

    def app_for(self, access_token: str) -> str | None:
        """The application an access token belongs to; None when unknown or expired."""
        with self._lock:
            entry = self._access.get(access_token)
            if entry is None:
                return None
            if entry.expires <= time.monotonic():
                del self._access[access_token]
                return None
            return entry.app

    def replace_auth_code(self, auth_code: str | None) -> None:
        """Accept ``auth_code`` from now on (None: the configured one again), and revoke
        every token issued so far: what revoking an application token in webCRM and
        issuing another does to a client that still holds the old one."""
        with self._lock:
            self._auth_code = auth_code or self._configured
            self._access.clear()
            self._refresh.clear()

    def restore_auth_code(self) -> None:
        """The configured application token again, keeping issued tokens (``reset``)."""
        with self._lock:
            self._auth_code = self._configured

    def expire_all(self) -> int:
        """Make every access token expired now (a test control); returns how many."""
        with self._lock:
            n = len(self._access)
            for entry in self._access.values():
                entry.expires = 0.0
            return n

    def _prune(self, now: float) -> None:
        dead = [t for t, e in self._access.items() if e.expires <= now]
        for t in dead:
            del self._access[t]
