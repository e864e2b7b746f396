"""Rule 5, deletes: what a record deleted on one side does to its pair.

webCRM cannot delete organisations or opportunities through its API, and the shop
keeps products it sold: a product deleted in webCRM is deactivated in the shop
(``active: false``), any other webCRM delete unlinks; a webshop delete unlinks (with
the order's lines) and, where the datatype's policy says so, marks the webCRM record
(an order's opportunity is marked lost). Lines are deleted on the other side, per
order (:mod:`engine.lines`).
"""

from __future__ import annotations

from shopsync.config.model import Datatype
from shopsync.engine.context import RunContext
from shopsync.engine.model import WEBCRM, WEBSHOP, Batch, Item, pair_label
from shopsync.engine.policies import POLICIES
from shopsync.store import repo
from shopsync.store.rows import InboxEntry, LinkEntry


def plan_delete(
    ctx: RunContext, dt: Datatype, row: InboxEntry, link: LinkEntry | None, batch: Batch
) -> None:
    """Rule 5: a webCRM delete deactivates (products) or unlinks; a webshop delete
    unlinks, with its children, and marks the webCRM record (orders: lost)."""
    policy = POLICIES[dt]
    repo.clear_merge_keys(ctx.session, dt.value, row.system, row.record_id)
    if link is None or link.state != "active":
        batch.done(row)
        return
    ctx.report.stats[dt].deleted += 1
    label = pair_label(link.webcrm_id, link.webshop_id)
    if row.system == WEBCRM:
        repo.set_link_state(ctx.session, link, "webcrm_deleted")
        patch = policy.on_webcrm_delete()
        if patch is None:
            batch.done(row)
            return
        item = Item(dt, WEBCRM, link=link, c_row=row, crm_id=link.webcrm_id)
        item.shop_id = link.webshop_id
        if ctx.share(dt, WEBSHOP).enabled:
            item.shop_body = dict(patch)
        ctx.plan(dt, "deactivate", WEBSHOP, link.webshop_id, "deleted in webCRM", link=link)
        batch.items.append(item)
        return
    repo.set_link_state(ctx.session, link, "webshop_deleted")
    ctx.plan(dt, "unlink", "-", label, "deleted in the webshop", link=link)
    if policy.children is not None:
        for child in repo.children(ctx.session, link):
            child.state = "webshop_deleted"
    patch = policy.on_webshop_delete()
    if patch is None or not ctx.share(dt, WEBCRM).enabled:
        batch.done(row)
        return
    item = Item(dt, WEBSHOP, link=link, s_row=row, crm_id=link.webcrm_id)
    item.crm_body = dict(patch)
    ctx.plan(dt, "mark lost", WEBCRM, link.webcrm_id, "order deleted in the webshop", link=link)
    batch.items.append(item)
