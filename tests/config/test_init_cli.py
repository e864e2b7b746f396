"""``shopsync init`` writes the commented example and will not clobber a file."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.config.example import example_text
from shopsync.config.loader import load_config


def test_init_writes_a_loadable_example_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "conf" / "shopsync.toml"
    result = runner.invoke(app, ["init", "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text() == example_text()
    load_config(target, env={})

    target.write_text("# mine\n")
    result = runner.invoke(app, ["init", "--path", str(target)])
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert target.read_text() == "# mine\n"

    result = runner.invoke(app, ["init", "--path", str(target), "--force"])
    assert result.exit_code == 0
    assert target.read_text() == example_text()
