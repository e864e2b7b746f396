"""Callback URLs (webhook and hook targets) that both test servers accept."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx


def http_url_host(url: str) -> str | None:
    """The host of an http(s) URL a sender can call, or None when it is not one."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises for a port that is not a number from 0 to 65535
        httpx.URL(url)  # what the sender will parse
    except (ValueError, httpx.InvalidURL):  # e.g. "http://[::1" (no closing bracket)
        return None
    return parts.hostname if parts.scheme in ("http", "https") and parts.hostname else None
