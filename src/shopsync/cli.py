"""The ``shopsync`` command line.

Each command is a thin shell: it parses and checks arguments, then calls into the
module that owns the work (imported lazily, so ``shopsync --help`` stays fast and a
server process loads only what it serves).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

EXIT_STATUS = (
    "Exit status: 0 done; 1 the command could not do its work (no such link, another sync "
    "holds the lock, a system answered with an error); 2 the configuration or the state "
    "database cannot be used; 3 webCRM, the webshop or the state database refused the "
    "credentials; 4 one of them cannot be reached; 5 (sync) the run finished but put "
    "records aside: `shopsync problems` lists them."
)
app = typer.Typer(
    name="shopsync",
    help="Two-way sync between webCRM and a custom webshop.",
    epilog=EXIT_STATUS,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
db_app = typer.Typer(help="State database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")

ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", help="Configuration file.", envvar="SHOPSYNC_CONFIG"),
]
DEFAULT_CONFIG = Path("shopsync.toml")


# --------------------------------------------------------------------------- servers
@app.command("webcrm-emulator")
def webcrm_emulator(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8081,
    db: Annotated[Path, typer.Option(help="SQLite file holding the emulator's state.")] = Path(
        "webcrm-emulator.sqlite"
    ),
    auth_code: Annotated[
        str,
        typer.Option(
            "--auth-code",
            help="The application token that /Auth/ApiLogin accepts.",
            envvar="SHOPSYNC_EMULATOR_AUTH_CODE",
        ),
    ] = "demo-application-token",
    rate_limit: Annotated[
        int, typer.Option(min=0, help="Requests per 60 s per application token; 0 = off.")
    ] = 250,
    token_ttl: Annotated[int, typer.Option(min=1, help="Access-token lifetime, seconds.")] = 3600,
    seed: Annotated[
        int | None, typer.Option(help="Fill an empty store with N seeded organisations.")
    ] = None,
) -> None:
    """Run the webCRM API emulator (a real HTTP server)."""
    from shopsync.emulators.webcrm.server import serve

    serve(
        host=host, port=port, db=db, auth_code=auth_code,
        rate_limit=rate_limit, token_ttl=token_ttl, seed=seed,
    )  # fmt: skip


@app.command("webshop-server")
def webshop_server(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8082,
    db: Annotated[
        str, typer.Option(help="SQLite path or database URL (sqlite:///… or postgresql://…).")
    ] = "webshop.sqlite",
    token: Annotated[
        str,
        typer.Option(help="Bearer token clients must send.", envvar="SHOPSYNC_WEBSHOP_TOKEN"),
    ] = "demo-webshop-token",
    seed: Annotated[
        int | None, typer.Option(help="Fill an empty store with N seeded customers.")
    ] = None,
) -> None:
    """Run the reference webshop server (implements the published contract)."""
    from shopsync.emulators.webshop.server import serve

    serve(host=host, port=port, db=db, token=token, seed=seed)


@app.command("check-webshop")
def check_webshop(
    url: Annotated[str, typer.Argument(help="Base URL of the webshop API.")],
    token: Annotated[str, typer.Option(help="Bearer token.", envvar="SHOPSYNC_WEBSHOP_TOKEN")],
) -> None:
    """Check that a webshop implements the contract; prints a pass/fail table."""
    from shopsync.conformance.runner import run_conformance

    raise typer.Exit(run_conformance(url, token))


# --------------------------------------------------------------------------- setup
@app.command("init")
def init(
    path: Annotated[
        Path, typer.Option("--path", "-p", help="Where to write the example configuration.")
    ] = DEFAULT_CONFIG,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented example configuration (every key with its default)."""
    from shopsync.config.example import ExampleExists, write_example

    try:
        write_example(path, force=force)
    except ExampleExists as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {path}; set SHOPSYNC_WEBCRM_AUTH_CODE and SHOPSYNC_WEBSHOP_TOKEN")


@app.command("check")
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON (for scripts).")
    ] = False,
) -> None:
    """Connect to webCRM and the webshop; show per datatype what can be read and written,
    and which records a first sync would put aside, and why (nothing is written)."""
    from shopsync.checks import run_check

    raise typer.Exit(run_check(config, as_json=as_json))


@app.command("serve")
def serve(
    config: ConfigOpt = DEFAULT_CONFIG,
    unregister_hooks: Annotated[
        bool,
        typer.Option(
            "--unregister-hooks",
            help="Remove this installation's webCRM hooks and shop webhook, then exit.",
        ),
    ] = False,
) -> None:
    """Always on: sync on start, then hooks from both systems and budgeted polling
    (configured in the serve table; docs/deploy.md). JSON logs on stderr."""
    from shopsync import logs
    from shopsync.service import app as service
    from shopsync.sync_cli import installation

    logs.configure_json()
    with installation(config) as inst:
        if unregister_hooks:
            crm, shop = service.unregister(inst)
            typer.echo(f"removed {crm} webCRM hooks and {shop} webshop webhooks")
            return
        raise typer.Exit(service.run(inst))


def _register_sync_commands() -> None:
    from shopsync.sync_cli import register

    register(app, db_app)


_register_sync_commands()


def main() -> None:
    app()
