"""Merge criteria as the engine uses them: flat string keys it can store and look up.

The criteria themselves (what is normalized how, in which order) are the mapper's
business (``mapping/merge.py``); this adapter only turns each ``(criterion, value)``
into one string per key, so the state store can index them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopsync.config.model import Config, Datatype, System
from shopsync.engine.mapping import merge


class Matcher:
    def __init__(self, config: Config) -> None:
        self.config = config

    def keys(self, datatype: Datatype, system: str, record: Mapping[str, Any]) -> list[str]:
        """The record's merge keys, strongest criterion first."""
        pairs = merge.merge_keys(self.config, datatype, System(system), record)
        return [f"{tag}:{value}" for tag, value in pairs]

    def line_key(self, system: str, line: Mapping[str, Any]) -> tuple[str, str] | None:
        """What pairs two existing lines of a linked order; None when nothing does."""
        key = merge.line_match_key(self.config, System(system), line)
        return None if key[0] == "none" else key
