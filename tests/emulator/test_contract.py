"""Every implemented endpoint answers, over real HTTP, what the swagger definition says.

Response schemas are looked up in ``webcrm-swagger.json`` by method and path template,
so the expectation is the published definition, not a copy of it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shopsync.connectors.webcrm.schema import ENTITIES
from shopsync.emulators.launch import RunningServer

from .conftest import AUTH_CODE, Contract, seed

# A minimal valid new record per datatype (lines get their opportunity filled in).
NEW: dict[str, dict[str, Any]] = {
    "Organisation": {"OrganisationName": "Æbleø ApS", "OrganisationCity": "Ærøskøbing"},
    "Opportunity": {"OpportunityDescription": "Tilbud på møbler", "OpportunityPercent": 25},
    "QuotationLine": {"QuotationLineData1": "SKU-X", "QuotationLineQuantity": 2.0},
    "Product": {"ProductCustom1": "SKU-Æ-1", "ProductPrice": 99.5},
}
ERROR_BODY = {
    "type": "object",
    "required": ["Message", "Type"],
    "properties": {"Message": {"type": "string"}, "Type": {"type": "string"}},
}


def _new(name: str, crm: httpx.Client) -> dict[str, Any]:
    record = dict(NEW[name])
    if name == "QuotationLine":
        opp = crm.get("/Opportunities", params={"Size": 1}).json()[0]
        record["QuotationLineOpportunityId"] = opp["OpportunityId"]
    return record


@pytest.mark.parametrize("name", list(ENTITIES))
def test_entity_endpoints_match_the_definition(
    name: str, crm: httpx.Client, reset_emulator: RunningServer, contract: Contract
) -> None:
    seed(reset_emulator.url, 20)
    spec = ENTITIES[name]
    coll = spec.collection

    rows = contract.check("get", f"/{coll}", crm.get(f"/{coll}", params={"Page": 1, "Size": 5}))
    assert 1 <= len(rows) <= 5
    assert [r[spec.id_field] for r in rows] == sorted(r[spec.id_field] for r in rows)

    first = rows[0][spec.id_field]
    one = contract.check("get", f"/{coll}/{{id}}", crm.get(f"/{coll}/{first}"))
    assert one == rows[0]

    created = crm.post(f"/{coll}", json=_new(name, crm))
    assert created.status_code == 200, created.text
    new_id = created.json()
    assert isinstance(new_id, int) and new_id > first
    if contract.response_schema("post", f"/{coll}") is not None:
        contract.check("post", f"/{coll}", created)

    put = crm.put(f"/{coll}/{new_id}", json=_new(name, crm))
    contract.check("put", f"/{coll}/{{id}}", put)
    assert put.content == b""

    ids = contract.check(
        "patch", f"/{coll}", crm.patch(f"/{coll}", json=[_new(name, crm), {spec.id_field: new_id}])
    )
    assert len(ids) == 2 and ids[1] == str(new_id) and ids[0].isdigit()

    if name in ("QuotationLine", "Product"):
        deleted = crm.delete(f"/{coll}/{new_id}")
        contract.check("delete", f"/{coll}/{{id}}", deleted)
        assert crm.get(f"/{coll}/{new_id}").status_code == 404
    else:
        assert "delete" not in contract.swagger["paths"][f"/{coll}/{{id}}"]
        assert crm.delete(f"/{coll}/{new_id}").status_code == 405


@pytest.mark.parametrize("name", list(ENTITIES))
def test_hook_endpoints_match_the_definition(
    name: str, crm: httpx.Client, contract: Contract
) -> None:
    coll = ENTITIES[name].collection
    base = f"/{coll}/Hooks"
    body = {"TargetUrl": "http://127.0.0.1:9/hook", "EventType": "Update", "IsEnabled": False,
            "Filter": ["All"]}  # fmt: skip
    created = crm.post(base, json=body)
    hid = contract.check("post", base, created)
    assert isinstance(hid, int)

    listed = contract.check("get", base, crm.get(base, params={"Page": 1, "Size": 10}))
    assert [h["Id"] for h in listed] == [hid]
    one = contract.check("get", f"{base}/{{id}}", crm.get(f"{base}/{hid}"))
    assert one["TargetUrl"] == body["TargetUrl"] and one["Filter"] == ["All"]

    put = crm.put(f"{base}/{hid}", json={**body, "EventType": "Delete"})
    contract.check("put", f"{base}/{{id}}", put)
    assert crm.get(f"{base}/{hid}").json()["EventType"] == "Delete"
    contract.check("delete", f"{base}/{{id}}", crm.delete(f"{base}/{hid}"))
    assert crm.get(f"{base}/{hid}").status_code == 404


def test_read_endpoints_of_organisations_and_opportunities(
    crm: httpx.Client, reset_emulator: RunningServer, contract: Contract
) -> None:
    seed(reset_emulator.url, 20)
    orgs = crm.get("/Organisations", params={"Size": 1000}).json()
    stamps = sorted(o["OrganisationUpdatedAt"] for o in orgs)
    start, end = stamps[3], stamps[10]
    template = "/Organisations/FindByUpdateDates/{startDate}/{endDate}"
    found = contract.check(
        "get", template, crm.get(f"/Organisations/FindByUpdateDates/{start}/{end}")
    )
    assert sorted(o["OrganisationUpdatedAt"] for o in found) == stamps[3:10]

    opp = crm.get("/Opportunities", params={"Size": 1}).json()[0]
    lines = contract.check(
        "get",
        "/Opportunities/{id}/QuotationLines",
        crm.get(f"/Opportunities/{opp['OpportunityId']}/QuotationLines", params={"Size": 1000}),
    )
    assert 1 <= len(lines) <= 20
    assert {ln["QuotationLineOpportunityId"] for ln in lines} == {opp["OpportunityId"]}


@pytest.mark.parametrize("name", list(ENTITIES))
def test_queries_rows_match_their_dto(
    name: str, crm: httpx.Client, reset_emulator: RunningServer, contract: Contract
) -> None:
    """``/Queries`` is not in the definition; its rows must still be the datatype's DTO."""
    seed(reset_emulator.url, 20)
    spec = ENTITIES[name]
    r = crm.get("/Queries", params={"script": f"SELECT * FROM {name}", "Size": 1000})
    assert r.status_code == 200, r.text
    rows = r.json()
    assert rows
    contract.validate(rows, {"type": "array", "items": contract.dto(spec.dto)})


def test_auth_answers_match_the_definition(
    webcrm_emulator: RunningServer, contract: Contract
) -> None:
    url = webcrm_emulator.url
    ok = httpx.post(url + "/Auth/ApiLogin", data={"authCode": AUTH_CODE}, timeout=30)
    body = contract.check("post", "/Auth/ApiLogin", ok)
    assert body["IsError"] is False and body["TokenType"] == "Bearer"
    assert body["ExpiresIn"] == 3600

    refreshed = httpx.post(
        url + "/Auth/ApiRefresh", headers={"refreshToken": body["RefreshToken"]}, timeout=30
    )
    new = contract.check("post", "/Auth/ApiRefresh", refreshed)
    assert new["AccessToken"] != body["AccessToken"]

    bad = httpx.post(url + "/Auth/ApiLogin", data={"authCode": "wrong"}, timeout=30)
    assert bad.status_code == 401
    schema = contract.response_schema("post", "/Auth/ApiLogin")
    assert schema is not None
    contract.validate(bad.json(), schema)
    assert bad.json()["IsError"] is True and bad.json()["AccessToken"] is None


def test_error_answers_have_a_message(crm: httpx.Client, contract: Contract) -> None:
    for r in (
        crm.get("/Organisations/424242"),
        crm.post("/Organisations", json={"OrganisationName": 5}),
        crm.get("/Queries", params={"script": "DROP TABLE Organisation"}),
        crm.get("/Organisations", params={"Size": 0}),
        crm.delete("/Opportunities/1"),
    ):
        assert r.status_code in (400, 404, 405), r.text
        contract.validate(r.json(), ERROR_BODY)


def test_the_contract_check_itself_rejects_what_the_definition_forbids(
    contract: Contract,
) -> None:
    """Guard against a vacuous contract: wrong types and over-long strings fail it."""
    import jsonschema

    schema = contract.dto("OrganisationDto")
    good = {"OrganisationId": 1, "OrganisationName": "x"}
    contract.validate(good, {"type": "object"})  # shape only
    jsonschema.Draft4Validator({**schema, "definitions": contract.defs}).validate(good)
    for bad in (
        {"OrganisationId": "1"},
        {"OrganisationId": None},
        {"OrganisationId": 1, "OrganisationName": "x" * 201},
        {"OrganisationId": 1, "OrganisationNoAds": "yes"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft4Validator({**schema, "definitions": contract.defs}).validate(bad)
    with pytest.raises(AssertionError, match="missing"):
        contract.validate([good], {"type": "array", "items": schema})
