"""What the CLI prints, as a user sees it: record text is never read as Rich markup,
listings stay complete when piped (80 columns), ``--json`` everywhere, clear errors with
documented exit codes instead of tracebacks, and no password from a URL in any output.

The CLI runs with its output captured (not a terminal) and ``COLUMNS=80``: mostly in
this process through Typer's CliRunner, and as a real ``python -m shopsync`` process
writing into pipes where that matters; against the real emulator and reference webshop.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.config.model import Config, StateConfig, WebcrmConfig, WebshopConfig
from shopsync.emulators.launch import RunningServer, free_port
from shopsync.logs import mask_url
from shopsync.runtime import Installation
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN

SECRETS = {"SHOPSYNC_WEBCRM_AUTH_CODE": AUTH_CODE, "SHOPSYNC_WEBSHOP_TOKEN": WEBSHOP_TOKEN}
NARROW = {"COLUMNS": "80", "LINES": "25", "NO_COLOR": "1"}
LONG_CITY = "Sankt Peter-Ording an der Nordsee, Ortsteil Süderhöft-Bad"  # > 50: webCRM's limit
EVIL = "Evil [/x] Name"


@dataclass
class Out:
    returncode: int
    stdout: str
    stderr: str


def shopsync(*args: str, env: dict[str, str] | None = None) -> Out:
    """The CLI in this process (Typer's CliRunner): stdout and stderr captured, so not a
    terminal, and 80 columns. An uncaught exception comes back as a traceback on stderr."""
    plain: dict[str, str | None] = {"FORCE_COLOR": None, "TTY_COMPATIBLE": None}
    result = CliRunner().invoke(app, list(args), env={**plain, **NARROW, **(env or {})})
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return Out(result.exit_code, result.stdout, stderr)


def piped(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Out:
    """The CLI as a separate process with its output going into pipes."""
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    done = subprocess.run(
        [sys.executable, "-m", "shopsync", *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        env={**base, **NARROW, **(env or {})},
    )
    return Out(done.returncode, done.stdout, done.stderr)


def write_config(path: Path, crm: str, shop: str, state: str) -> Path:
    path.write_text(
        f'[webcrm]\nbase_url = "{crm}"\nrate_limit = 10000\nmax_retries = 0\n'
        f'[webshop]\nbase_url = "{shop}"\nmax_retries = 0\n'
        f'[state]\nurl = "{state}"\n',
        encoding="utf-8",
    )
    return path


@dataclass
class World:
    config: Path
    evil_org: int
    """A linked organisation whose name looks like Rich markup."""
    bad_country_org: int
    """Put aside: its country is ``[/x]``."""
    long_city_customer: str
    """Put aside by webCRM's 50-character city limit (the reason names the field)."""
    waiting_order: str
    """Waits for its customer (the one put aside)."""


@pytest.fixture
def world(
    reset_emulator: RunningServer, reset_webshop: RunningServer, tmp_path: Path
) -> Iterator[World]:
    state = f"sqlite:///{tmp_path / 'state.sqlite'}"
    cfg = Config(
        webcrm=WebcrmConfig(
            base_url=reset_emulator.url, auth_code=SecretStr(AUTH_CODE), rate_limit=10_000
        ),
        webshop=WebshopConfig(base_url=reset_webshop.url, token=SecretStr(WEBSHOP_TOKEN)),
        state=StateConfig(url=state),
    )
    with Installation(cfg) as inst:
        evil, bad = (
            r.id
            for r in inst.webcrm.upsert(
                "Organisation",
                [
                    {"OrganisationName": EVIL, "OrganisationCountry": "Danmark"},
                    {"OrganisationName": "Markup Land ApS", "OrganisationCountry": "[/x]"},
                ],
            )
        )
        customer = inst.webshop.create(
            "customers",
            {
                "name": "Lange Adresse GmbH",
                "billing_address": {"line1": "Weg 1", "city": LONG_CITY, "country": "DE"},
            },
            idempotency_key="cli-output-customer",
        )
        order = inst.webshop.create(
            "orders",
            {
                "order_number": "W-4711",
                "customer_id": customer["id"],
                "status": "pending",
                "currency": "EUR",
                "order_date": "2026-04-01",
                "discount_percent": "0",
                "lines": [],
            },
            idempotency_key="cli-output-order",
        )
    assert evil is not None and bad is not None
    yield World(
        write_config(tmp_path / "shopsync.toml", reset_emulator.url, reset_webshop.url, state),
        int(evil),
        int(bad),
        str(customer["id"]),
        str(order["id"]),
    )


def lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


# ------------------------------------------------------------------ items 4 and 7
def test_listings_are_complete_and_markup_free_when_piped(world: World) -> None:
    cfg = str(world.config)
    plan = shopsync("sync", "-c", cfg, "--dry-run", env=SECRETS)
    assert plan.returncode == 0, plan.stderr
    assert "…" not in plan.stdout
    created = lines_with(plan.stdout, f"webshop:{world.long_city_customer}")
    assert created, plan.stdout  # the full webshop id, on one line
    assert all("\tLange Adresse GmbH\t" in line for line in created), created  # its label

    run = shopsync("sync", "-c", cfg, env=SECRETS)
    assert run.returncode == 5, run.stderr  # finished with problems: records put aside
    assert "sync finished with problems" in run.stdout
    assert "…" not in run.stdout
    finished = lines_with(run.stdout, "Organisations ⇄ Customers")
    assert len(finished) == 1 and len(finished[0].split("\t")) == 15, run.stdout

    problems = piped("problems", "-c", cfg, env=SECRETS)
    assert problems.returncode == 0, problems.stderr
    assert "MarkupError" not in problems.stderr and "…" not in problems.stdout
    [bad] = lines_with(problems.stdout, f"\t{world.bad_country_org}\t")
    assert "Markup Land ApS" in bad and "[/x]" in bad  # label, and the reason as typed
    [long_city] = lines_with(problems.stdout, f"customers\twebshop\t{world.long_city_customer}")
    datatype, side, record, label, reason, attempts, _ = long_city.split("\t")
    assert (datatype, side, record) == ("customers", "webshop", world.long_city_customer)
    assert label == "Lange Adresse GmbH" and "OrganisationCity" in reason and attempts == "1"
    [waiting] = lines_with(problems.stdout, world.waiting_order)
    assert "W-4711" in waiting and world.long_city_customer in waiting

    as_json = json.loads(shopsync("problems", "-c", cfg, "--json", env=SECRETS).stdout)
    by_id = {p["record_id"]: p for p in as_json["put_aside"]}
    assert by_id[str(world.bad_country_org)]["label"] == "Markup Land ApS"
    assert "OrganisationCity" in by_id[world.long_city_customer]["reason"]
    assert [w["label"] for w in as_json["waiting"]] == ["W-4711"]

    links = shopsync("links", "customers", "-c", cfg, env=SECRETS)
    assert links.returncode == 0, links.stderr
    [evil] = lines_with(links.stdout, EVIL)
    crm_id, shop_id, *_ = evil.split("\t")
    assert crm_id == str(world.evil_org) and re.fullmatch(r"cus_\w+", shop_id), evil
    one = shopsync("links", "customers", str(world.evil_org), "-c", cfg, env=SECRETS)
    assert one.returncode == 0, one.stderr
    assert EVIL in one.stdout and shop_id in one.stdout
    assert lines_with(one.stdout, "name\t") == [f"name\t{EVIL}\t{EVIL}"]
    one_json = json.loads(
        shopsync("links", "customers", shop_id, "-c", cfg, "--json", env=SECRETS).stdout
    )
    assert one_json["label"] == EVIL and one_json["webcrm_id"] == str(world.evil_org)
    assert one_json["properties"]["name"] == {"webcrm": EVIL, "webshop": EVIL}
    all_json = json.loads(shopsync("links", "customers", "-c", cfg, "--json", env=SECRETS).stdout)
    assert {link["label"] for link in all_json["links"]} == {EVIL}

    status = shopsync("status", "-c", cfg, env=SECRETS)
    assert status.returncode == 0, status.stderr
    assert "…" not in status.stdout
    [customers] = lines_with(status.stdout, "Organisations ⇄ Customers")
    assert customers.split("\t")[1:5] == ["1", "0", "0", "2"], customers
    status_json = json.loads(shopsync("status", "-c", cfg, "--json", env=SECRETS).stdout)
    assert status_json["links"][0]["put_aside"] == 2
    assert [r["status"] for r in status_json["runs"]] == ["ok"]  # a dry run leaves no run


def test_a_terminal_gets_folded_tables_without_markup(world: World) -> None:
    cfg = str(world.config)
    assert shopsync("sync", "-c", cfg, env=SECRETS).returncode == 5  # with problems
    tty = {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1"}
    problems = shopsync("problems", "-c", cfg, env={**SECRETS, **tty})
    assert problems.returncode == 0, problems.stderr
    assert "┃" in problems.stdout  # a Rich table
    plain = re.sub(r"\x1b\[[0-9;]*m", "", problems.stdout)
    assert "…" not in plain
    rows = [line.split("│") for line in plain.splitlines() if line.startswith("│")]
    assert max(len(line) for line in plain.splitlines()) <= 80
    record_column = "".join(cells[3].strip() for cells in rows)
    assert world.long_city_customer in record_column  # folded over lines, not cut
    assert world.long_city_customer not in plain  # (it was folded: the test can tell)
    one = shopsync("links", "customers", str(world.evil_org), "-c", cfg, env={**SECRETS, **tty})
    assert one.returncode == 0, one.stderr
    assert EVIL in re.sub(r"\x1b\[[0-9;]*m", "", one.stdout)


def test_config_errors_keep_brackets(tmp_path: Path) -> None:
    cfg = tmp_path / "shopsync.toml"
    cfg.write_text('[webcrm]\nrate_limt = 5\nbase_url = "http://[/x]"\n', encoding="utf-8")
    bad = shopsync("status", "-c", str(cfg))
    assert bad.returncode == 2, bad.stderr
    assert "allowed keys in [webcrm]: base_url" in bad.stderr
    assert "'http://[/x]'" in bad.stderr and "Traceback" not in bad.stderr


# ------------------------------------------------------------------ item 8
def test_unreachable_postgresql_state_is_one_paragraph(tmp_path: Path) -> None:
    url = f"postgresql://shop:PGPASSWORD42@127.0.0.1:{free_port()}/state"
    cfg = write_config(tmp_path / "shopsync.toml", "http://127.0.0.1:1", "http://127.0.0.1:1", url)
    for command in ("sync", "status", "problems", "db"):
        args = ("db", "upgrade") if command == "db" else (command,)
        out = (piped if command == "sync" else shopsync)(*args, "-c", str(cfg), env=SECRETS)
        assert out.returncode == 4, (command, out.stderr)
        message = out.stderr.strip()
        assert message.startswith("error: state database postgresql"), message
        assert "cannot be reached" in message and "shop:***@127.0.0.1" in message
        assert "PGPASSWORD42" not in out.stdout + out.stderr
        assert "Traceback" not in message and len(message.splitlines()) == 1


def test_a_state_file_that_is_not_a_database(tmp_path: Path) -> None:
    state = tmp_path / "state.sqlite"
    state.write_text("these are my notes, not a database\n" * 10, encoding="utf-8")
    cfg = write_config(
        tmp_path / "shopsync.toml", "http://127.0.0.1:1", "http://127.0.0.1:1", f"sqlite:///{state}"
    )
    for args in (("status",), ("sync",), ("db", "upgrade")):
        out = shopsync(*args, "-c", str(cfg), env=SECRETS)
        assert out.returncode == 2, (args, out.stderr)
        message = out.stderr.strip()
        assert message.startswith(f"error: state database sqlite:///{state}"), message
        assert "not an SQLite database" in message and len(message.splitlines()) == 1
    assert state.read_text(encoding="utf-8").startswith("these are my notes")


def test_deeply_nested_toml_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "shopsync.toml"
    cfg.write_text("[webcrm]\nrate_limit = " + "[" * 100_000 + "\n", encoding="utf-8")
    out = shopsync("status", "-c", str(cfg))
    assert out.returncode == 2, out.stderr[-2000:]
    assert "RecursionError" not in out.stderr and "Traceback" not in out.stderr
    assert f"{cfg}: not valid TOML: arrays or inline tables nested too deeply" in out.stderr


# ------------------------------------------------------------------ item 9
def test_url_passwords_are_masked_everywhere(tmp_path: Path) -> None:
    crm = f"http://crmuser:CRMPASSWORD@127.0.0.1:{free_port()}"
    shop = f"http://shopuser:SHOPPASSWORD@127.0.0.1:{free_port()}"
    state = tmp_path / "state.sqlite"
    cfg = write_config(tmp_path / "shopsync.toml", crm, shop, f"sqlite:///{state}")
    outputs = []
    sync = shopsync("--log-level", "debug", "sync", "-c", str(cfg), env=SECRETS)
    assert sync.returncode == 4, sync.stderr
    assert "cannot reach webCRM at http://crmuser:***@127.0.0.1" in sync.stderr
    check = shopsync("check", "-c", str(cfg), env=SECRETS)
    assert check.returncode == 4, check.stdout
    assert "http://crmuser:***@127.0.0.1" in check.stdout
    assert "cannot reach the webshop at http://shopuser:***@127.0.0.1" in check.stdout
    status = shopsync("status", "-c", str(cfg), "--json", env=SECRETS)
    assert status.returncode == 0, status.stderr
    [run] = json.loads(status.stdout)["runs"]
    assert run["status"] == "failed" and "crmuser:***@" in run["error"]
    outputs += [sync, check, status, shopsync("status", "-c", str(cfg), env=SECRETS)]
    with sqlite3.connect(state) as conn:
        [(stored,)] = conn.execute("SELECT error FROM runs").fetchall()
    assert "crmuser:***@" in stored  # runs.error itself holds no password
    with sqlite3.connect(state) as conn:  # as an older shopsync stored it
        conn.execute("UPDATE runs SET error = ?", (stored.replace("***", "CRMPASSWORD"),))
    for args in (("status",), ("status", "--json")):
        older = shopsync(*args, "-c", str(cfg), env=SECRETS)
        assert older.returncode == 0 and "crmuser:***@" in older.stdout, older.stdout
        outputs.append(older)
    for out in outputs:
        for secret in ("CRMPASSWORD", "SHOPPASSWORD"):
            assert secret not in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize(
    "text",
    [
        'webcrm = "TOPSECRET-123456"\n',
        'webshop = ["TOPSECRET-123456"]\n',
        '[webshop]\nbase_url = "http//user:TOPSECRET-123456@host"\n',
        '[webcrm]\nbase_url = "ftp://user:TOPSECRET-123456@host"\n',
        '[state]\nurl = "mysql://user:TOPSECRET-123456@host/db"\n',
    ],
)
def test_config_errors_never_echo_a_secret(tmp_path: Path, text: str) -> None:
    cfg = tmp_path / "shopsync.toml"
    cfg.write_text(text, encoding="utf-8")
    for args in (("status",), ("check",)):
        out = shopsync(*args, "-c", str(cfg))
        assert out.returncode == 2, out.stdout + out.stderr
        assert "shopsync.toml, line" in out.stdout + out.stderr
        assert "TOPSECRET" not in out.stdout + out.stderr, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://crmuser:CRMPASSWORD@host:8/x", "http://crmuser:***@host:8/x"),
        ("postgresql+psycopg://u:p@ss@db/state", "postgresql+psycopg://u:***@db/state"),
        ("https://:token@host", "https://:***@host"),
        ("at 'http://a:b@h' and https://c:d@k/p@q", "at 'http://a:***@h' and https://c:***@k/p@q"),
        ("http://host:8080/users/@me", "http://host:8080/users/@me"),
        ("sqlite:////srv/state.sqlite", "sqlite:////srv/state.sqlite"),
        ("https://user@host", "https://user@host"),
    ],
)
def test_mask_url(text: str, shown: str) -> None:
    assert mask_url(text) == shown
