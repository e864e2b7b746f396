"""Small, explicit operations on the state tables, used by the engine and the CLI.

Every function takes the caller's :class:`~sqlalchemy.orm.Session`, so the caller
decides what commits together (a processed record's link, snapshot and inbox removal,
or a staged page and its cursor advance).

One module per table or concern, all re-exported here: callers write
``from shopsync.store import repo`` and ``repo.add_link(...)``, and tests patch a
function on this package (``repo.stage_page``), which is where callers look it up.

- ``links``: which webCRM record is which webshop record
- ``snapshots``: the values both sides last agreed on, and their fingerprints
- ``fingerprints``: the digests themselves, computed without the database
- ``inbox``: records read and waiting to be processed
- ``merge_keys``: the keys by which unlinked records are matched (rule 2)
- ``put_asides``: records the engine could not process, and why
- ``intents``: idempotency keys of creates, and which were sent
- ``meta``: cursors, meta values, update counts (rule 9), runs
- ``locks``: named locks across processes
- ``_common``: the clock, UTC, and the WHERE terms the others share
"""

from __future__ import annotations

from shopsync.store.repo._common import (
    as_utc,
    now,
)
from shopsync.store.repo.fingerprints import (
    FINGERPRINT_FORM,
    fingerprint,
    is_current_fingerprint,
    older_values_fingerprints,
    values_fingerprint,
)
from shopsync.store.repo.inbox import (
    inbox_batch,
    inbox_children,
    inbox_counts,
    inbox_get,
    inbox_ids_among,
    inbox_parents,
    inbox_record_ids,
    inbox_rows,
    set_waiting,
    stage,
    stage_page,
    waiting,
)
from shopsync.store.repo.intents import (
    clear_intents_many,
    has_intent,
    intent_key,
    intent_keys,
    mark_sent,
    open_intents,
    sent_intents,
    unsend_intents,
)
from shopsync.store.repo.links import (
    active_links,
    add_link,
    children,
    count_links,
    line_links_of_orders,
    link_by_id,
    link_by_webcrm,
    link_by_webshop,
    link_ids_for,
    link_rows_for,
    linked_ids,
    links_for,
    missing_webcrm_ids,
    orm_link,
    select_links,
    set_link_state,
)
from shopsync.store.repo.locks import (
    lock_owner,
    release_lock,
    renew_lock,
    try_lock,
)
from shopsync.store.repo.merge_keys import (
    clear_merge_keys,
    clear_merge_keys_many,
    find_by_merge_key,
    holders_of_keys,
    replace_merge_keys,
)
from shopsync.store.repo.meta import (
    add_updates,
    get_cursor,
    get_meta,
    recent_runs,
    set_cursor,
    set_meta,
    start_run,
    update_counts,
)
from shopsync.store.repo.put_asides import (
    all_put_aside,
    clear_put_aside,
    get_put_aside,
    put_aside,
    put_aside_ids,
)
from shopsync.store.repo.snapshots import (
    agreed_fingerprints,
    agreed_values,
    get_snapshot,
    line_fingerprints_of_orders,
    put_snapshot,
    refresh_fingerprints,
    side_values,
    snapshots_for,
)

__all__ = [
    "FINGERPRINT_FORM",
    "active_links",
    "add_link",
    "add_updates",
    "agreed_fingerprints",
    "agreed_values",
    "all_put_aside",
    "as_utc",
    "children",
    "clear_intents_many",
    "clear_merge_keys",
    "clear_merge_keys_many",
    "clear_put_aside",
    "count_links",
    "find_by_merge_key",
    "fingerprint",
    "get_cursor",
    "get_meta",
    "get_put_aside",
    "get_snapshot",
    "has_intent",
    "holders_of_keys",
    "inbox_batch",
    "inbox_children",
    "inbox_counts",
    "inbox_get",
    "inbox_ids_among",
    "inbox_parents",
    "inbox_record_ids",
    "inbox_rows",
    "intent_key",
    "intent_keys",
    "is_current_fingerprint",
    "line_fingerprints_of_orders",
    "line_links_of_orders",
    "link_by_id",
    "link_by_webcrm",
    "link_by_webshop",
    "link_ids_for",
    "link_rows_for",
    "linked_ids",
    "links_for",
    "lock_owner",
    "mark_sent",
    "missing_webcrm_ids",
    "now",
    "older_values_fingerprints",
    "open_intents",
    "orm_link",
    "put_aside",
    "put_aside_ids",
    "put_snapshot",
    "recent_runs",
    "refresh_fingerprints",
    "release_lock",
    "renew_lock",
    "replace_merge_keys",
    "select_links",
    "sent_intents",
    "set_cursor",
    "set_link_state",
    "set_meta",
    "set_waiting",
    "side_values",
    "snapshots_for",
    "stage",
    "stage_page",
    "start_run",
    "try_lock",
    "unsend_intents",
    "update_counts",
    "values_fingerprint",
    "waiting",
]
