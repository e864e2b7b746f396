"""The inbox keeps a webCRM record without its null fields (``staging.without_nulls``):
every reader of a staged record must read a null field and an absent one the same.

webCRM hands back every field of its definition, null when unset; the records here are
such full records, a random set of fields given a value of the field's type, read
through everything that takes a staged webCRM record: the mapping's values and the
webshop body, the merge keys, the record's label and the hygiene check.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shopsync.config.model import Config, Datatype
from shopsync.connectors.webcrm.fieldspec import FieldSpec
from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.engine import hygiene
from shopsync.engine.labels import record_label
from shopsync.engine.mapping import mappings
from shopsync.engine.matching import Matcher
from shopsync.engine.model import WEBCRM
from shopsync.engine.staging import without_nulls
from shopsync.engine.streams import STREAMS
from tests.mapping.mapping_fakes import FakeContext

CFG = Config()
MAPS = mappings(CFG)
MATCHER = Matcher(CFG)
CTX = (
    FakeContext(config=CFG)
    .link(Datatype.customers, "7", "cus_7")
    .link(Datatype.products, "9", "prd_9")
)
CTX.skus["SKU-1"] = "prd_9"


def value_of(f: FieldSpec) -> st.SearchStrategy[Any]:
    """A value webCRM could hold in ``f`` (the ids of references point at linked or
    unlinked records alike)."""
    if f.enum:
        return st.sampled_from(f.enum)
    if f.type == "boolean":
        return st.booleans()
    if f.type == "integer":
        return st.sampled_from([0, 1, 7, 9, 42, 100_000])
    if f.type == "number":
        return st.sampled_from([0, 0.5, 12.25, 99.0, 1_000_000])
    if f.format == "date-time" or f.name.endswith(("At", "Date")):
        return st.sampled_from(["2026-05-01T12:30:00", "2026-11-30T00:00:00Z", ""])
    return st.sampled_from(
        ["", " ", "Nørre Æble ApS", "DK12345678", "8000", "Danmark", "DK", "SKU-1",
         "www.example.dk", "info@example.dk", "12,50", "x" * (f.max_length or 20)]
    )  # fmt: skip


def _outcome(fn: Any, *args: Any) -> Any:
    """What ``fn`` returns, or the exception it raises (type and message)."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # the same refusal either way is the same outcome
        return ("raised", type(exc).__name__, str(exc))


def test_only_nulls_go() -> None:
    record = {"A": None, "B": "", "C": 0, "D": False, "E": [], "F": "x"}
    assert without_nulls(record) == {"B": "", "C": 0, "D": False, "E": [], "F": "x"}
    assert without_nulls(None) is None


@pytest.mark.parametrize("dt", list(Datatype), ids=lambda dt: dt.value)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_null_field_reads_as_an_absent_one(dt: Datatype, data: st.DataObject) -> None:
    spec = ENTITIES[STREAMS[dt].webcrm_entity]
    record: dict[str, Any] = dict.fromkeys(f.name for f in spec.fields)
    for f in spec.fields:
        if data.draw(st.integers(0, 3)) == 0:
            record[f.name] = data.draw(value_of(f))
    record[spec.id_field] = 1
    stripped = without_nulls(record)
    assert stripped is not None and None not in stripped.values()
    mapping = MAPS[dt]
    assert mapping.webcrm_values(stripped) == mapping.webcrm_values(record)
    assert _outcome(mapping.to_webshop, stripped, CTX) == _outcome(mapping.to_webshop, record, CTX)
    assert _outcome(MATCHER.keys, dt, WEBCRM, stripped) == _outcome(
        MATCHER.keys, dt, WEBCRM, record
    )
    assert record_label(CFG, dt, WEBCRM, stripped) == record_label(CFG, dt, WEBCRM, record)
    assert hygiene.problem(STREAMS[dt], WEBCRM, stripped) == hygiene.problem(
        STREAMS[dt], WEBCRM, record
    )
