"""The service's own secrets, kept in the state database (table ``meta``).

Two values must survive a restart so that registrations can be reused instead of piled
up: the unguessable token in the hook addresses, and the secret the shop signs its
webhook calls with. They live beside the links they protect (a backup of the state
database restores both), never in the configuration file and never in a log line:
each is registered with :func:`shopsync.logs.register_secret` as soon as it is read.
"""

from __future__ import annotations

import secrets

from shopsync.logs import register_secret
from shopsync.runtime import Installation
from shopsync.store import repo

HOOK_TOKEN = "serve:hook_token"
"""The path segment that makes ``/hooks/webcrm/<token>`` and ``/hooks/webshop/<token>``
unguessable (webCRM signs nothing, so knowing the address is the only proof)."""
WEBSHOP_SECRET = "serve:webshop_secret"
"""The secret of the shop's webhook subscription (the shop never shows it again)."""
WEBSHOP_SUBSCRIPTION = "serve:webshop_subscription"
"""The id of that subscription, to tell ours from an older one to the same address."""


def get(inst: Installation, key: str) -> str | None:
    with inst.session() as s:
        value = repo.get_meta(s, key)
    register_secret(value)
    return value


def put(inst: Installation, key: str, value: str) -> None:
    register_secret(value)
    with inst.session() as s:
        repo.set_meta(s, key, value)
        s.commit()


def get_or_create(inst: Installation, key: str) -> str:
    value = get(inst, key)
    if value is None:
        value = new_secret()
        put(inst, key, value)
    return value


def new_secret() -> str:
    """256 random bits, URL-safe (fits a path segment and the shop's 16..256 characters)."""
    return secrets.token_urlsafe(32)
