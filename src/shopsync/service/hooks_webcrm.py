"""webCRM hooks: registered on start, received at ``/hooks/webcrm/<token>``.

webCRM signs nothing, so the unguessable token in the address is what sets a genuine
call apart from anyone else's. Even a genuine call is only a *hint*: its body is never
used as data (webCRM does not publish it; it may be stale, reordered or retried). It
names at most which record of which entity changed and how; the service then reads
that record by its id through the API (a record that is gone is a delete), or, when
the body names no usable id, that datatype's changes since its cursor.

Registration is idempotent: of the hooks that point at this service (our address, or
any address ending in our token, e.g. after ``public_url`` changed), one per entity and
event is kept or repaired, the rest are removed; missing ones are created. Restarting
the service therefore never piles up duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from shopsync.config.model import Datatype
from shopsync.engine.restage import record_id

PATH = "/hooks/webcrm/"
ENTITIES: dict[str, Datatype] = {
    "Organisation": Datatype.customers,
    "Product": Datatype.products,
    "Opportunity": Datatype.orders,
    "QuotationLine": Datatype.order_lines,
}
EVENTS = ("Create", "Update", "Delete")
SWEPT = frozenset({"Product", "QuotationLine"})
"""Entities whose deletes no change feed reports: a ``Delete`` hint asks for a sweep."""


class HookApi(Protocol):
    def hooks(self, entity: str) -> list[dict[str, Any]]: ...

    def create_hook(self, entity: str, hook: Mapping[str, Any]) -> int: ...

    def update_hook(self, entity: str, id: int, hook: Mapping[str, Any]) -> None: ...

    def delete_hook(self, entity: str, id: int) -> None: ...


@dataclass
class Registration:
    kept: int = 0
    created: int = 0
    repaired: int = 0
    removed: int = 0


def target_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + PATH + token


def _ours(hook: Mapping[str, Any], public_url: str | None, token: str | None) -> bool:
    url = hook.get("TargetUrl")
    if not isinstance(url, str):
        return False
    if token is not None and url.endswith(PATH + token):
        return True
    return public_url is not None and url.startswith(public_url.rstrip("/") + PATH)


def _wanted(url: str, event: str) -> dict[str, Any]:
    return {"TargetUrl": url, "EventType": event, "IsEnabled": True, "Filter": ["All"]}


def register(api: HookApi, public_url: str, token: str) -> Registration:
    """Make webCRM call ``public_url`` for every event of the four entities, once each."""
    url = target_url(public_url, token)
    done = Registration()
    for entity in ENTITIES:
        have: dict[str, int] = {}
        spare: list[int] = []
        for hook in api.hooks(entity):
            if not _ours(hook, public_url, token):
                continue  # another integration's hook: not ours to touch
            event, hid = hook.get("EventType"), int(hook["Id"])
            exact = (
                hook.get("TargetUrl") == url
                and hook.get("IsEnabled") is True
                and hook.get("Filter") in (["All"], None)
            )
            if isinstance(event, str) and event in EVENTS and event not in have and exact:
                have[event] = hid
                done.kept += 1
            else:
                spare.append(hid)
        for event in EVENTS:
            if event in have:
                continue
            if spare:
                api.update_hook(entity, spare.pop(0), _wanted(url, event))
                done.repaired += 1
            else:
                api.create_hook(entity, _wanted(url, event))
                done.created += 1
        for hid in spare:
            api.delete_hook(entity, hid)
            done.removed += 1
    return done


def unregister(api: HookApi, public_url: str | None, token: str | None) -> int:
    """Remove every hook that points at this service; returns how many."""
    removed = 0
    for entity in ENTITIES:
        for hook in api.hooks(entity):
            if _ours(hook, public_url, token):
                api.delete_hook(entity, int(hook["Id"]))
                removed += 1
    return removed


@dataclass(frozen=True)
class Hint:
    datatypes: tuple[Datatype, ...]
    sweep: bool = False
    entity: str | None = None
    event: str | None = None
    record_id: str | None = None
    """The webCRM id the body names, checked as one (None: read the datatype)."""

    @property
    def deleted(self) -> bool:
        return self.event == "Delete"


def hint_from(body: Any) -> Hint:
    """Which record of which datatype a hook call is about. A body that names no known
    entity is still a hint that *something* changed: every datatype is read (cheap when
    nothing did). A ``Delete`` that names no usable id asks for a sweep of the entities
    whose deletes no change feed reports."""
    entity = body.get("EntityType") if isinstance(body, dict) else None
    event = body.get("EventType") if isinstance(body, dict) else None
    if not isinstance(entity, str) or entity not in ENTITIES:
        return Hint(tuple(Datatype))
    event = event if isinstance(event, str) else None
    dt = ENTITIES[entity]
    raw = body.get(f"{entity}Id", body.get("Id"))
    try:
        rid = None if raw is None else record_id(dt, "webcrm", raw)
    except ValueError:
        rid = None
    sweep = event == "Delete" and entity in SWEPT and rid is None
    return Hint((dt,), sweep, entity, event, rid)
