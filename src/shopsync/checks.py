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
* **What a first sync would put aside.** The records counted are read once, a page at a
  time, and each goes through what the engine does when it creates it on the other side
  (:mod:`shopsync.engine.preflight`): per datatype and direction, how many would be put
  aside and why, and how often a default stood in for an empty webCRM field. Only counts
  are kept. It adds no request: the count reads the records anyway.

Exit status: 0 all good; 1 a datatype failed; 2 the configuration is unusable;
3 a system refused the credentials; 4 a system cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from shopsync.config.loader import ConfigError, load_config
from shopsync.config.model import Config, Datatype, System
from shopsync.logs import mask_url, scrub

if TYPE_CHECKING:  # the mapping loads lazily: `shopsync --help` imports this module
    from shopsync.engine.preflight import Preflight, Tally

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
    count: int | None = None
    """The records counted (``records`` as a number), None when reading failed."""


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
def _read_counted(
    pages: Iterable[list[dict[str, Any]]],
    tally: Tally,
    take: Callable[[list[dict[str, Any]]], None],
) -> int:
    """Count the records of every page, handing each page to the preflight; a read that
    fails leaves the tally marked incomplete (the error goes to the table)."""
    n = 0
    try:
        for page in pages:
            n += len(page)
            take(page)
    except Exception:
        tally.complete = False
        raise
    return n


def check_webcrm(config: Config, preflight: Preflight | None = None) -> SystemReport:
    from shopsync.connectors.webcrm.client import WebcrmAuthError, WebcrmUnavailable
    from shopsync.engine.preflight import Preflight
    from shopsync.runtime import open_webcrm

    preflight = preflight or Preflight(config)
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
            count, error = _attempt(
                cell,
                partial(
                    _read_counted,
                    client.iter_all(entity),
                    preflight.tally(dt, System.webcrm),
                    partial(preflight.webcrm_records, dt),
                ),
            )
            if count is None:
                cell.read = _fail(str(error))
            else:
                cell.read, cell.records, cell.count = _ok(), f"{count:,}", count
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
def check_webshop(config: Config, preflight: Preflight | None = None) -> SystemReport:
    from shopsync.connectors.webshop.client import WebshopAuthError, WebshopUnavailable
    from shopsync.engine.preflight import Preflight
    from shopsync.runtime import open_webshop

    preflight = preflight or Preflight(config)
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
            pages = (
                page.items for page in client.iter_changes(collection, None, include_deleted=False)
            )
            count, error = _attempt(
                cell,
                partial(
                    _read_counted,
                    pages,
                    preflight.tally(dt, System.webshop),
                    partial(preflight.webshop_records, dt),
                ),
            )
            if count is None:
                cell.read = _fail(str(error))
            else:
                cell.read, cell.records, cell.count = _ok(), f"{count:,}", count
            proof, error = _attempt(cell, partial(client.probe_write, collection))
            cell.write = _fail(error) if error else _ok(str(proof))

        orders, lines = Cell(), Cell()
        report.cells[Datatype.orders], report.cells[Datatype.order_lines] = orders, lines

        def count_orders() -> tuple[int, int]:
            n_orders = n_lines = 0
            try:
                for page in client.iter_changes("orders", None, include_deleted=False):
                    n_orders += len(page.items)
                    preflight.webshop_records(Datatype.orders, page.items)
                    for order in page.items:
                        order_lines = order.get("lines") or []
                        n_lines += len(order_lines)
                        preflight.webshop_records(Datatype.order_lines, order_lines)
            except Exception:
                preflight.tally(Datatype.orders, System.webshop).complete = False
                preflight.tally(Datatype.order_lines, System.webshop).complete = False
                raise
            return n_orders, n_lines

        counts, error = _attempt(orders, count_orders)
        if counts is None:
            orders.read = lines.read = _fail(str(error))
            lines.ok = False
        else:
            orders.read, orders.records, orders.count = _ok(), f"{counts[0]:,}", counts[0]
            lines.read, lines.records = _ok("inside orders"), f"{counts[1]:,}"
            lines.count = counts[1]
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


SIDE = {System.webcrm: "webCRM", System.webshop: "webshop"}


def _direction(tally: Tally) -> str:
    return f"{SIDE[tally.source]} → {SIDE[tally.target]}"


def _write(console: Console, text: str) -> None:
    """Text as it is (tabs kept: Rich would expand them), after what Rich printed."""
    console.file.write(text + "\n")
    console.file.flush()


def _block(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: list[Sequence[str]],
    right: frozenset[str] = frozenset(),
) -> None:
    """A table on a terminal; otherwise plain tab-separated lines (a title line, a header
    line, one line per row) with every reason and id complete, as ``shopsync problems``
    prints when piped. Record data is never read as markup."""
    if not console.is_terminal:

        def flat(text: str) -> str:
            return re.sub(r"[\t\r\n]+", " ", text)

        lines = [flat(title), "\t".join(columns), *("\t".join(map(flat, r)) for r in rows)]
        _write(console, "\n".join(lines))
        return
    table = Table(title=Text(title))
    for col in columns:
        table.add_column(Text(col), overflow="fold", justify="right" if col in right else "left")
    for r in rows:
        table.add_row(*(Text(cell) for cell in r))
    console.print(table)


def render_preflight(console: Console, preflight: Preflight) -> None:
    """What a first sync would put aside, per datatype and direction, and why."""
    tallies = [preflight.tally(dt, side) for dt in Datatype for side in System]
    summary: list[Sequence[str]] = []
    for t in tallies:
        if not t.shared:
            aside = f"not shared ([{t.datatype.value}] to_{t.target.value}.enabled = false)"
        else:
            aside = f"{t.put_aside:,}" + ("" if t.complete else " (reading failed: counted so far)")
        summary.append(
            (LABEL[t.datatype], _direction(t), f"{t.read:,}", aside, f"{t.with_defaults:,}")
        )
    console.print()
    _block(
        console,
        "before the first sync: records that would be put aside (nothing is written)",
        ("datatype", "direction", "records", "put aside", "with a default"),
        summary,
        right=frozenset(("records", "put aside", "with a default")),
    )
    reasons: list[Sequence[str]] = []
    for t in tallies:
        for text, r in t.top_reasons():
            reasons.append(
                (LABEL[t.datatype], _direction(t), f"{r.records:,}", text, ", ".join(r.examples))
            )
        if t.other_reasons:
            reasons.append(
                (LABEL[t.datatype], _direction(t), f"{t.other_reasons:,}", "other reasons", "")
            )
    if reasons:
        console.print()
        _block(
            console,
            "why (a record with several problems is counted under each)",
            ("datatype", "direction", "records", "reason", "for example"),
            reasons,
            right=frozenset(("records",)),
        )
    defaults: list[Sequence[str]] = []
    for t in tallies:
        for text, n in t.defaults.most_common():
            defaults.append((LABEL[t.datatype], _direction(t), f"{n:,}", text))
        for text, n in t.not_created.most_common():
            defaults.append((LABEL[t.datatype], _direction(t), f"{n:,}", f"not created: {text}"))
    if defaults:
        console.print()
        _block(
            console,
            "defaults for empty webCRM fields (docs/mapping.md), and records left out",
            ("datatype", "direction", "records", "default"),
            defaults,
            right=frozenset(("records",)),
        )
    if not reasons:
        console.print()
        console.print(Text("No record would be put aside."))


def report_json(
    config: Config, reports: list[SystemReport], preflight: Preflight, exit_status: int
) -> dict[str, Any]:
    """``shopsync check --json``: the same data as the tables, markup-free."""

    def plain(text: str) -> str:
        return Text.from_markup(text).plain

    return {
        "webcrm_url": mask_url(config.webcrm.base_url),
        "webshop_url": mask_url(config.webshop.base_url),
        "systems": [
            {
                "name": r.name,
                "fatal": scrub(r.fatal) if r.fatal else None,
                "datatypes": {
                    dt.value: {
                        "ok": c.ok,
                        "read": plain(c.read),
                        "write": plain(c.write),
                        "records": c.count,
                    }
                    for dt, c in r.cells.items()
                },
                "notes": [scrub(n) for n in r.notes],
            }
            for r in reports
        ],
        "put_aside": [
            preflight.tally(dt, side).to_json()
            for dt in Datatype
            for side in System
            if not any(r.fatal for r in reports if r.name == SIDE[side])
        ],
        "exit_status": exit_status,
    }


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
    as_json: bool = False,
) -> int:
    """Load the configuration, check both systems, print the tables (or, ``as_json``,
    one JSON document); returns the exit status. Records that would be put aside are
    reported, not a failure: the check itself succeeded."""
    console = console or Console()
    _quiet_logs()
    try:
        config = load_config(config_path, env=os.environ if env is None else env)
    except ConfigError as exc:
        out = Console(stderr=True) if as_json else console
        out.print("[bold red]configuration error[/]", highlight=False)
        out.print(str(exc), highlight=False, markup=False, soft_wrap=True)
        return EXIT_CONFIG
    from shopsync.engine.preflight import Preflight
    from shopsync.sync_cli import record_label

    preflight = Preflight(
        config, label=lambda dt, side, record: record_label(config, dt, side.value, record)
    )
    reports = [check_webcrm(config, preflight), check_webshop(config, preflight)]
    fatal = [r.exit_code for r in reports if r.exit_code != EXIT_OK]
    failed = any(not c.ok for r in reports for c in r.cells.values())
    code = max(fatal) if fatal else EXIT_FAILED if failed else EXIT_OK
    if as_json:
        _write(
            console,
            json.dumps(report_json(config, reports, preflight, code), indent=2, ensure_ascii=False),
        )
        return code
    render(console, config, reports)
    if not fatal:
        render_preflight(console, preflight)
    return code
