"""Who may use the console, and proof that a button press came from its own page.

* **Sign-in.** On a loopback ``listen`` address only this machine reaches the console;
  elsewhere ``[serve] admin_token`` is required (the configuration refuses to load
  without it) and a browser signs in once with it. The session is a cookie signed with
  HMAC-SHA256 under a random key kept in the state database (so a restart does not sign
  everyone out, and the key never leaves the server); it has no expiry date, so it ends
  with the browser session. The token itself is never stored in the cookie or shown.
* **CSRF.** Every state-changing request is a POST that must carry the session's CSRF
  token in a hidden field (checked in constant time), and an ``Origin`` header, when
  the browser sends one, must be this console's own origin. Cookies are
  ``SameSite=Strict`` and ``HttpOnly``.
* **DNS rebinding.** Without a token, a page must be asked for under a loopback host
  name: a hostile site whose name resolves to 127.0.0.1 cannot read the console.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE = "shopsync_console"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass
class Session:
    sid: str
    csrf: str
    signed_in: bool
    fresh: bool = False
    """Made for this request: the response must set the cookie."""


class Signer:
    def __init__(self, key: str) -> None:
        self._key = hashlib.sha256(b"shopsync-console-session\0" + key.encode()).digest()

    def dumps(self, session: Session) -> str:
        body = base64.urlsafe_b64encode(
            json.dumps({"sid": session.sid, "csrf": session.csrf, "in": session.signed_in}).encode()
        ).decode()
        return f"{body}.{self._mac(body)}"

    def loads(self, value: str | None) -> Session | None:
        if not value or "." not in value:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body.encode()))
            return Session(str(data["sid"]), str(data["csrf"]), bool(data["in"]))
        except (ValueError, KeyError, TypeError):
            return None

    def _mac(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()


def new_session(signed_in: bool = False) -> Session:
    return Session(secrets.token_urlsafe(16), secrets.token_urlsafe(32), signed_in, fresh=True)


def token_matches(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def host_allowed(request: Request, loopback_only: bool) -> bool:
    """Without a sign-in token, only loopback host names (see the module doc)."""
    if not loopback_only:
        return True
    host = (request.headers.get("host") or "").strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS


def same_origin(request: Request) -> bool:
    """The ``Origin`` (when sent) is this console's own; a cross-site fetch is refused."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-origin request; the CSRF token still decides
    parts = urlsplit(origin)
    own = (request.headers.get("host") or "").lower()
    return parts.netloc.lower() == own and parts.scheme in ("http", "https")
