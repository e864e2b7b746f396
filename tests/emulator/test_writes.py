"""Writing through the emulator: validation, PUT/PATCH semantics, server-set fields."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from shopsync.emulators.launch import RunningServer

from .conftest import STORED_TS, seed


def _org(crm: httpx.Client, **fields: Any) -> int:
    r = crm.post("/Organisations", json={"OrganisationName": "Grøn A/S", **fields})
    assert r.status_code == 200, r.text
    rid: int = r.json()
    return rid


def _opportunity(crm: httpx.Client) -> tuple[int, int]:
    org = _org(crm)
    r = crm.post("/Opportunities", json={"OpportunityOrganisationId": org})
    assert r.status_code == 200, r.text
    return org, r.json()


@pytest.mark.parametrize(
    ("body", "field", "fragment"),
    [
        ({"OrganisationName": "x" * 201}, "OrganisationName", "longer than 200"),
        ({"OrganisationCity": "y" * 51}, "OrganisationCity", "longer than 50"),
        ({"OrganisationVatNumber": "1" * 51}, "OrganisationVatNumber", "longer than 50"),
        ({"OrganisationDeliveryAddress": "z" * 251}, "OrganisationDeliveryAddress", "250"),
        ({"OrganisationName": 17}, "OrganisationName", "expected a string"),
        ({"OrganisationOwner": "7"}, "OrganisationOwner", "expected an integer"),
        ({"OrganisationOwner": 1.5}, "OrganisationOwner", "expected an integer"),
        ({"OrganisationOwner": 2**31}, "OrganisationOwner", "int32"),
        ({"OrganisationNoAds": 1}, "OrganisationNoAds", "expected true or false"),
        ({"OrganisationXDate1": "soon"}, "OrganisationXDate1", "date-time"),
    ],
)
def test_bad_values_get_400_naming_the_field(
    crm: httpx.Client, body: dict[str, Any], field: str, fragment: str
) -> None:
    for r in (
        crm.post("/Organisations", json=body),
        crm.put(f"/Organisations/{_org(crm)}", json=body),
    ):
        assert r.status_code == 400, r.text
        assert r.json()["Field"] == field
        assert r.json()["Message"].startswith(field + ":")
        assert fragment in r.json()["Message"]


def test_enum_number_and_bad_json_are_refused(crm: httpx.Client) -> None:
    _, opp = _opportunity(crm)
    r = crm.put(f"/Opportunities/{opp}", json={"OpportunityErpStatus": "Done"})
    assert r.status_code == 400 and r.json()["Field"] == "OpportunityErpStatus"
    r = crm.post("/Opportunities", json={"OpportunityDiscount": "5"})
    assert r.status_code == 400 and r.json()["Field"] == "OpportunityDiscount"
    r = crm.post("/Organisations", content=b'{"OrganisationName": ')
    assert r.status_code == 400 and "not valid JSON" in r.json()["Message"]
    r = crm.post("/Organisations", content=b"[1]")
    assert r.status_code == 400 and "JSON object" in r.json()["Message"]
    r = crm.post("/Organisations", content=b'{"OrganisationXInt1": NaN}')
    assert r.status_code == 400


def test_paging_parameters_are_checked(crm: httpx.Client) -> None:
    for params in ({"Size": 1001}, {"Size": 0}, {"Page": 0}, {"Page": "x"}):
        r = crm.get("/Organisations", params=params)
        assert r.status_code == 400, params
        assert next(iter(params)) in r.json()["Message"]
    assert crm.get("/Organisations", params={"Size": 1000}).status_code == 200


def test_server_fields_are_set_and_client_values_ignored(crm: httpx.Client) -> None:
    rid = _org(
        crm,
        OrganisationId=999,
        OrganisationCreatedAt="2000-01-01T00:00:00Z",
        OrganisationUpdatedBy="mallory",
        NotAField="ignored",
    )
    assert rid != 999
    row = crm.get(f"/Organisations/{rid}").json()
    assert STORED_TS.match(row["OrganisationCreatedAt"])
    assert row["OrganisationCreatedAt"] == row["OrganisationUpdatedAt"]
    assert row["OrganisationCreatedBy"] == row["OrganisationUpdatedBy"] == "API"
    assert "NotAField" not in row


def test_put_replaces_and_patch_merges(crm: httpx.Client) -> None:
    rid = _org(crm, OrganisationCity="Århus", OrganisationTelephone="+45 1234")
    assert crm.put(f"/Organisations/{rid}", json={"OrganisationName": "Ny"}).status_code == 200
    row = crm.get(f"/Organisations/{rid}").json()
    assert row["OrganisationName"] == "Ny"
    assert row["OrganisationCity"] is None and row["OrganisationTelephone"] is None

    r = crm.patch("/Organisations", json=[{"OrganisationId": rid, "OrganisationCity": "Køge"}])
    assert r.json() == [str(rid)]
    row = crm.get(f"/Organisations/{rid}").json()
    assert row["OrganisationName"] == "Ny" and row["OrganisationCity"] == "Køge"

    r = crm.patch("/Organisations", json=[{"OrganisationId": rid, "OrganisationCity": None}])
    assert r.json() == [str(rid)]
    assert crm.get(f"/Organisations/{rid}").json()["OrganisationCity"] is None
    assert crm.put("/Organisations/99999", json={}).status_code == 404


def test_patch_fails_per_record_and_keeps_order(crm: httpx.Client) -> None:
    existing = _org(crm)
    r = crm.patch(
        "/Organisations",
        json=[
            {"OrganisationName": "Første"},
            {"OrganisationId": 0, "OrganisationName": "Anden"},
            {"OrganisationName": "x" * 201},
            {"OrganisationId": existing, "OrganisationCity": "Ølstykke"},
            {"OrganisationId": 77777, "OrganisationCity": "nowhere"},
            "not an object",
            {"OrganisationId": "3"},
        ],
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out[0].isdigit() and out[1].isdigit() and int(out[1]) == int(out[0]) + 1
    assert out[2] == "Error: OrganisationName: longer than 200 characters (201 given)"
    assert out[3] == str(existing)
    assert out[4].startswith("Error:") and "77777" in out[4]
    assert out[5].startswith("Error:") and "object" in out[5]
    assert out[6].startswith("Error: OrganisationId")
    names = {o["OrganisationName"] for o in crm.get("/Organisations").json()}
    assert {"Første", "Anden"} <= names and "x" * 201 not in names


def test_patch_limit_is_1000_records(crm: httpx.Client) -> None:
    r = crm.patch("/Products", json=[{"ProductCustom1": f"S{i}"} for i in range(1001)])
    assert r.status_code == 400 and "at most 1000" in r.json()["Message"]
    r = crm.patch("/Products", json=[{"ProductCustom1": f"S{i}"} for i in range(1000)])
    assert r.status_code == 200 and len(r.json()) == 1000
    assert all(x.isdigit() for x in r.json())
    r = crm.patch("/Products", json={"ProductCustom1": "not in an array"})
    assert r.status_code == 400 and "array" in r.json()["Message"]


def test_updated_at_moves_forward_on_every_write(crm: httpx.Client) -> None:
    rid = _org(crm)
    stamps = [crm.get(f"/Organisations/{rid}").json()["OrganisationUpdatedAt"]]
    for i in range(5):
        if i % 2:
            crm.put(f"/Organisations/{rid}", json={"OrganisationName": f"n{i}"})
        else:
            crm.patch("/Organisations", json=[{"OrganisationId": rid}])  # no field changes
        stamps.append(crm.get(f"/Organisations/{rid}").json()["OrganisationUpdatedAt"])
    assert all(STORED_TS.match(s) for s in stamps)
    assert stamps == sorted(set(stamps)), stamps
    created = crm.get(f"/Organisations/{rid}").json()["OrganisationCreatedAt"]
    assert created == stamps[0]

    # A bulk write gives every record its own, increasing timestamp.
    ids = crm.patch("/Organisations", json=[{"OrganisationName": str(i)} for i in range(50)]).json()
    rows = [crm.get(f"/Organisations/{i}").json() for i in ids[::7]]
    updated = [r["OrganisationUpdatedAt"] for r in rows]
    assert updated == sorted(set(updated)) and updated[0] > stamps[-1]


def test_quotation_lines_belong_to_an_opportunity(crm: httpx.Client) -> None:
    org, opp = _opportunity(crm)
    r = crm.post("/QuotationLines", json={"QuotationLineData1": "SKU"})
    assert r.status_code == 400 and r.json()["Field"] == "QuotationLineOpportunityId"
    r = crm.post("/QuotationLines", json={"QuotationLineOpportunityId": 424242})
    assert r.status_code == 400 and "does not exist" in r.json()["Message"]
    line = crm.post("/QuotationLines", json={"QuotationLineOpportunityId": opp}).json()
    assert crm.get(f"/QuotationLines/{line}").json()["QuotationLineOrganisationId"] == org
    r = crm.post("/Opportunities", json={"OpportunityOrganisationId": 424242})
    assert r.status_code == 400 and r.json()["Field"] == "OpportunityOrganisationId"

    lines = crm.get(f"/Opportunities/{opp}/QuotationLines").json()
    assert [x["QuotationLineId"] for x in lines] == [line]
    assert crm.get("/Opportunities/424242/QuotationLines").status_code == 404
    assert crm.delete(f"/QuotationLines/{line}").status_code == 200
    assert crm.get(f"/Opportunities/{opp}/QuotationLines").json() == []
    assert crm.delete(f"/QuotationLines/{line}").status_code == 404


def test_only_lines_and_products_can_be_deleted(crm: httpx.Client) -> None:
    org, opp = _opportunity(crm)
    assert crm.delete(f"/Organisations/{org}").status_code == 405
    assert crm.delete(f"/Opportunities/{opp}").status_code == 405
    assert crm.get(f"/Organisations/{org}").status_code == 200
    product = crm.post("/Products", json={"ProductCustom1": "SKU-1"}).json()
    assert crm.delete(f"/Products/{product}").status_code == 200
    assert crm.get(f"/Products/{product}").status_code == 404


def test_lists_page_by_id(crm: httpx.Client, reset_emulator: RunningServer) -> None:
    seed(reset_emulator.url, 25, products=0, opportunities=0)
    pages = [crm.get("/Organisations", params={"Page": p, "Size": 10}).json() for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    ids = [o["OrganisationId"] for page in pages for o in page]
    assert ids == list(range(1, 26))
    default = crm.get("/Organisations").json()
    assert len(default) == 25
