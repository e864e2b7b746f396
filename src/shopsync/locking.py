"""One sync at a time per installation, across processes and machines: a lease.

The lock is a row in the state database (``locks``), so it works for SQLite and for
PostgreSQL shared by several workers. It is a *lease*: taken for ``lease`` seconds and
renewed by a heartbeat thread every quarter of that while the run lives, so a run may
last as long as it needs. Another process takes it over only when the holder is
provably gone:

* the holder ran on this host and its process no longer exists (SIGKILL, a crash): at
  once;
* the holder ran on another host and its lease lapsed (no heartbeat for a whole lease):
  then. A holder on this host whose process still runs is never taken over, however old
  its lease.

The holder stops writing to either system as soon as it cannot prove it still holds
the lease: :meth:`Lease.check` (called before every write, see :func:`guarded`) fails
once the last successful renewal is older than three quarters of the lease, or a
renewal found another owner. So a holder frozen for longer than its lease (a suspended
VM) wakes up, finds its lease stale, and stops before it writes anything.

On SQLite (a file: one host) the holder's process is the proof: renewals are still
written, but a late one never stops the run. A second process may find the database
busy with the first one's writes; that is the same clean refusal (:class:`Busy`) as a
held lock.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from shopsync.store import repo

log = structlog.get_logger("shopsync.lock")

LEASE = timedelta(seconds=60)
WRITES = frozenset({"upsert", "create", "update", "delete", "write_many"})
"""The connector methods that change a system: each first checks the lease."""

T = TypeVar("T")


class Busy(Exception):
    """Another process holds the lock."""


class LockLost(Exception):
    """This process can no longer prove it holds the lock: it must stop writing."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def alive(owner: str) -> bool | None:
    """Whether a lock owner's process runs: True or False when it ran on this host,
    None when that cannot be known from here (another host)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """A held lock, renewed in the background while the run lives."""

    def __init__(
        self, sessions: sessionmaker[Session], name: str, owner: str, lease: timedelta
    ) -> None:
        self.sessions = sessions
        self.name = name
        self.owner = owner
        self.lease = lease
        self.renewed = time.monotonic()
        self.lost: str | None = None
        self.local = sessions.kw["bind"].dialect.name == "sqlite"
        """SQLite lives on one host: a holder whose process runs is never taken over
        there, so a late renewal (the database busy with the run's own writes) is no
        reason to stop."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.lease.total_seconds())

    def check(self) -> None:
        """Raise :class:`LockLost` unless this process provably still holds the lock."""
        if self.lost is not None:
            raise LockLost(self.lost)
        age = time.monotonic() - self.renewed
        if not self.local and age > 0.75 * self.lease.total_seconds():
            raise LockLost(
                f"the '{self.name}' lock was last renewed {age:.0f} s ago (lease "
                f"{self.lease.total_seconds():.0f} s): stopping before writing anything more"
            )

    def renew(self) -> None:
        """One renewal: extend the lease, or note that another process has the lock."""
        started = time.monotonic()
        with self.sessions() as s:
            held = repo.renew_lock(s, self.name, self.owner, self.lease)
        if held:
            self.renewed = started
        else:
            self.lost = f"another process took over the '{self.name}' lock"
            log.error("lock lost", lock=self.name)

    def _beat(self) -> None:
        interval = self.lease.total_seconds() / 4
        while self.lost is None and not self._stop.wait(interval):
            try:
                self.renew()
            except Exception as exc:  # the database is away: check() decides when to stop
                log.warning("lock renewal failed", lock=self.name, error=type(exc).__name__)


@contextmanager
def exclusive(
    sessions: sessionmaker[Session], name: str = "sync", lease: timedelta = LEASE
) -> Iterator[Lease]:
    """Hold ``name`` for the duration of the block, or raise :class:`Busy`."""
    owner = _owner()
    try:
        with sessions() as s:
            if not repo.try_lock(s, name, owner, lease, alive=alive):
                holder = repo.lock_owner(s, name) or "?"
                raise Busy(f"another shopsync process holds the '{name}' lock ({holder})")
    except OperationalError as exc:
        if "locked" not in str(exc).lower():
            raise
        raise Busy(
            f"another shopsync process is writing the state database (SQLite reports it "
            f"locked), so the '{name}' lock cannot be taken now"
        ) from None
    held = Lease(sessions, name, owner, lease)
    held.start()
    try:
        yield held
    finally:
        held.stop()
        with sessions() as s:
            repo.release_lock(s, name, owner)


def guarded(connector: T, lease: Lease) -> T:
    """``connector`` with every write checking ``lease`` first (see :data:`WRITES`)."""
    return _Guarded(connector, lease.check)  # type: ignore[return-value]


class _Guarded:
    def __init__(self, inner: Any, check: Callable[[], None]) -> None:
        self._inner = inner
        self._check = check

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in WRITES:
            return attr

        def write(*args: Any, **kwargs: Any) -> Any:
            self._check()
            return attr(*args, **kwargs)

        return write
