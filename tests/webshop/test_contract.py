"""The published contract: where it lives, that it loads, that its examples obey it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from shopsync.contract import contract_text, load_contract
from shopsync.emulators.webshop.webhooks import EVENTS

REPO = Path(__file__).resolve().parents[2]
BASE = "urn:shopsync:webshop-api"


def validator(schema_name: str) -> Draft202012Validator:
    registry: Registry[Any] = Registry().with_resource(
        BASE, Resource(contents=load_contract(), specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{BASE}#/components/schemas/{schema_name}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def test_repository_copy_is_a_link_to_the_packaged_contract() -> None:
    link = REPO / "openapi" / "webshop-api.yaml"
    assert link.is_symlink()
    assert not os.path.isabs(os.readlink(link))
    assert link.resolve() == (REPO / "src/shopsync/contract/webshop-api.yaml").resolve()
    assert link.read_text(encoding="utf-8") == contract_text()


def test_it_is_openapi_31_with_every_operation() -> None:
    """(That schemathesis loads it is shown by every conformance run.)"""
    contract = load_contract()
    assert contract["openapi"] == "3.1.0"
    labels = {
        f"{method.upper()} {path}"
        for path, item in contract["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "delete")
    }
    for collection in ("customers", "products", "orders"):
        assert {
            f"GET /{collection}", f"POST /{collection}", f"GET /{collection}/{{id}}",
            f"PATCH /{collection}/{{id}}", f"DELETE /{collection}/{{id}}",
        } <= labels  # fmt: skip
    assert {
        "POST /webhooks",
        "GET /webhooks",
        "GET /webhooks/{id}",
        "DELETE /webhooks/{id}",
    } <= labels
    assert {  # optional: batch writes, advertised by the capabilities document
        "GET /capabilities",
        "POST /customers/batch",
        "POST /products/batch",
        "POST /orders/batch",
    } <= labels


@pytest.mark.parametrize(
    ("example", "schema"),
    [
        ("CustomerCreate", "CustomerCreate"),
        ("Customer", "Customer"),
        ("CustomerPage", "CustomerPage"),
        ("ProductCreate", "ProductCreate"),
        ("Product", "Product"),
        ("OrderCreate", "OrderCreate"),
        ("Order", "Order"),
        ("CustomerBatch", "BatchRequest"),
    ],
)
def test_examples_obey_their_schemas(example: str, schema: str) -> None:
    value = load_contract()["components"]["examples"][example]["value"]
    validator(schema).validate(value)


def test_every_response_and_patch_example_obeys_its_schema() -> None:
    contract = load_contract()
    checked = 0
    for kind in ("responses", "schemas"):
        assert contract["components"][kind]
    for response in contract["components"]["responses"].values():
        for media in response.get("content", {}).values():
            if "example" in media:
                ref = media["schema"]["$ref"].rsplit("/", 1)[1]
                validator(ref).validate(media["example"])
                checked += 1
    for path in contract["paths"].values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for media in operation.get("requestBody", {}).get("content", {}).values():
                for example in media.get("examples", {}).values():
                    if "value" in example:
                        validator(media["schema"]["$ref"].rsplit("/", 1)[1]).validate(
                            example["value"]
                        )
                        checked += 1
    assert checked >= 10


def test_schemas_refuse_what_the_server_refuses() -> None:
    product = load_contract()["components"]["examples"]["ProductCreate"]["value"]
    assert not validator("ProductCreate").is_valid({**product, "unit_price": 1249.5})
    assert not validator("ProductCreate").is_valid({**product, "unit_price": "1249.505"})
    assert not validator("ProductCreate").is_valid({**product, "id": "prd_x"})
    assert not validator("CustomerPatch").is_valid({"name": None})
    assert validator("CustomerPatch").is_valid({"notes": None})


def test_batch_schemas_tell_items_and_results_apart() -> None:
    create = {"op": "create", "idempotency_key": "k-1", "body": {"name": "x"}}
    update = {"op": "update", "id": "cus_1", "if_match": '"3"', "patch": {"notes": None}}
    assert validator("BatchRequest").is_valid({"items": [create, update]})
    for bad in (
        {"items": []},
        {"items": [create], "dry_run": True},
        {"items": [{**create, "op": "upsert"}]},
        {"items": [{**create, "idempotency_key": ""}]},
        {"items": [{k: v for k, v in create.items() if k != "idempotency_key"}]},
        {"items": [{**update, "if_match": 3}]},
        {"items": [{**update, "if_match": "W/3"}]},
        {"items": [{**update, "body": {}}]},
    ):
        assert not validator("BatchRequest").is_valid(bad), bad
    customer = load_contract()["components"]["examples"]["Customer"]["value"]
    problem = {"type": "urn:x", "title": "Conflict", "status": 409, "errors": []}
    results = validator("CustomerBatchResults")
    assert results.is_valid(
        {"results": [{"status": 201, "record": customer, "replayed": True},
                     {"status": 409, "problem": problem}]}
    )  # fmt: skip
    assert not results.is_valid({"results": [{"status": 201, "problem": problem}]})
    assert not results.is_valid({"results": [{"status": 422, "record": customer}]})
    assert validator("Capabilities").is_valid({"batch": {"max_items": 500}, "future": {}})
    assert not validator("Capabilities").is_valid({"batch": {"max_items": 0}})


def test_event_names_match_the_server() -> None:
    assert tuple(load_contract()["components"]["schemas"]["EventName"]["enum"]) == EVENTS
