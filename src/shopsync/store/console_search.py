"""The console's search (``service/console``): links by id or by a word of their label.

Each link's label is cut into *terms* (a word with the words after it) kept in
``console_terms``, so that finding a prefix is a range scan of that table's key whose
time does not grow with the link count (``bench/console_load.py``). The console's
ingest loop indexes links in id order and remembers how far it got (``TERMS_UPTO``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
from sqlalchemy.orm import Session

from shopsync.store.chunks import among, in_chunks
from shopsync.store.models import ConsoleTerm, Link, Snapshot
from shopsync.store.repo import get_meta, set_meta

TERMS_UPTO = "console:terms_upto"
"""Meta key: every link with an id up to this one has its search terms."""
MAX_TERM = 128
"""Characters a term keeps (the key of ``console_terms``)."""


def link_by_either_id(s: Session, record_id: str, datatype: str | None = None) -> list[Link]:
    """Links whose webCRM or webshop id is ``record_id`` (each lookup is one probe of a
    unique (datatype, id) index)."""
    from shopsync.config.model import Datatype

    dts = [datatype] if datatype else [dt.value for dt in Datatype]
    found: list[Link] = []
    for dt in dts:
        found.extend(
            s.scalars(
                select(Link).where(
                    Link.datatype == dt,
                    or_(Link.webcrm_id == record_id, Link.webshop_id == record_id),
                )
            ).all()
        )
    return found


def search(s: Session, q: str, datatype: str | None, limit: int) -> list[Link]:
    """Links whose id is ``q``, then links with a label word starting with ``q`` (a range
    scan of the terms' primary key, so the time does not grow with the link count)."""
    needle = " ".join(q.split())
    if not needle:
        return []
    found = {link.id: link for link in link_by_either_id(s, needle, datatype)}
    prefix = normalize(needle)[:MAX_TERM]
    if not prefix:
        return list(found.values())[:limit]
    upper = prefix + "\U0010ffff"
    term_q = (
        select(Link)
        .join(ConsoleTerm, ConsoleTerm.link_id == Link.id)
        .where(and_(ConsoleTerm.term >= prefix, ConsoleTerm.term < upper))
    )
    if datatype:
        term_q = term_q.where(Link.datatype == datatype)
    for link in s.scalars(term_q.order_by(ConsoleTerm.term, Link.id).limit(limit * 3)):
        if len(found) >= limit:
            break
        found.setdefault(link.id, link)
    return list(found.values())[:limit]


_SPLIT = re.compile(r"[\s·,;/|()\[\]\"']+")


def terms_of(label: str) -> set[str]:
    """Each word of a label with the words after it, lower-cased, separators dropped
    (``"ACME-1 · Oak chair"`` → ``acme-1 oak chair``, ``oak chair``, ``chair``), so that a
    prefix of any word, or of several words in a row, is a prefix of one term."""
    words = normalize(label).split(" ")
    return {" ".join(words[i:])[:MAX_TERM] for i in range(len(words)) if words[i]}


def normalize(text: str) -> str:
    """Lower-cased words separated by one space (how terms and queries are compared)."""
    return " ".join(w for w in _SPLIT.split(text.casefold()) if w)


def index_terms(s: Session, labels: Mapping[int, str]) -> None:
    """Replace the search terms of these links (one DELETE, one executemany INSERT)."""
    if not labels:
        return
    for chunk in in_chunks(labels):
        s.execute(delete(ConsoleTerm).where(among(ConsoleTerm.link_id, chunk)))
    rows = [{"term": t, "link_id": lid} for lid, label in labels.items() for t in terms_of(label)]
    if rows:
        s.execute(insert(ConsoleTerm), rows)


def terms_upto(s: Session) -> int:
    return int(get_meta(s, TERMS_UPTO) or 0)


def links_after(s: Session, after: int, limit: int) -> Sequence[tuple[int, str, Any]]:
    """(link id, datatype, snapshot props) of links past ``after``, in id order."""
    rows = s.execute(
        select(Link.id, Link.datatype, Snapshot.props)
        .outerjoin(Snapshot, Snapshot.link_id == Link.id)
        .where(Link.id > after)
        .order_by(Link.id)
        .limit(limit)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def set_terms_upto(s: Session, link_id: int) -> None:
    set_meta(s, TERMS_UPTO, str(link_id))
