"""``shopsync check`` against the real emulator and reference webshop processes."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from shopsync.checks import EXIT_AUTH, EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, run_check
from shopsync.cli import app
from shopsync.connectors.webcrm.client import REAUTHORISE_HINT
from shopsync.emulators.launch import RunningServer, free_port
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN
from tests.connectors.conftest import control, seed_organisations


def write_config(tmp_path: Path, crm_url: str, shop_url: str, extra: str = "") -> Path:
    path = tmp_path / "shopsync.toml"
    path.write_text(
        f'[webcrm]\nbase_url = "{crm_url}"\nmax_retries = 1\n'
        f'[webshop]\nbase_url = "{shop_url}"\nmax_retries = 1\n{extra}'
    )
    return path


def check(path: Path, env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(path, env=env, console=Console(file=out, width=250, color_system=None))
    return code, out.getvalue()


GOOD_ENV = {"SHOPSYNC_WEBCRM_AUTH_CODE": AUTH_CODE, "SHOPSYNC_WEBSHOP_TOKEN": WEBSHOP_TOKEN}


def test_check_reports_both_systems(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    seed_organisations(reset_emulator, 1234)
    control(reset_webshop, "POST", "/seed", n=7, seed=1, reset=True)
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_OK, text
    customers = next(line for line in text.splitlines() if "Organisations ⇄ customers" in line)
    assert "1,234" in customers and "empty PATCH accepted" in customers
    assert "(412)" in customers  # the webshop write probe
    assert "requests left in the current 60 s window" in text
    assert AUTH_CODE not in text and WEBSHOP_TOKEN not in text
    # nothing was written by the probes
    assert control(reset_emulator, "GET", "/stats")["Organisation"] == 1234


def test_refused_webcrm_token(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    env = {**GOOD_ENV, "SHOPSYNC_WEBCRM_AUTH_CODE": "revoked-token-99"}
    code, text = check(path, env)
    assert code == EXIT_AUTH
    assert REAUTHORISE_HINT in " ".join(text.split())
    assert "revoked-token-99" not in text


def test_wrong_webshop_token_and_cli_exit_code(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    env = {**GOOD_ENV, "SHOPSYNC_WEBSHOP_TOKEN": "wrong-shop-token"}
    result = CliRunner().invoke(app, ["check", "-c", str(path)], env=env)
    assert result.exit_code == EXIT_AUTH
    assert "refused the token" in result.output
    assert "wrong-shop-token" not in result.output


def test_unreachable_webcrm(tmp_path: Path, reset_webshop: RunningServer) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", reset_webshop.url)
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_UNREACHABLE
    assert "cannot reach webCRM" in text


def test_config_problems(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2", "[oops]\nx = 1\n")
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_CONFIG
    assert "line 7: oops: unknown key 'oops'" in text
    path = write_config(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2")
    code, text = check(path, {})
    assert code == EXIT_CONFIG
    assert "SHOPSYNC_WEBCRM_AUTH_CODE" in text and "SHOPSYNC_WEBSHOP_TOKEN" in text
