"""CLI commands around the sync engine: sync, status, links, problems, retry, db upgrade.

Output rules (every command here):

* text that comes from records, the configuration or an error is never read as Rich
  markup: it goes into tables as :class:`rich.text.Text` and into messages the same way,
  so ``Evil [/x] Name`` prints as typed;
* a listing is a Rich table on a terminal (cells fold, nothing is cut) and, when the
  output is a file or a pipe, plain tab-separated lines (a title line, a header line,
  one line per record) with every id, label and reason complete; ``--json`` gives the
  same data for scripts;
* every URL shown has its password masked, and errors are one paragraph with an exit
  status (see :func:`error`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from shopsync.checks import EXIT_AUTH, EXIT_CONFIG, EXIT_FAILED, EXIT_PROBLEMS, EXIT_UNREACHABLE
from shopsync.config.model import Datatype
from shopsync.engine.labels import record_label as record_label  # re-exported
from shopsync.engine.labels import snapshot_label, text
from shopsync.engine.report import RunReport
from shopsync.engine.streams import STREAMS
from shopsync.logs import scrub

if TYPE_CHECKING:
    from shopsync.engine.restage import Targets
    from shopsync.runtime import Installation

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", help="Configuration file.", envvar="SHOPSYNC_CONFIG"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON (for scripts).")]
DEFAULT_CONFIG = Path("shopsync.toml")
LABELS = {
    Datatype.customers: "Organisations ⇄ Customers",
    Datatype.products: "Products ⇄ Products",
    Datatype.orders: "Opportunities ⇄ Orders",
    Datatype.order_lines: "Quotation lines ⇄ Order lines",
}
DB_EXIT = {"unusable": EXIT_CONFIG, "refused": EXIT_AUTH, "unreachable": EXIT_UNREACHABLE}


# --------------------------------------------------------------------------- output
def stdout() -> Console:
    """A console on the current stdout (built per call: tests and pipes replace it)."""
    return Console(highlight=False)


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)  # paths stay on one line


def error(message: str, code: int) -> typer.Exit:
    """Print ``error: message`` (no markup, secrets masked) to stderr; the Exit to raise.

    Exit statuses (as for ``check``): 1 the command could not do its work, 2 the
    configuration or the state database cannot be used, 3 credentials refused, 4 a
    system or the state database cannot be reached (``cli.EXIT_STATUS``).
    """
    stderr().print(Text.assemble(("error", "bold red"), ": ", scrub(message)))
    return typer.Exit(code)


@dataclass
class Listing:
    """One table of a command's output: a Rich table on a terminal, else plain lines."""

    title: str
    columns: Sequence[str]
    rows: list[Sequence[str]] = field(default_factory=list)
    right: frozenset[str] = frozenset()
    """Columns right-aligned on a terminal (numbers)."""


def _flat(text: str) -> str:
    """One cell of a tab-separated line: tabs and line breaks become spaces."""
    return re.sub(r"[\t\r\n]+", " ", text)


def show(*listings: Listing) -> None:
    out = stdout()
    if not out.is_terminal:
        blocks = [
            "\n".join(
                [
                    _flat(listing.title),
                    "\t".join(listing.columns),
                    *("\t".join(_flat(cell) for cell in row) for row in listing.rows),
                ]
            )
            for listing in listings
        ]
        typer.echo("\n\n".join(blocks))
        return
    for listing in listings:
        table = Table(title=Text(listing.title))
        for col in listing.columns:
            table.add_column(
                Text(col), overflow="fold", justify="right" if col in listing.right else "left"
            )
        for row in listing.rows:
            table.add_row(*(Text(cell) for cell in row))
        out.print(table)


def say(text: str, style: str | None = None) -> None:
    """One line to stdout, never read as markup."""
    out = stdout()
    if out.is_terminal:
        out.print(Text(text, style=style or ""))
    else:
        typer.echo(text)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}" if at is not None else "-"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


_text = text


# --------------------------------------------------------------------------- wiring
def _exit_code(exc: BaseException) -> int | None:
    """The exit status for a known failure, None for anything else (a bug: traceback)."""
    from shopsync.connectors.webcrm.client import WebcrmAuthError, WebcrmError, WebcrmUnavailable
    from shopsync.connectors.webshop.client import (
        WebshopAuthError,
        WebshopError,
        WebshopUnavailable,
    )
    from shopsync.locking import Busy
    from shopsync.runtime import SetupError

    if isinstance(exc, WebcrmAuthError | WebshopAuthError):
        return EXIT_AUTH
    if isinstance(exc, WebcrmUnavailable | WebshopUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(exc, SetupError):
        return EXIT_CONFIG
    if isinstance(exc, Busy | WebcrmError | WebshopError):
        return EXIT_FAILED
    return None


@contextmanager
def installation(config_path: Path, *, auto_upgrade: bool = True) -> Iterator[Installation]:
    """Load the config and open the installation; known failures become clean errors."""
    from shopsync.config.loader import ConfigError, load_config
    from shopsync.runtime import Installation
    from shopsync.store import db

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        stderr().print(Text.assemble(("configuration error", "bold red"), "\n", str(exc)))
        raise typer.Exit(EXIT_CONFIG) from None
    inst = Installation(config, auto_upgrade=auto_upgrade)
    try:
        yield inst
    except db.StateDatabaseError as exc:
        raise error(str(exc), DB_EXIT[exc.problem]) from None
    except db.CONNECTION_ERRORS as exc:  # the database went away during the command
        lost = db.describe_error(inst.state_url, exc)
        raise error(str(lost), DB_EXIT[lost.problem]) from None
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        raise error(str(exc), code) from None
    finally:
        inst.close()


def _datatypes(only: list[Datatype] | None) -> list[Datatype] | None:
    return list(only) if only else None


def _targets(texts: list[str]) -> dict[Datatype, dict[str, list[str]]] | None:
    """``--record`` values grouped as ``Engine.run`` takes them."""
    from shopsync.engine.restage import parse_target

    found: dict[Datatype, dict[str, list[str]]] = {}
    for given in texts:
        try:
            dt, system, rid = parse_target(given)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--record") from None
        found.setdefault(dt, {}).setdefault(system, []).append(rid)
    return found or None


def register(app: typer.Typer, db_app: typer.Typer) -> None:
    @app.callback()
    def main(
        log_level: Annotated[
            str | None,
            typer.Option(
                "--log-level", help="debug, info, warning (default) or error; logs go to stderr."
            ),
        ] = None,
    ) -> None:
        """Two-way sync between webCRM and a custom webshop."""
        from shopsync import logs

        try:
            logs.configure(log_level)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--log-level") from None

    @app.command("demo")
    def demo(
        workdir: Annotated[
            Path | None,
            typer.Option(
                help="Keep the servers' and the state's files here (default: a temp dir)."
            ),
        ] = None,
        organisations: Annotated[
            int, typer.Option(min=5, max=10_000, help="Seeded organisations.")
        ] = 30,
        customers: Annotated[
            int, typer.Option(min=5, max=10_000, help="Seeded webshop customers.")
        ] = 15,
    ) -> None:
        """Run everything locally: emulator, webshop, initial sync, edits, sync again."""
        from shopsync.demo import run_demo

        raise typer.Exit(run_demo(workdir, organisations, customers))

    @app.command("sync")
    def sync(
        config: ConfigOpt = DEFAULT_CONFIG,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Print the plan; write nothing anywhere.")
        ] = False,
        only: Annotated[
            list[Datatype] | None,
            typer.Option("--only", help="Sync only this datatype (repeatable)."),
        ] = None,
        full: Annotated[
            bool, typer.Option("--full", help="Re-read everything, not only changes.")
        ] = False,
        sweep: Annotated[
            bool,
            typer.Option(
                "--sweep",
                help="Read every webCRM product and quotation line now to see deletes "
                "(otherwise every [deletes] sweep_interval_minutes).",
            ),
        ] = False,
        record: Annotated[
            list[str] | None,
            typer.Option(
                "--record",
                metavar="DATATYPE:SYSTEM:ID",
                help="Sync this record now, read by its id (repeatable; e.g. "
                "customers:webcrm:42, orders:webshop:o-7). Without --only, only the "
                "named records are read.",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Run one sync of both systems."""

        records = _targets(record or [])
        with installation(config) as inst:
            report = run_with_progress(
                inst, _datatypes(only), full=full, sweep=sweep, dry_run=dry_run, records=records
            )
            if not dry_run:
                from shopsync.service.console.state import keep_activity

                keep_activity(inst, report)  # the console's Activity page shows it too
        if as_json:
            print_json(report_json(report, plan=dry_run))
        else:
            print_report(report, plan=dry_run)
        if not dry_run and any(st.put_aside for st in report.stats.values()):
            raise typer.Exit(EXIT_PROBLEMS)  # finished, with records put aside

    @app.command("status")
    def status(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
        """Links, waiting and put-aside records, cursors, update counts and recent runs."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            counts = repo.inbox_counts(s)
            updates = repo.update_counts(s)
            links_rows: list[dict[str, Any]] = []
            for dt in Datatype:
                links = repo.count_links(s, dt.value)
                links_rows.append(
                    {
                        "datatype": dt.value,
                        "linked": links.get("active", 0),
                        "unlinked": sum(n for st, n in links.items() if st != "active"),
                        "waiting": sum(n for (d, _, w), n in counts.items() if d == dt.value and w),
                        "put_aside": len(repo.all_put_aside(s, dt.value)),
                        "updates_to_webshop": updates.get((dt.value, "to_webshop"), 0),
                        "updates_to_webcrm": updates.get((dt.value, "to_webcrm"), 0),
                        "webcrm_cursor": repo.get_cursor(s, dt.value, "webcrm"),
                        "webshop_cursor": repo.get_cursor(s, dt.value, "webshop"),
                        "last_sweep": repo.get_meta(s, "sweep:" + dt.value)
                        if STREAMS[dt].webcrm_full_scan
                        else None,
                    }
                )
            runs: list[dict[str, Any]] = [
                {
                    "id": run.id,
                    "started_at": _iso(run.started_at),
                    "finished_at": _iso(run.finished_at),
                    "status": run.status,
                    "mode": run.mode,
                    "stats": run.stats,
                    "error": scrub(run.error) if run.error else None,
                }
                for run in repo.recent_runs(s, 5)
            ]
            switch_rows = _switches(inst.config, s)
        if as_json:
            print_json({"links": links_rows, "runs": runs, "switches": switch_rows})
            return
        links_table = Listing(
            "shopsync status",
            ("link", "linked", "unlinked (deleted)", "waiting", "put aside",
             "updates → webshop", "updates → webCRM", "webCRM cursor", "webshop cursor",
             "last delete sweep"),
            right=frozenset(("linked", "unlinked (deleted)", "waiting", "put aside",
                             "updates → webshop", "updates → webCRM")),
        )  # fmt: skip
        for row in links_rows:
            links_table.rows.append(
                (
                    LABELS[Datatype(row["datatype"])],
                    *(str(row[k]) for k in ("linked", "unlinked", "waiting", "put_aside")),
                    str(row["updates_to_webshop"]),
                    str(row["updates_to_webcrm"]),
                    row["webcrm_cursor"] or "-",
                    row["webshop_cursor"] or "-",
                    row["last_sweep"] or "-",
                )
            )
        runs_table = Listing(
            "recent runs",
            ("#", "started", "status", "mode", "writes", "seconds", "error"),
            right=frozenset(("#", "writes", "seconds")),
        )
        for run in runs:
            stats = run["stats"] or {}
            started = datetime.fromisoformat(run["started_at"])
            runs_table.rows.append(
                (
                    str(run["id"]),
                    _when(started),
                    run["status"],
                    run["mode"],
                    str(stats.get("writes", "-")),
                    str(stats.get("seconds", "-")),
                    run["error"] or "",
                )
            )
        switches_table = Listing(
            "switches (shopsync serve's console wins over the file; docs/console.md)",
            ("switch", "in effect", "config file", "set in the console"),
        )
        for sw in switch_rows:
            switches_table.rows.append(
                (
                    sw["key"],
                    "on" if sw["value"] else "off",
                    "on" if sw["file"] else "off",
                    "yes" if sw["console"] else "no",
                )
            )
        show(links_table, runs_table, switches_table)

    @app.command("links")
    def links(
        datatype: Annotated[Datatype, typer.Argument(help="Which link.")],
        record_id: Annotated[
            str | None,
            typer.Argument(help="A webCRM or webshop id: show that link and its snapshot."),
        ] = None,
        config: ConfigOpt = DEFAULT_CONFIG,
        limit: Annotated[int, typer.Option(min=1, help="How many links to list.")] = 50,
        as_json: JsonOpt = False,
    ) -> None:
        """List a datatype's links, or show one link with its last agreed values."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            cfg = inst.config
            if record_id is not None:
                link = repo.link_by_webcrm(s, datatype.value, record_id) or repo.link_by_webshop(
                    s, datatype.value, record_id
                )
                if link is None:
                    raise error(
                        f"no {datatype.value} link with webCRM or webshop id {record_id!r}",
                        EXIT_FAILED,
                    )
                snap = repo.get_snapshot(s, link)
                props = snap.props if snap else {}
                one = {
                    **_link_json(link),
                    "label": snapshot_label(cfg, datatype, props),
                    "properties": {
                        prop: {"webcrm": pair.get("c"), "webshop": pair.get("s")}
                        for prop, pair in sorted(props.items())
                    },
                }
                if as_json:
                    print_json(one)
                    return
                say(
                    f"{LABELS[datatype]}: webCRM {link.webcrm_id} ⇄ webshop {link.webshop_id}"
                    f"{'  ' + one['label'] if one['label'] else ''}  ({link.state}, created by "
                    f"{link.created_by}, {_when(link.created_at)})",
                    style="bold",
                )
                table = Listing("last agreed values", ("property", "webCRM", "webshop"))
                for prop, pair in one["properties"].items():
                    table.rows.append((prop, _shown(pair["webcrm"]), _shown(pair["webshop"])))
                show(table)
                return
            total = repo.count_links(s, datatype.value).get("active", 0)
            chosen = list(islice(repo.active_links(s, datatype.value), limit))
            snaps = repo.snapshots_for(s, [link.id for link in chosen])
            rows: list[dict[str, Any]] = [
                {
                    **_link_json(link),
                    "label": snapshot_label(
                        cfg, datatype, snaps[link.id].props if link.id in snaps else None
                    ),
                }
                for link in chosen
            ]
        if as_json:
            print_json({"datatype": datatype.value, "total": total, "links": rows})
            return
        shown = f"{len(rows)} of {total}" if total > len(rows) else str(total)
        table = Listing(
            f"{LABELS[datatype]}: active links ({shown})",
            ("webCRM id", "webshop id", "label", "state", "created by", "updated"),
        )
        for row in rows:
            table.rows.append(
                (row["webcrm_id"], row["webshop_id"], row["label"], row["state"],
                 row["created_by"], _when(datetime.fromisoformat(row["updated_at"])))
            )  # fmt: skip
        show(table)
        if total > len(rows):
            say(f"{total - len(rows)} more: use --limit {total} (or --json)")

    @app.command("problems")
    def problems(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
        """Records put aside (with the reason) and records waiting for a reference."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            cfg = inst.config
            aside: list[dict[str, Any]] = [
                {
                    "datatype": p.datatype,
                    "system": p.system,
                    "record_id": p.record_id,
                    "label": record_label(cfg, p.datatype, p.system, p.data),
                    "reason": p.reason,
                    "attempts": p.attempts,
                    "first_seen": _iso(p.first_seen),
                    "last_attempt": _iso(p.last_attempt),
                }
                for p in repo.all_put_aside(s)
            ]
            waiting: list[dict[str, Any]] = [
                {
                    "datatype": w.datatype,
                    "system": w.system,
                    "record_id": w.record_id,
                    "label": record_label(cfg, w.datatype, w.system, w.data),
                    "waiting_for": w.waiting_reason or "",
                    "attempts": w.attempts,
                }
                for w in repo.waiting(s)
            ]
        if as_json:
            print_json({"put_aside": aside, "waiting": waiting})
            return
        aside_table = Listing(
            f"put aside ({len(aside)})",
            ("datatype", "from", "record", "label", "reason", "attempts", "last try"),
            right=frozenset(("attempts",)),
        )
        for p in aside:
            aside_table.rows.append(
                (p["datatype"], p["system"], p["record_id"], p["label"], p["reason"],
                 str(p["attempts"]), _when(datetime.fromisoformat(p["last_attempt"])))
            )  # fmt: skip
        wait_table = Listing(
            f"waiting ({len(waiting)})",
            ("datatype", "from", "record", "label", "waiting for", "attempts"),
            right=frozenset(("attempts",)),
        )
        for w in waiting:
            wait_table.rows.append(
                (w["datatype"], w["system"], w["record_id"], w["label"], w["waiting_for"],
                 str(w["attempts"]))
            )  # fmt: skip
        show(aside_table, wait_table)
        if not aside and not waiting:
            say("no problems", style="green")

    @app.command("retry")
    def retry(
        config: ConfigOpt = DEFAULT_CONFIG,
        datatype: Annotated[
            Datatype | None, typer.Option("--only", help="Retry only this datatype.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Retry every put-aside record now (re-read from its system), then sync."""

        with installation(config) as inst:
            n = requeue_put_aside(inst, datatype)
            if not as_json:
                say(f"re-queued {n} put-aside record(s)")
            report = run_with_progress(inst, [datatype] if datatype else None)
        if as_json:
            print_json({"requeued": n, **report_json(report)})
        else:
            print_report(report)

    @db_app.command("upgrade")
    def db_upgrade(config: ConfigOpt = DEFAULT_CONFIG) -> None:
        """Create or migrate the state database to this version's schema."""
        from shopsync.store import db

        with installation(config, auto_upgrade=False) as inst:
            engine = db.make_engine(inst.state_url)
            try:
                before, after = db.upgrade(engine)
            except db.SchemaError as exc:
                raise error(str(exc), EXIT_CONFIG) from None
            finally:
                engine.dispose()
            url = db.redact(inst.state_url)
            if before == after:
                say(f"{url}: already at revision {after}")
            else:
                say(f"{url}: upgraded {before or '(empty)'} → {after}")


def _link_json(link: Any) -> dict[str, Any]:
    return {
        "webcrm_id": link.webcrm_id,
        "webshop_id": link.webshop_id,
        "state": link.state,
        "created_by": link.created_by,
        "created_at": _iso(link.created_at),
        "updated_at": _iso(link.updated_at),
    }


def _switches(config: Any, s: Any) -> list[dict[str, Any]]:
    """The sharing switches in effect: the console's (state database) over the file's."""
    from shopsync.config.switches import listing
    from shopsync.store.console_queries import switches

    return [
        {"key": sw.key, "value": sw.value, "file": sw.file, "console": sw.stored}
        for sw in listing(config, switches(s))
    ]


def requeue_put_aside(inst: Installation, datatype: Datatype | None) -> int:
    """Clear put-aside entries and stage their records again, fresh from their system."""
    from shopsync.engine.restage import retry_put_aside

    with inst.session() as s:
        n = retry_put_aside(s, inst.config, inst.webcrm, inst.webshop, datatype)
        s.commit()
    return n


def run_with_progress(
    inst: Installation,
    only: list[Datatype] | None,
    *,
    full: bool = False,
    sweep: bool = False,
    dry_run: bool = False,
    records: Targets | None = None,
) -> RunReport:
    """Run a sync with a Rich progress line per datatype and phase."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[bold]{task.completed}[/bold] records"),
        TimeElapsedColumn(),
        console=stderr(),
        transient=False,
    ) as progress:
        tasks: dict[tuple[Datatype, str], TaskID] = {}

        def on_progress(dt: Datatype, phase: str, n: int) -> None:
            key = (dt, phase)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{LABELS[dt]}: {phase}", total=None)
            progress.update(tasks[key], completed=n)

        return inst.sync(
            only, full=full, sweep=sweep, dry_run=dry_run, on_progress=on_progress, records=records
        )


def report_json(report: RunReport, *, plan: bool = False) -> dict[str, Any]:
    """The run report for ``--json``; with ``plan``, every planned action too."""
    data = report.to_json()
    if plan or report.dry_run:
        data["plan"] = [asdict(line) for line in report.plan]
    return data


def print_report(report: RunReport, *, plan: bool = False) -> None:
    listings = []
    if plan or report.dry_run:
        listings.append(
            Listing(
                f"plan ({len(report.plan)})",
                ("datatype", "action", "target", "record", "label", "detail"),
                [
                    (ln.datatype, ln.action, ln.target, ln.record, ln.label, ln.detail)
                    for ln in report.plan
                ],
            )
        )
    cols = (
        "link", "read webCRM", "read webshop", "created → shop", "created → CRM",
        "updated → shop", "updated → CRM", "merged", "unchanged", "deleted", "conflicts",
        "waiting", "put aside", "updates → shop", "updates → CRM",
    )  # fmt: skip
    aside = sum(st.put_aside for st in report.stats.values())
    title = "sync finished"
    if report.dry_run:
        title = "dry run (nothing written)"
    elif aside:
        title = f"sync finished with problems: {aside} put aside (`shopsync problems` lists them)"
    table = Listing(
        title,
        cols,
        right=frozenset(cols[1:]),
    )
    for dt, st in report.stats.items():
        table.rows.append(
            (
                LABELS[dt], str(st.read_webcrm), str(st.read_webshop), str(st.created_in_webshop),
                str(st.created_in_webcrm), str(st.updated_in_webshop), str(st.updated_in_webcrm),
                str(st.linked_by_merge), str(st.unchanged), str(st.deleted), str(st.conflicts),
                str(st.waiting), str(st.put_aside), str(st.updates_to_webshop),
                str(st.updates_to_webcrm),
            )
        )  # fmt: skip
    listings.append(table)
    show(*listings)
    say(
        f"API requests: webCRM {report.webcrm_requests}, webshop {report.webshop_requests}; "
        f"{report.seconds:.1f} s"
    )


def _shown(value: object) -> str:
    return "—" if value is None else _text(value)
