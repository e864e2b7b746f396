"""The loader never shows a secret, not even a misplaced one, and never crashes on a
hostile file: every failure is a :class:`ConfigError` naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopsync.config.loader import ConfigError, load_config

SECRET = "TOPSECRET-7f3a9c"


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    path = tmp_path / "shopsync.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f'webcrm = "{SECRET}"',  # the token where the table belongs
        f'webshop = "{SECRET}"',
        f'state = "{SECRET}"',
        f"webcrm = {{ auth_code = 5, base_url = 'https://u:{SECRET}@h' , rate_limit = 'x' }}",
        f'[webshop]\nbase_url = "http//user:{SECRET}@host"',
        f'[webshop]\nbase_url = "https://user:{SECRET}@host?x=1"',
        f'[webcrm]\nbase_url = "ftp://user:{SECRET}@host"',
        f'[webcrm]\nrate_limit = "https://user:{SECRET}@host"',
    ],
)
def test_no_error_shows_a_secret(tmp_path: Path, text: str) -> None:
    message = problems(tmp_path, text + "\n")
    assert "shopsync.toml, line" in message
    assert SECRET not in message, message


def test_a_url_password_is_masked_but_the_rest_is_shown(tmp_path: Path) -> None:
    message = problems(tmp_path, f'[webcrm]\nbase_url = "ftp://crm:{SECRET}@host:8"\n')
    assert "webcrm.base_url: 'ftp://crm:***@host:8' is not an http(s) URL" in message
    env = {"SHOPSYNC_WEBSHOP_BASE_URL": f"gopher://shop:{SECRET}@host"}
    message = problems(tmp_path, "", env)
    assert "environment variable SHOPSYNC_WEBSHOP_BASE_URL" in message
    assert "'gopher://shop:***@host'" in message and SECRET not in message


def test_a_table_given_a_value_names_the_table_not_the_value(tmp_path: Path) -> None:
    message = problems(tmp_path, f'webcrm = "{SECRET}"\n')
    assert message.endswith("line 1: webcrm: Input should be a valid dictionary or instance "
                            "of WebcrmConfig; allowed: a table")  # fmt: skip


def test_an_unclosed_bracket_in_a_url_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    message = problems(tmp_path, '[webshop]\nbase_url = "http://[/x]"\n')
    assert "line 2: webshop.base_url: 'http://[/x]' is not an http(s) URL" in message


@pytest.mark.parametrize("opening", ["[", "{a="])
def test_deep_nesting_is_a_config_error(tmp_path: Path, opening: str) -> None:
    message = problems(tmp_path, "[webcrm]\nrate_limit = " + opening * 100_000 + "\n")
    assert message.endswith(
        "shopsync.toml: not valid TOML: arrays or inline tables nested too deeply"
    )


def test_moderate_nesting_is_still_reported_by_key(tmp_path: Path) -> None:
    message = problems(tmp_path, "[webcrm]\nrate_limit = " + "[" * 200 + "]" * 200 + "\n")
    assert "line 2: webcrm.rate_limit: Input should be a valid integer" in message
