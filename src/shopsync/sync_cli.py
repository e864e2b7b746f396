"""CLI commands around the sync engine: sync, status, links, problems, retry, db upgrade."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from shopsync.config.model import Datatype
from shopsync.engine.report import RunReport

if TYPE_CHECKING:
    from shopsync.runtime import Installation

console = Console()
err = Console(stderr=True, soft_wrap=True)  # messages keep paths on one line

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", help="Configuration file.", envvar="SHOPSYNC_CONFIG"),
]
DEFAULT_CONFIG = Path("shopsync.toml")
LABELS = {
    Datatype.customers: "Organisations ⇄ Customers",
    Datatype.products: "Products ⇄ Products",
    Datatype.orders: "Opportunities ⇄ Orders",
    Datatype.order_lines: "Quotation lines ⇄ Order lines",
}


@contextmanager
def installation(config_path: Path, *, auto_upgrade: bool = True) -> Iterator[Installation]:
    """Load the config and open the installation; known failures become clean errors."""
    from shopsync.config.loader import ConfigError, load_config
    from shopsync.connectors.webcrm.client import WebcrmError
    from shopsync.connectors.webshop.client import WebshopError
    from shopsync.locking import Busy
    from shopsync.runtime import Installation, SetupError

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        err.print(f"[red]configuration error[/red]\n{exc}")
        raise typer.Exit(2) from None
    except FileNotFoundError:
        err.print(
            f"[red]no configuration file at {config_path}[/red]: "
            "create one with `shopsync init` or pass --config"
        )
        raise typer.Exit(2) from None
    inst = Installation(config, auto_upgrade=auto_upgrade)
    try:
        yield inst
    except (SetupError, Busy, WebcrmError, WebshopError) as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        inst.close()


def _datatypes(only: list[Datatype] | None) -> list[Datatype] | None:
    return list(only) if only else None


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
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ) -> None:
        """Run one sync of both systems."""

        with installation(config) as inst:
            report = run_with_progress(inst, _datatypes(only), full=full, dry_run=dry_run)
        if as_json:
            console.print_json(json.dumps(report.to_json()))
        else:
            print_report(report, plan=dry_run)

    @app.command("status")
    def status(config: ConfigOpt = DEFAULT_CONFIG) -> None:
        """Links, waiting and put-aside records, cursors, update counts and recent runs."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            counts = repo.inbox_counts(s)
            updates = repo.update_counts(s)
            table = Table(title="shopsync status")
            for col in (
                "link", "linked", "unlinked (deleted)", "waiting", "put aside",
                "updates → webshop", "updates → webCRM", "webCRM cursor", "webshop cursor",
            ):  # fmt: skip
                table.add_column(col)
            for dt in Datatype:
                links = repo.count_links(s, dt.value)
                waiting = sum(n for (d, _, w), n in counts.items() if d == dt.value and w)
                table.add_row(
                    LABELS[dt],
                    str(links.get("active", 0)),
                    str(sum(n for st, n in links.items() if st != "active")),
                    str(waiting),
                    str(len(repo.all_put_aside(s, dt.value))),
                    str(updates.get((dt.value, "to_webshop"), 0)),
                    str(updates.get((dt.value, "to_webcrm"), 0)),
                    repo.get_cursor(s, dt.value, "webcrm") or "-",
                    repo.get_cursor(s, dt.value, "webshop") or "-",
                )
            console.print(table)
            runs = Table(title="recent runs")
            for col in ("#", "started", "status", "mode", "writes", "seconds", "error"):
                runs.add_column(col)
            for run in repo.recent_runs(s, 5):
                stats = run.stats or {}
                runs.add_row(
                    str(run.id),
                    run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                    run.status,
                    run.mode,
                    str(stats.get("writes", "-")),
                    str(stats.get("seconds", "-")),
                    (run.error or "")[:80],
                )
            console.print(runs)

    @app.command("links")
    def links(
        datatype: Annotated[Datatype, typer.Argument(help="Which link.")],
        record_id: Annotated[
            str | None,
            typer.Argument(help="A webCRM or webshop id: show that link and its snapshot."),
        ] = None,
        config: ConfigOpt = DEFAULT_CONFIG,
        limit: Annotated[int, typer.Option(min=1, help="How many links to list.")] = 50,
    ) -> None:
        """List a datatype's links, or show one link with its last agreed values."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            if record_id is not None:
                link = repo.link_by_webcrm(s, datatype.value, record_id) or repo.link_by_webshop(
                    s, datatype.value, record_id
                )
                if link is None:
                    err.print(f"no {datatype.value} link with webCRM or webshop id {record_id!r}")
                    raise typer.Exit(1)
                console.print(
                    f"[bold]{LABELS[datatype]}[/bold]  webCRM {link.webcrm_id} ⇄ webshop "
                    f"{link.webshop_id}  ({link.state}, created by {link.created_by}, "
                    f"{link.created_at:%Y-%m-%d %H:%M:%S})"
                )
                snap = repo.get_snapshot(s, link)
                table = Table("property", "webCRM", "webshop")
                for prop, pair in sorted((snap.props if snap else {}).items()):
                    table.add_row(prop, _show(pair.get("c")), _show(pair.get("s")))
                console.print(table)
                return
            table = Table("webCRM id", "webshop id", "state", "created by", "updated")
            for i, link in enumerate(repo.active_links(s, datatype.value)):
                if i >= limit:
                    break
                table.add_row(
                    link.webcrm_id, link.webshop_id, link.state, link.created_by,
                    f"{link.updated_at:%Y-%m-%d %H:%M:%S}",
                )  # fmt: skip
            console.print(table)

    @app.command("problems")
    def problems(config: ConfigOpt = DEFAULT_CONFIG) -> None:
        """Records put aside (with the reason) and records waiting for a reference."""
        from shopsync.store import repo

        with installation(config, auto_upgrade=False) as inst, inst.session() as s:
            aside = repo.all_put_aside(s)
            table = Table("datatype", "from", "record", "reason", "attempts", "last try",
                          title=f"put aside ({len(aside)})")  # fmt: skip
            for p in aside:
                table.add_row(
                    p.datatype, p.system, p.record_id, p.reason, str(p.attempts),
                    f"{p.last_attempt:%Y-%m-%d %H:%M:%S}",
                )  # fmt: skip
            console.print(table)
            wait = repo.waiting(s)
            table = Table("datatype", "from", "record", "waiting for", "attempts",
                          title=f"waiting ({len(wait)})")  # fmt: skip
            for w in wait:
                table.add_row(
                    w.datatype, w.system, w.record_id, w.waiting_reason or "", str(w.attempts)
                )
            console.print(table)
            if not aside and not wait:
                console.print("[green]no problems[/green]")

    @app.command("retry")
    def retry(
        config: ConfigOpt = DEFAULT_CONFIG,
        datatype: Annotated[
            Datatype | None, typer.Option("--only", help="Retry only this datatype.")
        ] = None,
    ) -> None:
        """Retry every put-aside record now (re-read from its system), then sync."""

        with installation(config) as inst:
            n = requeue_put_aside(inst, datatype)
            console.print(f"re-queued {n} put-aside record(s)")
            report = run_with_progress(inst, [datatype] if datatype else None)
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
                err.print(f"[red]error:[/red] {exc}")
                raise typer.Exit(2) from None
            finally:
                engine.dispose()
            url = db.redact(inst.state_url)
            if before == after:
                console.print(f"{url}: already at revision {after}")
            else:
                console.print(f"{url}: upgraded {before or '(empty)'} → {after}")


def requeue_put_aside(inst: Installation, datatype: Datatype | None) -> int:
    """Clear put-aside entries and stage their records again, fresh from their system."""
    from shopsync.engine.streams import STREAMS, parse_time
    from shopsync.store import repo

    n = 0
    with inst.session() as s:
        for p in repo.all_put_aside(s, datatype.value if datatype else None):
            dt = Datatype(p.datatype)
            stream = STREAMS[dt]
            data = p.data
            if dt is not Datatype.order_lines:
                if p.system == "webcrm":
                    data = inst.webcrm.get(stream.webcrm_entity, int(p.record_id))
                elif stream.webshop_collection:
                    data = inst.webshop.get(stream.webshop_collection, p.record_id)
            repo.clear_put_aside(s, p.datatype, p.system, p.record_id)
            if data is not None and dt is not Datatype.order_lines:
                updated = (
                    data.get(stream.webcrm_updated_field)
                    if p.system == "webcrm"
                    else data.get("updated_at")
                )
                repo.stage(
                    s, p.datatype, p.system, p.record_id, updated_at=parse_time(updated), data=data
                )
            elif data is not None and p.system == "webcrm":
                repo.stage(
                    s, p.datatype, p.system, p.record_id, updated_at=parse_time(data.get("QuotationLineUpdatedAt")),
                    data=data, parent_id=str(data.get("QuotationLineOpportunityId")),
                )  # fmt: skip
            n += 1
        s.commit()
    return n


def run_with_progress(
    inst: Installation,
    only: list[Datatype] | None,
    *,
    full: bool = False,
    dry_run: bool = False,
) -> RunReport:
    """Run a sync with a Rich progress line per datatype and phase."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[bold]{task.completed}[/bold] records"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as progress:
        tasks: dict[tuple[Datatype, str], TaskID] = {}

        def on_progress(dt: Datatype, phase: str, n: int) -> None:
            key = (dt, phase)
            if key not in tasks:
                tasks[key] = progress.add_task(f"{LABELS[dt]}: {phase}", total=None)
            progress.update(tasks[key], completed=n)

        return inst.sync(only, full=full, dry_run=dry_run, on_progress=on_progress)


def print_report(report: RunReport, *, plan: bool = False) -> None:
    if plan or report.dry_run:
        table = Table("datatype", "action", "target", "record", "detail", title="plan")
        for line in report.plan:
            table.add_row(line.datatype, line.action, line.target, line.record, line.detail[:80])
        console.print(table)
    table = Table(title="dry run (nothing written)" if report.dry_run else "sync finished")
    cols = (
        "link", "read webCRM", "read webshop", "created → shop", "created → CRM",
        "updated → shop", "updated → CRM", "merged", "unchanged", "deleted", "conflicts",
        "waiting", "put aside", "updates → shop", "updates → CRM",
    )  # fmt: skip
    for col in cols:
        table.add_column(col, justify="right" if col != "link" else "left")
    for dt, st in report.stats.items():
        table.add_row(
            LABELS[dt], str(st.read_webcrm), str(st.read_webshop), str(st.created_in_webshop),
            str(st.created_in_webcrm), str(st.updated_in_webshop), str(st.updated_in_webcrm),
            str(st.linked_by_merge), str(st.unchanged), str(st.deleted), str(st.conflicts),
            str(st.waiting), str(st.put_aside), str(st.updates_to_webshop),
            str(st.updates_to_webcrm),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"API requests: webCRM {report.webcrm_requests}, webshop {report.webshop_requests}; "
        f"{report.seconds:.1f} s"
    )


def _show(value: object) -> str:
    if value is None:
        return "[dim]—[/dim]"
    return str(value)
