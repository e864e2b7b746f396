"""Webhook signatures: HMAC-SHA256 over the raw body, ``sha256=<hex>``."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shopsync.contract.signature import sign, verify


def test_known_vector() -> None:
    # RFC 4231, test case 2 (HMAC-SHA-256).
    assert sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_secret_is_utf8() -> None:
    assert sign("nøgle-æøå", b"{}") != sign("nogle-aoa", b"{}")
    assert verify("nøgle-æøå", b"{}", sign("nøgle-æøå", b"{}"))


@given(st.text(min_size=1), st.binary())
def test_verify_accepts_its_own_signature(secret: str, body: bytes) -> None:
    assert verify(secret, body, sign(secret, body))


@given(st.text(min_size=1), st.binary(min_size=1), st.integers(min_value=0))
def test_any_changed_byte_breaks_it(secret: str, body: bytes, where: int) -> None:
    index = where % len(body)
    tampered = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    assert not verify(secret, tampered, sign(secret, body))


def test_wrong_secret_missing_or_malformed_header() -> None:
    body = b'{"event":"customer.created","id":"cus_1","occurred_at":"2025-01-01T00:00:00+00:00"}'
    good = sign("s" * 20, body)
    assert not verify("t" * 20, body, good)
    assert not verify("s" * 20, body, None)
    assert not verify("s" * 20, body, "")
    assert not verify("s" * 20, body, good.removeprefix("sha256="))
    assert not verify("s" * 20, body, "sha1=" + good.removeprefix("sha256="))
    # Re-serialized JSON is different bytes: the signature covers the raw body only.
    assert not verify("s" * 20, body.replace(b",", b", "), good)
