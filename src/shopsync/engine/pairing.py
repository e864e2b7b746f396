"""Pairing: for an inbox row, its link, snapshot and the other side's row, looked up a
batch at a time; for a record not linked yet, the one record of the other side that is
the same by the merge criteria (rule 2), decided by :meth:`Matcher.choose`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import structlog

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.matching import Outcome, key_variants
from shopsync.engine.model import WEBCRM, WEBSHOP, Hold, other
from shopsync.engine.policies import POLICIES
from shopsync.engine.recorder import Recorder
from shopsync.engine.streams import STREAMS
from shopsync.store import repo
from shopsync.store.rows import InboxEntry, LinkEntry, LinkRow, SnapshotEntry

log = structlog.get_logger("shopsync.engine")

Match = tuple[str, InboxEntry | None, dict[str, Any], str]
"""``(other side's id, its inbox row if staged, its data, the merge key that matched)``."""


class KeyLookup:
    """The ``merge_keys`` table as :meth:`Matcher.choose` reads it."""

    def __init__(self, pairing: Pairing, dt: Datatype) -> None:
        self.pairing = pairing
        self.dt = dt

    def holders(self, system: str, key: str) -> Sequence[str]:
        known = self.pairing.holders.get((system, key))
        if known is not None:
            return known
        return repo.find_by_merge_key(self.pairing.ctx.session, self.dt.value, system, key)

    def keys_of(self, system: str, record_id: str) -> Sequence[str] | None:
        ctx = self.pairing.ctx
        row = repo.inbox_get(ctx.session, self.dt.value, system, record_id)
        data = row.data if row is not None else self.pairing.fetch(self.dt, system, record_id)
        return None if data is None else ctx.matcher.keys(self.dt, system, data)


class Pairing:
    def __init__(self, ctx: RunContext, recorder: Recorder) -> None:
        self.ctx = ctx
        self.recorder = recorder
        self._links: dict[tuple[str, str], LinkEntry | None] = {}
        self._snaps: dict[int, SnapshotEntry | None] = {}
        self._inbox: dict[tuple[str, str], InboxEntry | None] = {}
        self._aside: set[tuple[str, str]] = set()
        self.holders: dict[tuple[str, str], list[str]] = {}
        """(system, merge key) → the records holding it, for the keys of a batch's
        unlinked records, read in one query per side (:meth:`prefetch`)."""

    def prefetch(self, dt: Datatype, rows: Sequence[InboxEntry]) -> None:
        """Load what planning a batch needs in a few queries instead of several per row."""
        s = self.ctx.session
        ids = {WEBCRM: [r.record_id for r in rows if r.system == WEBCRM],
               WEBSHOP: [r.record_id for r in rows if r.system == WEBSHOP]}  # fmt: skip
        self._links = {}
        # Plain rows, but for orders: their links are what their lines' links hang from.
        # One object per link, read from either side, so what is set on it is seen.
        plain = POLICIES[dt].children is None
        seen: dict[int, LinkRow] = {}
        for system, wanted in ids.items():
            for rid in wanted:
                self._links[(system, rid)] = None
            found: Sequence[LinkEntry]
            if plain:
                rows_read = repo.link_rows_for(s, dt.value, system, wanted)
                found = [seen.setdefault(ln.id, ln) for ln in rows_read]
            else:
                found = repo.links_for(s, dt.value, system, wanted)
            for link in found:
                rid = link.webcrm_id if system == WEBCRM else link.webshop_id
                self._links[(system, rid)] = link
        links = [ln for ln in self._links.values() if ln is not None]
        self._snaps = {ln.id: None for ln in links}
        self._snaps.update(repo.snapshots_for(s, [ln.id for ln in links]))
        self._inbox = {}
        for system in (WEBCRM, WEBSHOP):
            others = [
                (ln.webshop_id if system == WEBCRM else ln.webcrm_id)
                for (sys_, _), ln in self._links.items()
                if ln is not None and sys_ == system
            ]
            target = other(system)
            for rid in others:
                self._inbox[(target, rid)] = None
            for row in repo.inbox_rows(s, dt.value, target, others):
                self._inbox[(target, row.record_id)] = row
        self._aside = set()
        for system, wanted in ids.items():
            for rid in repo.put_aside_ids(s, dt.value, system, wanted):
                self._aside.add((system, rid))
                self.recorder.aside_seen.add((dt.value, system, rid))
        self._prefetch_holders(dt, rows)

    def _prefetch_holders(self, dt: Datatype, rows: Sequence[InboxEntry]) -> None:
        """Who holds the merge keys of the batch's unlinked records, on both sides."""
        keys: set[str] = set()
        matcher = self.ctx.matcher
        for row in rows:
            if row.deleted or row.data is None or self._links.get((row.system, row.record_id)):
                continue
            try:
                own = matcher.keys(dt, row.system, row.data)
            except Exception:  # unreadable for the matcher: choose() looks it up itself
                continue
            # choose() also asks for each key's variants (a VAT number without its country)
            keys.update(variant for key in own for variant in (key, *key_variants(key)))
        self.holders = {}
        if not keys:
            return
        for system in (WEBCRM, WEBSHOP):
            found = repo.holders_of_keys(self.ctx.session, dt.value, system, sorted(keys))
            for key in keys:
                self.holders[(system, key)] = found.get(key, [])

    def forget_holders(self) -> None:
        """Merge keys were removed: what :meth:`prefetch` read is no longer true."""
        self.holders = {}

    def link_for(self, dt: Datatype, system: str, rid: str) -> LinkEntry | None:
        key = (system, rid)
        if key in self._links:
            return self._links[key]
        return repo.link_by_id(self.ctx.session, dt.value, system, rid)

    def snapshot_for(self, link: LinkEntry) -> SnapshotEntry | None:
        if link.id in self._snaps:
            return self._snaps[link.id]
        return repo.get_snapshot(self.ctx.session, link)

    def inbox_for(self, dt: Datatype, system: str, rid: str) -> InboxEntry | None:
        key = (system, rid)
        if key in self._inbox:
            return self._inbox[key]
        return repo.inbox_get(self.ctx.session, dt.value, system, rid)

    def still_put_aside(self, dt: Datatype, row: InboxEntry) -> bool:
        """Put aside before and unchanged since: not retried (rule 7)."""
        if (row.system, row.record_id) not in self._aside:
            return False
        entry = repo.get_put_aside(self.ctx.session, dt.value, row.system, row.record_id)
        if entry is None:
            return False
        return entry.fingerprint == self.recorder.fingerprint(dt, row.system, row.data or {})

    @staticmethod
    def stale(row: InboxEntry, snap: SnapshotEntry | None) -> bool:
        """A staged version older than the one the snapshot already agreed on."""
        if snap is None or row.updated_at is None:
            return False
        seen = snap.webcrm_updated_at if row.system == WEBCRM else snap.webshop_updated_at
        seen, staged = repo.as_utc(seen), repo.as_utc(row.updated_at)
        return seen is not None and staged is not None and staged < seen

    def find_match(
        self, dt: Datatype, row: InboxEntry, claimed_ids: set[int]
    ) -> Match | Hold | None:
        """The one record on the other side that is this record (rule 2), decided by
        :meth:`Matcher.choose` over the ``merge_keys`` table; None: create it.

        A :class:`Hold` instead says why not: the key's holder is being worked on in
        this pass (often this record's own create, coming back: the next pass sees it
        linked), or the key is ambiguous and ``[matching] on_ambiguous`` puts it aside.
        """
        assert row.data is not None
        ctx, target = self.ctx, other(row.system)
        claimed = self._claimed_test(dt, target, claimed_ids)

        def taken(rid: str) -> bool:
            return repo.link_by_id(ctx.session, dt.value, target, rid) is not None or claimed(rid)

        decision = ctx.matcher.choose(
            dt, row.system, row.data, KeyLookup(self, dt), record_id=row.record_id, taken=taken
        )
        if decision.outcome is Outcome.match and decision.candidate is not None:
            candidate = decision.candidate
            other_row = repo.inbox_get(ctx.session, dt.value, target, candidate)
            if other_row is not None and other_row.data is not None:
                return candidate, other_row, other_row.data, decision.key or ""
            data = self.fetch(dt, target, candidate)
            if data is not None:
                return candidate, None, data, decision.key or ""
            repo.clear_merge_keys(ctx.session, dt.value, target, candidate)
            self.forget_holders()
            return None
        if decision.outcome is Outcome.ambiguous:
            busy = [rid for rid in decision.taken if claimed(rid)]
            if busy:
                return Hold(f"{target} record {busy[0]} with {decision.key} is being synced")
            if ctx.config.matching.on_ambiguous == "put_aside":
                return Hold(decision.reason, aside=True)
        return None

    def _claimed_test(self, dt: Datatype, target: str, ids: set[int]) -> Callable[[str], bool]:
        def claimed(rid: str) -> bool:
            other_row = repo.inbox_get(self.ctx.session, dt.value, target, rid)
            return other_row is not None and other_row.id in ids

        return claimed

    def fetch(self, dt: Datatype, system: str, rid: str) -> dict[str, Any] | None:
        """One record read from its system; None when it is gone or unreadable."""
        stream, ctx = STREAMS[dt], self.ctx
        try:
            if system == WEBCRM:
                return ctx.webcrm.get(stream.webcrm_entity, int(rid))
            assert stream.webshop_collection is not None
            return ctx.webshop.get(stream.webshop_collection, rid)
        except Exception as exc:  # gone (410) or unreadable: treat as absent
            log.info("fetch failed", datatype=dt.value, system=system, id=rid, error=str(exc))
            return None
