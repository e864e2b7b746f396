"""``shopsync check``: can shopsync read and write both systems, and how much is there?

For each datatype it shows, per system, whether a read works, whether the write path
accepts our credentials, and how many records there are; then the webCRM rate-limit
headroom. Nothing is changed in either system:

* **webCRM write probe: an empty bulk write** (``PATCH /<Entity>`` with ``[]``). It
  goes through authentication, routing and the write endpoint with our token and
  upserts nothing. It proves the token may call the write endpoint; it cannot prove
  that a particular record would be accepted (webCRM has no dry-run). Writing an
  existing record back unchanged was rejected as a probe: it is not a no-op (it moves
  ``…UpdatedAt`` and fires hooks), and it would need a record to exist.
* **Webshop write probe: a conditional update that must fail.** ``PATCH`` of an existing
  record with ``If-Match: "0"`` (versions start at 1) and an empty patch must answer
  412 — that proves the token, the write route and the shop's ``If-Match`` support
  without changing anything. In an empty collection, an empty ``POST`` that must be
  refused with 422 proves the write route instead.

Exit status: 0 all good; 1 a datatype failed; 2 the configuration is unusable;
3 a system refused the credentials; 4 a system cannot be reached.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shopsync.config.loader import ConfigError, load_config
from shopsync.config.model import Config, Datatype
from shopsync.logs import mask_url, scrub

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_AUTH, EXIT_UNREACHABLE = 0, 1, 2, 3, 4
EXIT_PROBLEMS = 5
"""``sync``: the run finished, and put records aside (``shopsync problems`` lists them)."""

WEBCRM_ENTITY = {
    Datatype.customers: "Organisation",
    Datatype.products: "Product",
    Datatype.orders: "Opportunity",
    Datatype.order_lines: "QuotationLine",
}
LABEL = {
    Datatype.customers: "Organisations ⇄ customers",
    Datatype.products: "Products ⇄ products",
    Datatype.orders: "Opportunities ⇄ orders",
    Datatype.order_lines: "Quotation lines ⇄ order lines",
}
T = TypeVar("T")


@dataclass
class Cell:
    """One system's result for one datatype."""

    read: str = "–"
    write: str = "–"
    records: str = "–"
    ok: bool = True


@dataclass
class SystemReport:
    name: str
    cells: dict[Datatype, Cell] = field(default_factory=dict)
    fatal: str | None = None
    exit_code: int = EXIT_OK
    notes: list[str] = field(default_factory=list)


def _ok(text: str = "ok") -> str:
    return f"[green]✓[/] {escape(scrub(text))}"


def _fail(text: str) -> str:
    return f"[red]✗[/] {escape(scrub(text))}"


def _attempt(cell: Cell, fn: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run one probe; an error marks the cell failed and comes back as text."""
    try:
        return fn(), None
    except Exception as exc:  # every failure is reported in the table, not raised
        cell.ok = False
        return None, str(exc)


# --------------------------------------------------------------------------- webCRM
def check_webcrm(config: Config) -> SystemReport:
    from shopsync.connectors.webcrm.client import WebcrmAuthError, WebcrmUnavailable
    from shopsync.runtime import open_webcrm

    report = SystemReport("webCRM")
    if config.webcrm.auth_code is None:
        report.fatal = (
            "no application token: set SHOPSYNC_WEBCRM_AUTH_CODE or [webcrm] auth_code; "
            "create one in webCRM under Configuration › Integration › API"
        )
        report.exit_code = EXIT_CONFIG
        return report
    with open_webcrm(config.webcrm) as client:
        try:
            client.login()
        except WebcrmAuthError as exc:
            report.fatal, report.exit_code = str(exc), EXIT_AUTH
            return report
        except WebcrmUnavailable as exc:
            report.fatal, report.exit_code = str(exc), EXIT_UNREACHABLE
            return report
        for dt, entity in WEBCRM_ENTITY.items():
            cell = Cell()
            report.cells[dt] = cell
            count, error = _attempt(cell, partial(client.count, entity))
            if error is not None:
                cell.read = _fail(error)
            else:
                cell.read, cell.records = _ok(), f"{count:,}"
            _, error = _attempt(cell, partial(client.probe_write, entity))
            cell.write = _fail(error) if error else _ok("empty PATCH accepted")
        window = config.webcrm.rate_window_seconds
        report.notes.append(
            f"rate limit: {client.rate_headroom()} of {client.limiter.limit} requests left "
            f"in the current {window:g} s window (this check used {client.requests_made}"
            f"{', ' + str(client.responses_429) + ' answered 429' if client.responses_429 else ''})"
        )
        if client.last_rate_headers:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(client.last_rate_headers.items()))
            report.notes.append(f"server says: {shown}")
    return report


# --------------------------------------------------------------------------- webshop
def check_webshop(config: Config) -> SystemReport:
    from shopsync.connectors.webshop.client import WebshopAuthError, WebshopUnavailable
    from shopsync.runtime import open_webshop

    report = SystemReport("webshop")
    if config.webshop.token is None:
        report.fatal = "no webshop token: set SHOPSYNC_WEBSHOP_TOKEN or [webshop] token"
        report.exit_code = EXIT_CONFIG
        return report
    with open_webshop(config.webshop) as client:
        try:
            client.first_record("customers")
        except WebshopAuthError as exc:
            report.fatal, report.exit_code = str(exc), EXIT_AUTH
            return report
        except WebshopUnavailable as exc:
            report.fatal, report.exit_code = str(exc), EXIT_UNREACHABLE
            return report
        for dt, collection in (
            (Datatype.customers, "customers"),
            (Datatype.products, "products"),
        ):
            cell = Cell()
            report.cells[dt] = cell
            count, error = _attempt(cell, partial(client.count, collection))
            cell.read, cell.records = (_fail(error), "–") if error else (_ok(), f"{count:,}")
            proof, error = _attempt(cell, partial(client.probe_write, collection))
            cell.write = _fail(error) if error else _ok(str(proof))

        orders, lines = Cell(), Cell()
        report.cells[Datatype.orders], report.cells[Datatype.order_lines] = orders, lines

        def count_orders() -> tuple[int, int]:
            n_orders = n_lines = 0
            for page in client.iter_changes("orders", None, include_deleted=False):
                n_orders += len(page.items)
                n_lines += sum(len(o.get("lines") or []) for o in page.items)
            return n_orders, n_lines

        counts, error = _attempt(orders, count_orders)
        if counts is None:
            orders.read = lines.read = _fail(str(error))
            lines.ok = False
        else:
            orders.read, orders.records = _ok(), f"{counts[0]:,}"
            lines.read, lines.records = _ok("inside orders"), f"{counts[1]:,}"
        proof, error = _attempt(orders, lambda: client.probe_write("orders"))
        orders.write = _fail(str(error)) if error else _ok(str(proof))
        lines.write = orders.write if error else _ok("written with their order")
        lines.ok = lines.ok and orders.ok
        if client.last_rate_headers:
            shown = ", ".join(f"{k}: {v}" for k, v in sorted(client.last_rate_headers.items()))
            report.notes.append(f"server says: {shown}")
        else:
            report.notes.append(
                f"no rate limit advertised; this check used {client.requests_made} requests"
            )
    return report


# --------------------------------------------------------------------------- output
def render(console: Console, config: Config, reports: list[SystemReport]) -> None:
    table = Table(title="shopsync check", show_lines=True)
    table.add_column("datatype")
    for report in reports:
        table.add_column(f"{report.name} read")
        table.add_column(f"{report.name} write")
        table.add_column(f"{report.name} records", justify="right")
    for dt in Datatype:
        row = [LABEL[dt]]
        for report in reports:
            cell = report.cells.get(dt)
            if cell is None:
                row += ["[dim]not checked[/]", "[dim]not checked[/]", "–"]
            else:
                row += [cell.read, cell.write, cell.records]
        table.add_row(*row)
    console.print(Text(f"webCRM:  {mask_url(config.webcrm.base_url)}"), highlight=False)
    console.print(Text(f"webshop: {mask_url(config.webshop.base_url)}"), highlight=False)
    console.print(table)
    for report in reports:
        if report.fatal:
            console.print(
                Text.assemble((f"{report.name}:", "bold red"), " ", scrub(report.fatal)),
                highlight=False,
                soft_wrap=True,  # a URL or a path stays on one line
            )
        for note in report.notes:
            console.print(Text(f"{report.name}: {scrub(note)}"), highlight=False, soft_wrap=True)


def _quiet_logs() -> None:
    """Unless the program configured structlog already, keep the clients' debug and info
    lines (retries are warnings) out of the table: warnings and up, on stderr."""
    import logging

    import structlog

    from shopsync.logs import _stderr_logger

    if not structlog.is_configured():
        structlog.configure(
            wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
            logger_factory=_stderr_logger,
        )


def run_check(
    config_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """Load the configuration, check both systems, print the table; returns the exit status."""
    console = console or Console()
    _quiet_logs()
    try:
        config = load_config(config_path, env=os.environ if env is None else env)
    except ConfigError as exc:
        console.print("[bold red]configuration error[/]", highlight=False)
        console.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        return EXIT_CONFIG
    reports = [check_webcrm(config), check_webshop(config)]
    render(console, config, reports)
    fatal = [r.exit_code for r in reports if r.exit_code != EXIT_OK]
    if fatal:
        return max(fatal)
    failed = any(not c.ok for r in reports for c in r.cells.values())
    return EXIT_FAILED if failed else EXIT_OK
