"""The sync lock as a lease (issue 8): renewed while the run lives, taken over only when
the holder is provably gone, and a holder that cannot prove it still holds it stops."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from shopsync import locking
from shopsync.locking import Busy, LockLost, exclusive, guarded
from shopsync.store import db, repo
from shopsync.store.models import Lock

LEASE = timedelta(seconds=1.2)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.sqlite'}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = db.make_engine(url)
    db.ensure_current(engine, auto_upgrade=True)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def _expire(sessions: sessionmaker[Session], name: str = "sync") -> None:
    """What a lease that nobody renewed for a long time looks like."""
    with sessions() as s:
        s.execute(update(Lock).where(Lock.name == name).values(expires_at=repo.now() - LEASE))
        s.commit()


def _wait_until(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_the_lease_is_renewed_while_the_holder_lives(sessions: sessionmaker[Session]) -> None:
    with exclusive(sessions, lease=LEASE) as held:
        with sessions() as s:
            first = repo.as_utc(s.get(Lock, "sync").expires_at)  # type: ignore[union-attr]
        # renewals every lease/4: the expiry moves on, the holder stays valid well past
        # the first lease
        _wait_until(lambda: time.monotonic() - held.renewed < 0.5 and _expiry(sessions) > first)
        time.sleep(LEASE.total_seconds() * 1.5)
        held.check()
        with pytest.raises(Busy, match="holds the 'sync' lock"), exclusive(sessions, lease=LEASE):
            pass
    with exclusive(sessions, lease=LEASE):
        pass  # released


def _expiry(sessions: sessionmaker[Session]) -> object:
    with sessions() as s:
        row = s.get(Lock, "sync")
        return repo.as_utc(row.expires_at) if row else None


def test_a_live_holder_on_this_host_is_never_taken_over(
    sessions: sessionmaker[Session],
) -> None:
    """The lease of a running process moved into the past (as 31 minutes of a long sync
    did with the old fixed expiry): a second process still refuses."""
    with exclusive(sessions, lease=LEASE) as held:
        held.stop()  # no more renewals
        _expire(sessions)
        with pytest.raises(Busy), exclusive(sessions, lease=LEASE):
            pass


def test_a_lapsed_lease_of_another_host_is_taken_over_and_its_holder_stops(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with exclusive(sessions, lease=LEASE) as held:
        held.stop()
        # the holder looks like another host's process from here: only the lease counts
        monkeypatch.setattr(locking, "alive", lambda owner: None)
        with pytest.raises(Busy), exclusive(sessions, lease=LEASE):
            pass  # not lapsed yet
        _expire(sessions)
        with exclusive(sessions, lease=LEASE):
            # the old holder's renewal finds another owner: it must stop writing
            held.renew()
            with pytest.raises(LockLost, match="took over"):
                held.check()


def test_a_holder_that_could_not_renew_stops_before_writing(
    sessions: sessionmaker[Session],
) -> None:
    """A frozen process (a suspended VM) wakes up: its last renewal is too old, so its
    writes are refused before they reach either system. (On SQLite, one host, a live
    holder is never taken over, so there only a lost lock stops it.)"""
    writes: list[str] = []

    class Connector:
        requests_made = 0

        def upsert(self, entity: str, records: list[dict[str, object]]) -> None:
            writes.append(entity)

        def get(self, entity: str, id: int) -> None:
            return None

    with exclusive(sessions, lease=LEASE) as held:
        connector = guarded(Connector(), held)
        connector.upsert("Organisation", [])
        held.stop()
        held.renewed -= LEASE.total_seconds()  # as if frozen for a whole lease
        if held.local:
            connector.upsert("Organisation", [])
            held.lost = "another process took over the 'sync' lock"
        with pytest.raises(LockLost):
            connector.upsert("Organisation", [])
        assert connector.get("Organisation", 1) is None  # reads are not guarded
        assert connector.requests_made == 0
    assert writes == ["Organisation"] * (2 if held.local else 1)


def test_a_dead_holder_on_this_host_is_taken_over_at_once(
    sessions: sessionmaker[Session],
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    import socket

    with sessions() as s:
        owner = f"{socket.gethostname()}:{dead.stdout.strip()}:abcd"
        assert repo.try_lock(s, "sync", owner, timedelta(minutes=30))
    with exclusive(sessions, lease=LEASE):
        pass
