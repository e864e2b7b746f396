"""One sync at a time per installation, across processes and machines.

The lock is a row in the state database (``locks``), so it works for SQLite and for
PostgreSQL shared by several workers. A holder killed with SIGKILL frees it: on the
same host its process id is checked, elsewhere the lock expires after its TTL.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from shopsync.store import repo

TTL = timedelta(minutes=30)


class Busy(Exception):
    """Another process holds the lock."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _stale(owner: str) -> bool:
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@contextmanager
def exclusive(sessions: sessionmaker[Session], name: str = "sync") -> Iterator[None]:
    owner = _owner()
    with sessions() as s:
        if not repo.try_lock(s, name, owner, TTL, stale=_stale):
            holder = repo.lock_owner(s, name) or "?"
            raise Busy(f"another shopsync process holds the '{name}' lock ({holder})")
    try:
        yield
    finally:
        with sessions() as s:
            repo.release_lock(s, name, owner)
