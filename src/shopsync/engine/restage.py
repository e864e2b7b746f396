"""Records into the inbox on demand, fresh from their system: for ``shopsync retry``
(a put-aside record tried again), for ``sync --record`` and a service's hook that names
a record (:func:`stage_targets`, in the run itself), and for a console's "retry" button.
The run syncs each like any staged record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype
from shopsync.connectors.webshop.client import WebshopGone
from shopsync.engine.matching import Matcher
from shopsync.engine.model import WEBCRM, WEBSHOP
from shopsync.engine.policies import POLICIES
from shopsync.engine.ports import WebcrmPort, WebshopPort
from shopsync.engine.streams import STREAMS, parse_time, webcrm_updated
from shopsync.store import repo

if TYPE_CHECKING:
    from shopsync.engine.context import RunContext
    from shopsync.engine.staging import Stager

log = structlog.get_logger("shopsync.engine")

Targets = Mapping[Datatype, Mapping[str, Sequence[str]]]
"""Records to sync on demand: datatype → system (``webcrm``/``webshop``) → record ids."""


def read_record(
    webcrm: WebcrmPort, webshop: WebshopPort, dt: Datatype, system: str, record_id: str
) -> dict[str, Any] | None:
    """The record as its system holds it now; None when it is gone."""
    stream = STREAMS[dt]
    if system == WEBCRM:
        return webcrm.get(stream.webcrm_entity, int(record_id))
    if stream.webshop_collection is None:
        return None  # a webshop line lives inside its order
    return webshop.get(stream.webshop_collection, record_id)


def record_id(dt: Datatype, system: str, value: object) -> str:
    """``value`` as the id of a ``dt`` record on ``system``; ValueError naming what is
    wrong (an id from a command line or a hook body is checked before it is used)."""
    if system not in (WEBCRM, WEBSHOP):
        raise ValueError(f"{system!r} is no system: say webcrm or webshop")
    if not readable_alone(dt, system):
        raise ValueError(
            f"a webshop {dt.value} record cannot be read alone: name its order instead"
        )
    text = str(value).strip()
    if system == WEBCRM:
        if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
            raise ValueError(f"{text!r} is no webCRM id (a whole number from 1)")
        return str(int(text))
    if not text or len(text) > 128 or "/" in text or not text.isprintable():
        raise ValueError(f"{text!r} is no webshop id (1-128 visible characters, no '/')")
    return text


def parse_target(text: str) -> tuple[Datatype, str, str]:
    """``DATATYPE:SYSTEM:ID`` (``customers:webcrm:42``) as its three parts."""
    parts = text.split(":", 2)
    if len(parts) != 3:
        raise ValueError(f"{text!r} is not DATATYPE:SYSTEM:ID (e.g. customers:webcrm:42)")
    name, system, rid = parts
    try:
        dt = Datatype(name)
    except ValueError:
        names = ", ".join(d.value for d in Datatype)
        raise ValueError(f"{name!r} is no datatype: say one of {names}") from None
    return dt, system, record_id(dt, system, rid)


def readable_alone(dt: Datatype, system: str) -> bool:
    """Whether a record of ``dt`` on ``system`` can be read by its id (a webshop order
    line cannot: it lives inside its order, which is what a caller names instead)."""
    return system == WEBCRM or STREAMS[dt].webshop_collection is not None


def stage_targets(
    ctx: RunContext, stager: Stager, dt: Datatype, system: str, ids: Iterable[str]
) -> None:
    """Read each named record by id and stage it, as the cursor's read would have.

    A record its system no longer has (404, or the shop's 410) is staged as deleted when
    it is linked (rule 5 then applies), so a ``Delete`` hook needs no sweep; an unlinked
    one is nobody's business. A record read back unchanged (our own write, seen through
    its hook) is dropped by the same fingerprint check as a page read by cursor.
    Cursors are not moved: the next read since the cursor sees these records again and
    finds them unchanged.
    """
    if not readable_alone(dt, system):
        raise ValueError(f"a {system} record of {dt.value} cannot be read by its id")
    stats = ctx.report.stats[dt]
    for rid in dict.fromkeys(ids):
        try:
            data = read_record(ctx.webcrm, ctx.webshop, dt, system, rid)
        except WebshopGone:
            data = None
        if data is None:
            link = repo.link_by_id(ctx.session, dt.value, system, rid)
            if link is not None and link.state == "active":
                parent = link.parent.webcrm_id if link.parent is not None else None
                stager.stage_deleted(dt, system, rid, parent)
                ctx.plan(dt, "gone", "-", f"{system}:{rid}", "read by id: no longer there")
            continue
        if stager.unreadable(dt, system, rid, data):
            continue
        stager.collect(dt, rid, _updated(dt, system, data), data)
        if system == WEBCRM:
            stats.read_webcrm += 1
        else:
            stats.read_webshop += 1
    stager.flush(dt, system)
    ctx.commit()


def _updated(dt: Datatype, system: str, data: Mapping[str, Any]) -> datetime | None:
    stream = STREAMS[dt]
    return webcrm_updated(stream, data) if system == WEBCRM else parse_time(data.get("updated_at"))


def stage_record(
    s: Session,
    config: Config,
    dt: Datatype,
    system: str,
    record_id: str,
    data: dict[str, Any],
) -> None:
    """Stage ``data`` (read just now) with its merge keys, as a page of one."""
    page = [(record_id, _updated(dt, system, data), data, POLICIES[dt].parent_of(data))]
    repo.stage_page(s, dt.value, system, page)
    if POLICIES[dt].keeps_merge_keys:
        keys = Matcher(config).keys(dt, system, data)
        repo.replace_merge_keys(s, dt.value, system, {record_id: keys})


def retry_put_aside(
    s: Session,
    config: Config,
    webcrm: WebcrmPort,
    webshop: WebshopPort,
    datatype: Datatype | None = None,
) -> int:
    """Clear put-aside entries (of ``datatype``, or all) and stage their records again,
    fresh from their system where it can be read alone (a webshop line cannot: the copy
    kept with the entry is staged for its order's next reconciliation). Returns how
    many entries were cleared; the caller commits."""
    n = 0
    for entry in repo.all_put_aside(s, datatype.value if datatype else None):
        dt = Datatype(entry.datatype)
        data: dict[str, Any] | None = entry.data
        if dt is not Datatype.order_lines:
            data = read_record(webcrm, webshop, dt, entry.system, entry.record_id)
        repo.clear_put_aside(s, entry.datatype, entry.system, entry.record_id)
        if data is not None and (dt is not Datatype.order_lines or entry.system == WEBCRM):
            stage_record(s, config, dt, entry.system, entry.record_id, data)
        n += 1
    log.info("put-aside records staged again", count=n)
    return n
