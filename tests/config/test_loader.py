"""Loading ``shopsync.toml``: defaults, environment overrides, and errors with places."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from shopsync.config.example import example_text
from shopsync.config.loader import ConfigError, load_config, locate_keys
from shopsync.config.model import Config, default_status_table


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shopsync.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problem_lines(exc: ConfigError) -> list[tuple[int | None, str]]:
    return [(p.line, p.key) for p in exc.problems]


# --------------------------------------------------------------------------- defaults
def test_example_loads_to_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, example_text()), env={})
    assert config.model_dump(exclude={"state"}) == Config().model_dump(exclude={"state"})
    assert config.state.url == f"sqlite:///{(tmp_path / 'shopsync-state.sqlite').resolve()}"


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += _leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def test_example_mentions_every_key() -> None:
    """Every key of the model appears in the example, set or commented out."""
    text = example_text()
    uncommented = "\n".join(line.lstrip("# ") for line in text.splitlines())
    located = {".".join(map(str, k)) for k in locate_keys(uncommented)}
    missing = [k for k in _leaf_keys(Config) if k not in located]
    assert missing == []


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    assert config.webcrm.base_url == "https://api.webcrm.com"
    assert config.mapping.status_table == default_status_table(100)
    assert config.state.url is not None


def test_won_percent_drives_the_default_status_table(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[mapping]\nwon_percent = 90\n"), env={})
    assert [r.percent for r in config.mapping.status_table] == [None, 90, 90, None]


# --------------------------------------------------------------------------- environment
def test_environment_overrides_file_and_secrets_stay_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[webcrm]\nauth_code = "from-file"\nbase_url = "https://a.example"\n'
        '[webshop]\ntoken = "file-token"\n',
    )
    env = {
        "SHOPSYNC_WEBCRM_AUTH_CODE": "env-secret-code",
        "SHOPSYNC_WEBSHOP_TOKEN": "",  # empty = unset: the file's value stays
        "SHOPSYNC_WEBSHOP_BASE_URL": "http://shop.example:8080/",
        "SHOPSYNC_WEBSHOP_WEBHOOK_SECRET": "hook-secret-of-16-chars",
        "SHOPSYNC_STATE_URL": "postgresql+psycopg://u@db/shopsync",
        "SHOPSYNC_WEBCRM_BASE_URL": "https://b.example",
    }
    config = load_config(path, env=env)
    assert config.webcrm.auth_code is not None
    assert config.webcrm.auth_code.get_secret_value() == "env-secret-code"
    assert config.webshop.token is not None
    assert config.webshop.token.get_secret_value() == "file-token"
    assert config.webshop.base_url == "http://shop.example:8080"
    assert config.webcrm.base_url == "https://b.example"
    assert config.state.url == "postgresql+psycopg://u@db/shopsync"
    shown = repr(config) + str(config) + config.model_dump_json()
    for secret in ("env-secret-code", "file-token", "hook-secret-of-16-chars"):
        assert secret not in shown


def test_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"SHOPSYNC_WEBCRM_BASE_URL": "api.webcrm.com"})
    (problem,) = info.value.problems
    assert problem.source == "environment variable SHOPSYNC_WEBCRM_BASE_URL"
    assert problem.key == "webcrm.base_url"
    assert "http(s) URL" in problem.message


# --------------------------------------------------------------------------- errors
def test_unknown_key_names_file_line_key_and_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, '# comment\n[webcrm]\nbase_url = "https://x.example"\nrate_limt = 3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    text = str(info.value)
    assert text.startswith(f"{path}, line 4: webcrm.rate_limt: unknown key 'rate_limt'")
    assert "did you mean 'rate_limit'" in text
    assert "allowed keys in [webcrm]: base_url, auth_code, rate_limit" in text


def test_every_problem_is_reported_with_its_line(tmp_path: Path) -> None:
    text = """\
[webcrm]
page_size = 5000

[mapping]
default_currency = "EURO"
order_number_pattern = "WC-{nr}"

[mapping.stock_status]
"På lager" = "in_stock"
"Sold out" = "sold_out"

[customers]
to_webshop = { enabled = "yes please", full_sync = true }

[orders.to_webcrm]
full_sinc = false

[[mapping.status_table]]
status = "shipped"
"""
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    found = dict((key, line) for line, key in problem_lines(info.value))
    assert found["webcrm.page_size"] == 2
    assert found["mapping.default_currency"] == 5
    assert found["mapping.order_number_pattern"] == 6
    assert found['mapping.stock_status."Sold out"'] == 10
    assert found["customers.to_webshop.enabled"] == 13
    assert found["orders.to_webcrm.full_sinc"] == 16
    assert found["mapping.status_table[0].status"] == 19
    messages = str(info.value)
    assert "'in_stock', 'out_of_stock' or 'backorder'" in messages
    assert "allowed: true or false (got 'yes please')" in messages
    assert "'pending', 'confirmed', 'completed' or 'cancelled'" in messages


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[webshop]\nbase_url = "ftp://shop"\n', "webshop.base_url", "not an http(s) URL"),
        ('[fields]\nproduct_sku = "ProductCustom99"\n', "fields.product_sku", "ProductCustom1..15"),
        ('[fields]\nproduct_name = "ProductCustom1"\n', "fields", "both 'ProductCustom1'"),
        ('[fields]\nline_sku = "QuotationLineId"\n', "fields.line_sku", "QuotationLineData1..9"),
        ('[mapping.vat_codes]\n"S" = 125\n', "mapping.vat_codes", "outside 0..100"),
        ('[mapping]\norder_number_pattern = "WC"\n', "mapping.order_number_pattern", "{id}"),
        ('[mapping]\ndefault_currency = "XXY"\n', "mapping.default_currency", "ISO 4217"),
        (
            '[mapping.stock_status]\n"In stock" = "in_stock"\n',
            "mapping.stock_status",
            "missing: out_of_stock, backorder",
        ),
        (
            '[[mapping.status_table]]\nstatus = "pending"\n',
            "mapping.status_table",
            "missing: confirmed, completed, cancelled",
        ),
        ('[state]\nurl = "mysql://db/x"\n', "state.url", "allowed: sqlite, postgresql"),
        ("[webcrm]\nrate_limit = 0\n", "webcrm.rate_limit", "greater than or equal to 1"),
    ],
)
def test_validation_messages(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert [p.key for p in info.value.problems] == [key]
    assert fragment in info.value.problems[0].message
    assert info.value.problems[0].line is not None


def test_toml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[webcrm]\nbase_url = "https://x"\nrate_limit = = 3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    (problem,) = info.value.problems
    assert problem.line == 3
    assert "not valid TOML" in problem.message


def test_missing_file_points_to_init(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shopsync init"):
        load_config(tmp_path / "nope.toml", env={})


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    text = (
        "[webcrm]\nauth_code = 123456789012\n"
        '[webshop]\ntoken = ["tok-abcdef-secret"]\n'
        '[state]\nurl = "mysql://user:hunter2-password@db/x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert {p.key for p in info.value.problems} == {
        "webcrm.auth_code",
        "webshop.token",
        "state.url",
    }
    message = str(info.value)
    for secret in ("123456789012", "tok-abcdef-secret", "hunter2-password"):
        assert secret not in message


# --------------------------------------------------------------------------- state url
def test_relative_sqlite_path_is_relative_to_the_config(tmp_path: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    path = sub / "shopsync.toml"
    path.write_text('[state]\nurl = "sqlite:///data/state.sqlite"\n')
    config = load_config(path, env={})
    assert config.state.url == f"sqlite:///{(sub / 'data' / 'state.sqlite').resolve()}"
    path.write_text('[state]\nurl = "sqlite:////var/lib/state.sqlite"\n')
    assert load_config(path, env={}).state.url == "sqlite:////var/lib/state.sqlite"


# --------------------------------------------------------------------------- locate_keys
_key = st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    doc=st.dictionaries(
        _key,
        st.dictionaries(_key, st.integers(min_value=10**6, max_value=10**9), max_size=4),
        min_size=1,
        max_size=4,
    )
)
def test_locate_keys_finds_the_line_of_every_key(doc: dict[str, dict[str, int]]) -> None:
    """Whatever the key spelling (quotes, dots, spaces, non-ASCII), the line is found."""
    text = tomlkit.dumps(doc)
    assert tomllib.loads(text) == doc
    lines = text.splitlines()
    located = locate_keys(text)
    for table, values in doc.items():
        for key, value in values.items():
            line = located[(table, key)]
            assert lines[line - 1].rstrip().endswith(f"= {value}")


def test_locate_keys_skips_multiline_strings() -> None:
    text = 'a = """\nfake = 1\n"""\nb = 2\n'
    located: dict[Any, int] = dict(locate_keys(text))
    assert located == {("a",): 1, ("b",): 4}
