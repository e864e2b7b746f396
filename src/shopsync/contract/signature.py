"""Webhook signatures: ``X-Webshop-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

Sender and receiver must agree to the byte, so both use these two functions: the
signature is computed over the exact bytes sent (never over re-serialized JSON), keyed
with the subscription's secret encoded as UTF-8.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Webshop-Signature"
EVENT_HEADER = "X-Webshop-Event"
DELIVERY_HEADER = "X-Webshop-Delivery"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """The header value for ``body`` signed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` with ``secret`` (constant time)."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header.strip())
