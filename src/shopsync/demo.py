"""``shopsync demo``: the whole product, locally, with no credentials and no setup.

It starts the webCRM emulator and the reference webshop on free local ports with seed
data (some customers and products exist on both sides, so onboarding merge has work),
runs the initial sync, shows that a second sync writes nothing, then edits records on
both sides the way people do (one edit per side, one conflicting edit, a delete, a new
order with lines in the shop), syncs again and tells what happened and why.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from shopsync.config.model import Config, Datatype, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.launch import RunningServer, start_webcrm_emulator, start_webshop_server
from shopsync.engine.report import RunReport
from shopsync.runtime import Installation

console = Console()

AUTH_CODE = "00000000-demo-demo-demo-000000000000"
SHOP_TOKEN = "demo-webshop-token"


@contextmanager
def servers(
    workdir: Path, *, organisations: int, customers: int
) -> Iterator[tuple[RunningServer, RunningServer]]:
    crm = start_webcrm_emulator(
        workdir / "webcrm.sqlite", auth_code=AUTH_CODE, seed=organisations,
        log_path=workdir / "webcrm.log",
    )  # fmt: skip
    try:
        shop = start_webshop_server(
            str(workdir / "webshop.sqlite"), token=SHOP_TOKEN, seed=customers,
            log_path=workdir / "webshop.log",
        )  # fmt: skip
        try:
            yield crm, shop
        finally:
            shop.stop()
    finally:
        crm.stop()


def demo_config(crm: RunningServer, shop: RunningServer, workdir: Path) -> Config:
    from pydantic import SecretStr

    return Config(
        webcrm=WebcrmConfig(base_url=crm.url, auth_code=SecretStr(AUTH_CODE)),
        webshop=WebshopConfig(base_url=shop.url, token=SecretStr(SHOP_TOKEN)),
        state=StateConfig(url=f"sqlite:///{workdir / 'shopsync-state.sqlite'}"),
    )


def run_demo(workdir: Path | None = None, organisations: int = 30, customers: int = 15) -> int:
    """Run the demo; returns the process exit code (0 when everything behaved)."""
    own_dir = workdir is None
    tmp = tempfile.TemporaryDirectory(prefix="shopsync-demo-") if own_dir else None
    base = Path(tmp.name) if tmp is not None else workdir
    assert base is not None
    base.mkdir(parents=True, exist_ok=True)
    try:
        return _run(base, organisations, customers)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _run(workdir: Path, organisations: int, customers: int) -> int:
    console.rule("[bold]shopsync demo")
    console.print(f"working in {workdir}")
    with servers(workdir, organisations=organisations, customers=customers) as (crm, shop):
        console.print(f"webCRM emulator:    {crm.url}  (docs: {crm.url}/docs)")
        console.print(f"reference webshop:  {shop.url}  (contract: {shop.url}/openapi.json)")
        with Installation(demo_config(crm, shop, workdir)) as inst:
            console.rule("1. initial sync: link what matches, create the rest")
            first = inst.sync()
            show(first, limit=12)
            console.rule("2. sync again: nothing changed, so nothing is written")
            second = inst.sync()
            show(second, plan=False)
            if second.writes:
                console.print(f"[red]expected no writes, got {second.writes}[/red]")
                return 1
            console.rule("3. people edit both systems")
            story = edit_both_sides(inst)
            for line in story:
                console.print(f" • {line}")
            time.sleep(0.05)
            third = inst.sync()
            console.rule("4. sync: what happened and why")
            show(third)
            console.rule("5. sync again: converged")
            fourth = inst.sync()
            show(fourth, plan=False)
            if fourth.writes:
                console.print(f"[red]expected no writes, got {fourth.writes}[/red]")
                return 1
    console.print(
        Panel.fit(
            "Demo finished: both systems agree, and a converged sync writes nothing.\n"
            "Next: `shopsync init` writes a configuration for your own webCRM and webshop.",
            style="green",
        )
    )
    return 0


def show(report: RunReport, *, plan: bool = True, limit: int = 40) -> None:
    if plan and report.plan:
        table = Table("link", "action", "on", "record", "why / what", title="what the sync did")
        for line in report.plan[:limit]:
            table.add_row(line.datatype, line.action, line.target, line.record, line.detail[:90])
        if len(report.plan) > limit:
            table.add_row("…", f"{len(report.plan) - limit} more", "", "", "")
        console.print(table)
    table = Table(title="summary")
    for col in (
        "link",
        "created",
        "updated",
        "merged",
        "unchanged",
        "deleted",
        "conflicts",
        "waiting",
        "put aside",
    ):
        table.add_column(col)
    for dt, st in report.stats.items():
        table.add_row(
            dt.value,
            f"{st.created_in_webshop}→shop {st.created_in_webcrm}→CRM",
            f"{st.updated_in_webshop}→shop {st.updated_in_webcrm}→CRM",
            str(st.linked_by_merge), str(st.unchanged), str(st.deleted), str(st.conflicts),
            str(st.waiting), str(st.put_aside),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"requests: webCRM {report.webcrm_requests}, webshop {report.webshop_requests}; "
        f"writes {report.writes}; {report.seconds:.1f} s"
    )


def edit_both_sides(inst: Installation) -> list[str]:
    """Make the demo's edits through the public APIs, as a person's tools would."""
    from shopsync.store import repo

    story: list[str] = []
    crm, shop = inst.webcrm, inst.webshop
    with inst.session() as s:
        customer_links = list(repo.active_links(s, Datatype.customers.value))
        product_links = list(repo.active_links(s, Datatype.products.value))
    if len(customer_links) < 3 or len(product_links) < 2:
        raise RuntimeError("the demo's seed data produced too few links")
    # 1. a one-sided edit in webCRM
    a = customer_links[0]
    crm.upsert(
        "Organisation",
        [{"OrganisationId": int(a.webcrm_id), "OrganisationTelephone": "+45 70 20 30 40"}],
    )
    story.append(f"webCRM: organisation {a.webcrm_id} gets a new phone number")
    # 2. a one-sided edit in the webshop
    b = customer_links[1]
    shop.update("customers", b.webshop_id, {"website": "https://www.nyt-domæne.dk"})
    story.append(f"webshop: customer {b.webshop_id} gets a new website")
    # 3. a conflicting edit: both sides rename the same customer; the webshop edit is later
    c = customer_links[2]
    crm.upsert(
        "Organisation",
        [{"OrganisationId": int(c.webcrm_id), "OrganisationName": "Ærø Møbler ApS (CRM)"}],
    )
    time.sleep(0.05)
    shop.update("customers", c.webshop_id, {"name": "Ærø Møbler ApS (shop)"})
    story.append(
        f"both: customer {c.webcrm_id}/{c.webshop_id} renamed on both sides; "
        "the webshop edit is the later one, so it wins"
    )
    # 4. a delete: a product deleted in webCRM becomes inactive in the shop
    p = product_links[0]
    crm.delete("Product", int(p.webcrm_id))
    story.append(f"webCRM: product {p.webcrm_id} deleted (the shop keeps it, inactive)")
    # 5. a new order with lines in the shop
    q = product_links[1]
    product = shop.get("products", q.webshop_id) or {}
    order: dict[str, Any] = {
        "order_number": f"WS-DEMO-{int(time.time())}",
        "customer_id": a.webshop_id,
        "status": "confirmed",
        "currency": "DKK",
        "order_date": time.strftime("%Y-%m-%d"),
        "discount_percent": "0",
        "notes": "Bestilt i webshoppen — levering fredag",
        "lines": [
            {
                "sku": product.get("sku"),
                "product_id": q.webshop_id,
                "description": product.get("name"),
                "quantity": "2",
                "unit_price": product.get("unit_price") or "100.00",
                "list_price": product.get("list_price"),
                "cost_price": product.get("cost_price"),
                "discount_percent": "0",
                "vat_rate": product.get("vat_rate") or "25",
                "position": 1,
            },
            {
                "sku": None,
                "product_id": None,
                "description": "Fragt",
                "quantity": "1",
                "unit_price": "99.00",
                "list_price": None,
                "cost_price": None,
                "discount_percent": "0",
                "vat_rate": "25",
                "position": 2,
            },
        ],
    }
    created = shop.create("orders", order, idempotency_key=f"demo-{order['order_number']}")
    story.append(
        f"webshop: new order {created['order_number']} with 2 lines for customer {a.webshop_id}"
    )
    return story
