"""Named locks across processes, as rows with an expiry (the same on SQLite and
PostgreSQL).

These functions commit or roll back themselves, since a lock must be visible to other
processes at once: :mod:`shopsync.locking` gives them a session of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shopsync.store.models import Lock
from shopsync.store.repo._common import as_utc, now


def lock_owner(s: Session, name: str) -> str | None:
    row = s.get(Lock, name)
    return row.owner if row is not None else None


def try_lock(
    s: Session,
    name: str,
    owner: str,
    ttl: timedelta,
    alive: Callable[[str], bool | None] | None = None,
) -> bool:
    """Take (or renew) a named lock across processes; False when another owner holds it.

    Works the same on SQLite and PostgreSQL: a row per lock with an expiry. Another
    owner's lock is taken over only when it is provably gone: ``alive(owner)`` says
    False (its process ended), or cannot tell (None: another host) and the lease
    lapsed. The take-over is a compare-and-set on the owner seen, so of two processes
    racing for a dead holder's lock only one wins.
    """
    t = now()
    row = s.execute(select(Lock.owner, Lock.expires_at).where(Lock.name == name)).first()
    if row is None:
        s.add(Lock(name=name, owner=owner, expires_at=t + ttl))
        try:
            s.commit()
        except Exception:
            s.rollback()
            return False
        return True
    holder, expires = row
    if holder != owner:
        verdict = alive(holder) if alive is not None else None
        lapsed = (as_utc(expires) or t) < t
        if verdict is True or (verdict is None and not lapsed):
            s.rollback()
            return False
    res = s.execute(
        update(Lock)
        .where(Lock.name == name, Lock.owner == holder)
        .values(owner=owner, expires_at=t + ttl)
    )
    s.commit()
    return bool(getattr(res, "rowcount", 0))


def renew_lock(s: Session, name: str, owner: str, ttl: timedelta) -> bool:
    """Extend ``owner``'s lease; False when it no longer holds the lock."""
    res = s.execute(
        update(Lock).where(Lock.name == name, Lock.owner == owner).values(expires_at=now() + ttl)
    )
    s.commit()
    return bool(getattr(res, "rowcount", 0))


def release_lock(s: Session, name: str, owner: str) -> None:
    s.execute(delete(Lock).where(Lock.name == name, Lock.owner == owner))
    s.commit()
