"""One record into the inbox on demand, fresh from its system: for ``shopsync retry``
(a put-aside record tried again), for a service's hook that names a record, and for a
console's "retry" button. The next run of its datatype syncs it like any staged record.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.orm import Session

from shopsync.config.model import Config, Datatype
from shopsync.engine.matching import Matcher
from shopsync.engine.model import WEBCRM
from shopsync.engine.policies import POLICIES
from shopsync.engine.ports import WebcrmPort, WebshopPort
from shopsync.engine.streams import STREAMS, parse_time, webcrm_updated
from shopsync.store import repo

log = structlog.get_logger("shopsync.engine")


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


def stage_record(
    s: Session,
    config: Config,
    dt: Datatype,
    system: str,
    record_id: str,
    data: dict[str, Any],
) -> None:
    """Stage ``data`` (read just now) with its merge keys, as a page of one."""
    stream = STREAMS[dt]
    updated = (
        webcrm_updated(stream, data) if system == WEBCRM else parse_time(data.get("updated_at"))
    )
    page = [(record_id, updated, data, POLICIES[dt].parent_of(data))]
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
