"""Logging: structlog to stderr, with every known secret masked.

Secrets (application tokens, access tokens, webshop tokens, webhook secrets, passwords in
URLs) must never reach a log line. The clients already avoid logging them; as a second
line of defence every event passes through :func:`redact`, which masks values of
secret-looking keys, the password of any URL (:func:`mask_url`) and any registered
secret string wherever it appears. :func:`scrub` does the same for a message shown to
the user.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRETS: set[str] = set()
SECRET_KEYS = ("token", "auth_code", "authcode", "secret", "password", "authorization")
MASK = "***"


_URL_PASSWORD = re.compile(
    r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"<>]*):(?P<password>[^\s/'\"<>]*)@"
)


def mask_url(text: str) -> str:
    """``text`` with the password of every URL in it masked: the one helper for URLs.

    Works on a URL (``postgresql://u:pw@host/db`` → ``postgresql://u:***@host/db``) and
    on a message that contains URLs. A password holding a raw ``@`` is masked up to the
    last ``@`` before the host. Used wherever a URL is shown, logged or stored.
    """
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@", text)


def scrub(text: str) -> str:
    """``text`` with URL passwords and every registered secret masked (for messages)."""
    return str(_mask(text))


def register_secret(value: str | None) -> None:
    """Mask ``value`` in every log line from now on (values shorter than 6 are ignored)."""
    if value and len(value) >= 6:
        _SECRETS.add(value)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        value = mask_url(value)
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(part in key.lower() for part in SECRET_KEYS):
            event[key] = MASK
        else:
            event[key] = _mask(event[key])
    return event


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger on the *current* ``sys.stderr`` (it may be replaced, e.g. by a test runner)."""
    return structlog.PrintLogger(sys.stderr)


def configure(level: str | None = None) -> None:
    """Configure structlog for the CLI (level from ``SHOPSYNC_LOG_LEVEL``, default warning)."""
    name = (level or os.environ.get("SHOPSYNC_LOG_LEVEL") or "warning").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact,
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def configure_json(level: str | None = None) -> None:
    """JSON lines on stderr for the always-on service (``shopsync serve``): one object per
    event, secrets masked like every other log line. The standard library's loggers
    (uvicorn, the clients' libraries) go through the same processors, so a log
    collector sees one format and no secret slips past :func:`redact` that way.
    """
    name = (level or os.environ.get("SHOPSYNC_LOG_LEVEL") or "info").upper()
    numeric = logging.getLevelName(name)
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for noisy in ("httpx", "httpcore"):  # a line per request, at info: too much for a service
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
