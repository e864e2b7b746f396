"""The commented example configuration that ``shopsync init`` writes.

The text lives in ``example.toml`` beside this module (shipped as package data), so it
is a real TOML file that the test suite loads and compares with the model's defaults:
the example cannot drift from what the program actually does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


class ExampleExists(FileExistsError):
    """The target file exists and ``force`` was not given."""


def example_text() -> str:
    return resources.files("shopsync.config").joinpath("example.toml").read_text("utf-8")


def write_example(path: Path, *, force: bool = False) -> Path:
    """Write the example to ``path``; refuse to overwrite an existing file unless ``force``."""
    if path.exists() and not force:
        raise ExampleExists(f"{path} already exists; use --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example_text(), encoding="utf-8")
    return path
