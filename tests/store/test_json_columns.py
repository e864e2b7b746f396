"""JSON columns are written and read by orjson, with ``json`` where orjson refuses."""

from __future__ import annotations

import json
import math

from shopsync.store.db import dump_json, load_json


def test_what_orjson_writes_reads_back_the_same() -> None:
    value = {"name": "Nørre Æble 🍎", "n": [1, 2.5, None, True], "k": {"x": "y"}}
    assert load_json(dump_json(value)) == value
    assert json.loads(dump_json(value)) == value


def test_what_orjson_refuses_falls_back_to_json() -> None:
    value = {"name": "Caf\ud83d", "big": 2**70}
    assert load_json(dump_json(value)) == value


def test_rows_written_by_json_before_are_still_read() -> None:
    old = json.dumps({"price": float("nan"), "text": "\ud800", "é": "😀"})
    read = load_json(old)
    assert math.isnan(read["price"]) and read["text"] == "\ud800" and read["é"] == "😀"
