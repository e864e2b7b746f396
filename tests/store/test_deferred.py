"""Set-based writes of loaded rows (:mod:`shopsync.store.deferred`), on both databases:
a pending update is in the database before the session's next statement, a rollback
drops it, and inbox rows leave in one DELETE, added ones unadded."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from shopsync.store import deferred, repo
from shopsync.store.models import InboxRecord, Link, Snapshot
from shopsync.store.rows import InboxRow, LinkRow, SnapshotRow


def _linked_with_snapshot(s: Session) -> Link:
    link = repo.add_link(s, "customers", "1", "cus_1", "webcrm")
    repo.put_snapshot(s, link, {"name": {"c": "A", "s": "A"}}, None, None, 1)
    s.commit()
    return link


def test_an_update_is_in_the_database_before_the_next_statement(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        link = _linked_with_snapshot(s)
        snap = s.get(Snapshot, link.id)
        assert snap is not None and deferred.is_loaded(s, snap)
        repo.put_snapshot(s, link, {"name": {"c": "B", "s": "B"}}, None, None, 2, known=snap)
        assert snap.props["name"]["c"] == "B"  # the session answers with the new values
        assert not s.dirty  # ... without tracking the object as changed
        # a Core query in the same transaction sees the new row
        props = s.execute(text("SELECT webshop_version FROM snapshots")).scalar_one()
        assert props == 2
        fps = repo.agreed_fingerprints(s, "customers", "webcrm", ["1"])
        assert fps["1"] == repo.values_fingerprint({"name": "B"})
        s.commit()
    with sessions() as s:
        stored = s.get(Snapshot, link.id)
        assert stored is not None and stored.props == {"name": {"c": "B", "s": "B"}}
        assert stored.webshop_version == 2


def test_a_rollback_drops_pending_updates(sessions: sessionmaker[Session]) -> None:
    with sessions() as s:
        link = _linked_with_snapshot(s)
        link_id = link.id
        snap = s.get(Snapshot, link_id)
        assert snap is not None
        repo.put_snapshot(s, link, {"name": {"c": "C", "s": "C"}}, None, None, 3, known=snap)
        s.rollback()
        s.commit()  # nothing pending may be sent by a later commit
    with sessions() as s:
        stored = s.get(Snapshot, link_id)
        assert stored is not None and stored.props["name"]["c"] == "A"


def test_inbox_rows_leave_loaded_ones_deleted_added_ones_unadded(
    sessions: sessionmaker[Session],
) -> None:
    with sessions() as s:
        for rid in ("1", "2", "3"):
            repo.stage(s, "customers", "webcrm", rid, updated_at=None, data={"x": rid})
        s.commit()
        loaded = list(s.scalars(select(InboxRecord).order_by(InboxRecord.record_id)))
        repo.stage(s, "customers", "webcrm", "4", updated_at=None, data={"x": "4"})
        added = next(iter(s.new))
        deferred.delete_inbox_rows(s, [loaded[0], loaded[2], added])
        s.commit()
    with sessions() as s:
        assert repo.inbox_record_ids(s, "customers", "webcrm") == ["2"]


def test_many_updates_carry_every_column_and_empty_values(
    sessions: sessionmaker[Session],
) -> None:
    """Several snapshots in one statement (an array per column on PostgreSQL): each row
    gets its own values, None and non-ASCII included, and each link its own time."""
    from datetime import UTC, datetime

    seen = datetime(2026, 5, 1, 12, 30, tzinfo=UTC)
    with sessions() as s:
        links = [repo.add_link(s, "customers", str(i), f"cus_{i}", "webcrm") for i in range(3)]
        for link in links:
            repo.put_snapshot(s, link, {"name": {"c": "A", "s": "A"}}, None, None, None)
        s.commit()
        snaps = [s.get(Snapshot, link.id) for link in links]
        before = {link.id: link.updated_at for link in links}
        for i, (link, snap) in enumerate(zip(links, snaps, strict=True)):
            props = {"name": {"c": f"Århus {i}", "s": f"Århus {i}"}, "vat": {"c": None, "s": None}}
            repo.put_snapshot(
                s, link, props, seen if i == 1 else None, seen if i == 2 else None,
                i or None, known=snap,
            )  # fmt: skip
        s.commit()
    with sessions() as s:
        rows = {
            r.link_id: r
            for r in s.scalars(select(Snapshot).where(Snapshot.link_id.in_([x.id for x in links])))
        }
        for i, link in enumerate(links):
            row = rows[link.id]
            assert row.props == {"name": {"c": f"Århus {i}", "s": f"Århus {i}"},
                                 "vat": {"c": None, "s": None}}  # fmt: skip
            assert repo.as_utc(row.webcrm_updated_at) == (seen if i == 1 else None)
            assert repo.as_utc(row.webshop_updated_at) == (seen if i == 2 else None)
            assert row.webshop_version == (i or None)
            assert row.webcrm_fp == repo.values_fingerprint({"name": f"Århus {i}", "vat": None})
            stored = s.get(Link, link.id)
            assert stored is not None
            assert repo.as_utc(stored.updated_at) > repo.as_utc(before[link.id])


VALUES: tuple[object, ...] = ("plain", 2**70)


def test_times_keep_their_microseconds_and_a_huge_number_takes_the_slow_road(
    sessions: sessionmaker[Session],
) -> None:
    """Times sent in a batch of updates come back to the microsecond, whether the JSON
    document of the batch was written by orjson or (an integer past 64 bits in a value,
    which orjson refuses) by ``json``."""
    from datetime import UTC, datetime

    at = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    with sessions() as s:
        links = [repo.add_link(s, "customers", str(i), f"cus_{i}", "webcrm") for i in range(2)]
        for link in links:
            repo.put_snapshot(s, link, {"name": {"c": "A", "s": "A"}}, None, None, None)
        s.commit()
        snaps = {link.id: s.get(Snapshot, link.id) for link in links}
        for batch, text_value in enumerate(VALUES):
            link = links[batch]
            props = {"name": {"c": text_value, "s": text_value}}
            repo.put_snapshot(s, link, props, at, at, None, known=snaps[link.id])
            deferred.send(s)
        s.commit()
    with sessions() as s:
        for link, text_value in zip(links, VALUES, strict=True):
            row = s.get(Snapshot, link.id)
            assert row is not None
            assert repo.as_utc(row.webcrm_updated_at) == at
            assert repo.as_utc(row.webshop_updated_at) == at
            assert row.props["name"]["c"] == text_value


def test_plain_rows_leave_by_id_and_take_their_orm_copies_with_them(
    sessions: sessionmaker[Session],
) -> None:
    """A batch is read as plain rows; the same row may also be loaded as an ORM object
    (a look-up by record id). Deleting the plain row takes the ORM copy out of the
    session too: a change made to the copy is not flushed to a row that is gone."""
    with sessions() as s:
        for rid in ("1", "2", "3"):
            repo.stage(s, "customers", "webcrm", rid, updated_at=None, data={"x": rid})
        s.commit()
        plain = repo.inbox_batch(s, "customers", 0, 10)
        assert [r.record_id for r in plain] == ["1", "2", "3"]
        assert all(isinstance(r, InboxRow) for r in plain)
        twin = repo.inbox_get(s, "customers", "webcrm", "1")
        assert twin is not None
        twin.waiting_reason = "changed after the plain row was read"
        deferred.delete_inbox_rows(s, [plain[0], plain[2]])
        assert twin not in s
        s.commit()
    with sessions() as s:
        assert repo.inbox_record_ids(s, "customers", "webcrm") == ["2"]


def test_a_plain_row_set_waiting_is_written_at_once(sessions: sessionmaker[Session]) -> None:
    """A plain row has no change tracking: ``set_waiting`` writes its reason and attempts
    by id, and so does an ORM row through the session; both count the attempt."""
    with sessions() as s:
        for rid in ("1", "2"):
            repo.stage(s, "customers", "webcrm", rid, updated_at=None, data={"x": rid})
        s.commit()
        plain = repo.inbox_rows(s, "customers", "webcrm", ["1"])[0]
        repo.set_waiting(s, plain, "waiting for a customer")
        repo.set_waiting(s, plain, "still waiting")
        orm = repo.inbox_get(s, "customers", "webcrm", "2")
        assert orm is not None
        repo.set_waiting(s, orm, "waiting for a product")
        assert (plain.waiting_reason, plain.attempts) == ("still waiting", 2)
        s.commit()
    with sessions() as s:
        got = {
            r.record_id: (r.waiting_reason, r.attempts)
            for r in repo.inbox_batch(s, "customers", 0, 10)
        }
        assert got == {"1": ("still waiting", 2), "2": ("waiting for a product", 1)}


def test_plain_rows_hold_what_the_orm_reads(sessions: sessionmaker[Session]) -> None:
    """Every column of an :class:`InboxRow` is the value the ORM object holds."""
    from dataclasses import fields
    from datetime import UTC, datetime

    at = datetime(2026, 5, 1, 12, 30, 15, 250000, tzinfo=UTC)
    with sessions() as s:
        repo.stage(s, "order_lines", "webcrm", "7", updated_at=at, data={"q": [1, "ø"]},
                   parent_id="70")  # fmt: skip
        repo.stage(s, "order_lines", "webcrm", "8", updated_at=None, data=None, deleted=True)
        s.commit()
        plain = repo.inbox_batch(s, "order_lines", 0, 10)
        orm = list(s.scalars(select(InboxRecord).order_by(InboxRecord.id)))
        assert len(plain) == len(orm) == 2
        for p, o in zip(plain, orm, strict=True):
            for f in fields(InboxRow):
                assert getattr(p, f.name) == getattr(o, f.name), f.name


def test_a_plain_snapshot_is_written_by_link_id_and_its_orm_copy_follows(
    sessions: sessionmaker[Session],
) -> None:
    """A batch reads snapshots as plain rows; written back, the row is in the database
    before the next statement, and an ORM copy of it the session holds (a look-up one
    link at a time) answers with the new values too, not with what it loaded."""
    from dataclasses import fields

    with sessions() as s:
        link = _linked_with_snapshot(s)
        orm = s.get(Snapshot, link.id)
        assert orm is not None
        plain = repo.snapshots_for(s, [link.id])[link.id]
        assert isinstance(plain, SnapshotRow)
        for f in fields(SnapshotRow):
            assert getattr(plain, f.name) == getattr(orm, f.name), f.name
        repo.put_snapshot(s, link, {"name": {"c": "D", "s": "D"}}, None, None, 4, known=plain)
        assert plain.props["name"]["c"] == "D" and plain.webshop_version == 4
        assert orm.props["name"]["c"] == "D" and orm.webshop_version == 4
        assert repo.get_snapshot(s, link) is orm and not s.dirty
        version = s.execute(text("SELECT webshop_version FROM snapshots")).scalar_one()
        assert version == 4
        s.commit()
    with sessions() as s:
        stored = s.get(Snapshot, link.id)
        assert stored is not None and stored.props == {"name": {"c": "D", "s": "D"}}
        assert stored.webcrm_fp == repo.values_fingerprint({"name": "D"})


def test_plain_links_hold_what_the_orm_reads_and_write_back_by_id(
    sessions: sessionmaker[Session],
) -> None:
    """A batch of customers or products reads its links as plain rows: each holds what
    the ORM object holds; touched, its ``updated_at`` is in the database before the
    next statement; unlinked, its ``state`` at once; an ORM copy the session holds
    answers with both new values, without being dirty."""
    from dataclasses import fields
    from datetime import UTC, datetime

    with sessions() as s:
        link = _linked_with_snapshot(s)
        link_id = link.id
        s.expunge_all()
        [plain] = repo.link_rows_for(s, "customers", "webshop", ["cus_1", "cus_2"])
        assert isinstance(plain, LinkRow)
        orm = s.get(Link, link_id)
        assert orm is not None
        for f in fields(LinkRow):
            assert getattr(plain, f.name) == getattr(orm, f.name), f.name
        at = datetime(2026, 6, 1, 8, 0, 0, 123456, tzinfo=UTC)
        deferred.touch_link(s, plain, at)
        repo.set_link_state(s, plain, "webshop_deleted")
        assert (plain.updated_at, plain.state) == (at, "webshop_deleted")
        assert (orm.updated_at, orm.state) == (at, "webshop_deleted") and not s.dirty
        assert repo.orm_link(s, plain) is orm
        row = s.execute(select(Link.state, Link.updated_at)).one()
        assert row.state == "webshop_deleted" and repo.as_utc(row.updated_at) == at
        # a snapshot added for a plain link (none was stored) is related by its id
        s.execute(text("DELETE FROM snapshots"))
        repo.put_snapshot(s, plain, {"name": {"c": "E", "s": "E"}}, None, None, 5)
        s.commit()
    with sessions() as s:
        stored = s.get(Link, link_id)
        assert stored is not None and stored.state == "webshop_deleted"
        touched = repo.as_utc(stored.updated_at)  # by the snapshot written last
        assert touched is not None and touched > at
        snap = s.get(Snapshot, link_id)
        assert snap is not None and snap.props == {"name": {"c": "E", "s": "E"}}
