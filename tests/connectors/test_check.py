"""``shopsync check`` against the real emulator and reference webshop processes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from typer.testing import CliRunner

from shopsync.checks import EXIT_AUTH, EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, run_check
from shopsync.cli import app
from shopsync.config.model import Config, Datatype, SelectiveConfig, System
from shopsync.connectors.webcrm.client import REAUTHORISE_HINT
from shopsync.connectors.webshop.client import WebshopClient
from shopsync.emulators.launch import RunningServer, free_port
from shopsync.engine.mapping.orders import ORDER_NEEDS_CUSTOMER
from shopsync.engine.preflight import MAX_REASONS, Preflight
from tests.conftest import AUTH_CODE, WEBSHOP_TOKEN
from tests.connectors.conftest import control, make_client, seed_organisations


def write_config(tmp_path: Path, crm_url: str, shop_url: str, extra: str = "") -> Path:
    path = tmp_path / "shopsync.toml"
    path.write_text(
        f'[webcrm]\nbase_url = "{crm_url}"\nmax_retries = 1\n'
        f'[webshop]\nbase_url = "{shop_url}"\nmax_retries = 1\n{extra}'
    )
    return path


def block(text: str, title: str) -> dict[tuple[str, str], list[list[str]]]:
    """The rows of one piped listing (a title line, a header line, tab-separated rows up
    to a blank line), by their first two cells: datatype and direction."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(title))
    rows: dict[tuple[str, str], list[list[str]]] = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = line.split("\t")
        assert len(cells) > 2, (line, text)
        rows.setdefault((cells[0], cells[1]), []).append(cells[2:])
    return rows


def check(path: Path, env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    code = run_check(path, env=env, console=Console(file=out, width=250, color_system=None))
    return code, out.getvalue()


GOOD_ENV = {"SHOPSYNC_WEBCRM_AUTH_CODE": AUTH_CODE, "SHOPSYNC_WEBSHOP_TOKEN": WEBSHOP_TOKEN}


def test_check_reports_both_systems(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    seed_organisations(reset_emulator, 1234)
    control(reset_webshop, "POST", "/seed", n=7, seed=1, reset=True)
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_OK, text
    customers = next(line for line in text.splitlines() if "Organisations ⇄ customers" in line)
    assert "1,234" in customers and "empty PATCH accepted" in customers
    assert "(412)" in customers  # the webshop write probe
    assert "requests left in the current 60 s window" in text
    assert AUTH_CODE not in text and WEBSHOP_TOKEN not in text
    # nothing was written by the probes
    assert control(reset_emulator, "GET", "/stats")["Organisation"] == 1234


def test_refused_webcrm_token(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    env = {**GOOD_ENV, "SHOPSYNC_WEBCRM_AUTH_CODE": "revoked-token-99"}
    code, text = check(path, env)
    assert code == EXIT_AUTH
    assert REAUTHORISE_HINT in " ".join(text.split())
    assert "revoked-token-99" not in text


def test_wrong_webshop_token_and_cli_exit_code(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    env = {**GOOD_ENV, "SHOPSYNC_WEBSHOP_TOKEN": "wrong-shop-token"}
    result = CliRunner().invoke(app, ["check", "-c", str(path)], env=env)
    assert result.exit_code == EXIT_AUTH
    assert "refused the token" in result.output
    assert "wrong-shop-token" not in result.output


def test_unreachable_webcrm(tmp_path: Path, reset_webshop: RunningServer) -> None:
    path = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", reset_webshop.url)
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_UNREACHABLE
    assert "cannot reach webCRM" in text


def test_config_problems(tmp_path: Path) -> None:
    path = write_config(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2", "[oops]\nx = 1\n")
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_CONFIG
    assert "line 7: oops: unknown key 'oops'" in text
    path = write_config(tmp_path, "http://127.0.0.1:1", "http://127.0.0.1:2")
    code, text = check(path, {})
    assert code == EXIT_CONFIG
    assert "SHOPSYNC_WEBCRM_AUTH_CODE" in text and "SHOPSYNC_WEBSHOP_TOKEN" in text


# ------------------------------------------------------------ before the first sync
def _seed_for_preflight(crm_server: RunningServer, shop_server: RunningServer) -> None:
    crm = make_client(crm_server)

    def product(sku: str | None, **kw: Any) -> dict[str, Any]:
        return {"ProductCustom1": sku, "ProductCustom2": f"Vare {sku}", "ProductPrice": 100.0,
                "ProductVatCode": "25", "ProductStockStatus": "In stock", **kw}  # fmt: skip

    results = crm.upsert(
        "Product",
        [
            product("OK-1"),
            product("DEFAULTS-1", ProductStockStatus=None, ProductVatCode=None),  # defaults
            product("DEFAULTS-2", ProductStockStatus=""),  # default
            product("NOPRICE-1", ProductPrice=None),
            product("NOPRICE-2", ProductPrice=None),
            product("CODE-S", ProductVatCode="S"),
            product(None, ProductStockStatus="Maybe"),  # two problems, one record
            product("NEGATIVE", ProductPrice=-5.0),  # the webshop contract refuses it
        ],
    )
    assert all(r.error is None for r in results), results
    (org_ok, _unnamed) = (
        int(r.id)
        for r in crm.upsert(
            "Organisation",
            [{"OrganisationName": "Ærø Møbler A/S"}, {"OrganisationName": ""}],
        )
    )
    (opp_ok, _) = (
        int(r.id)
        for r in crm.upsert(
            "Opportunity",
            [
                {"OpportunityOrganisationId": org_ok, "OpportunityPercent": 50},  # numbered
                {"OpportunityDescription": "no customer", "OpportunityPercent": 50},
            ],
        )
    )
    crm.upsert(
        "QuotationLine",
        [
            {"QuotationLineOpportunityId": opp_ok, "QuotationLineData2": "Levering uge 48"},
            {
                "QuotationLineOpportunityId": opp_ok,
                "QuotationLineData1": "OK-1",
                "QuotationLineQuantity": 2.0,
                "QuotationLinePrice": 100.0,
            },
        ],
    )
    crm.close()
    shop = WebshopClient(shop_server.url, WEBSHOP_TOKEN)
    shop.create("customers", {"name": "Kunde A/S"}, idempotency_key="c1")
    shop.create(
        "customers",
        {"name": "Lang By GmbH", "billing_address": {"city": "X" * 60}},  # webCRM allows 50
        idempotency_key="c2",
    )
    shop.close()


def shop_state(server: RunningServer) -> list[tuple[str, int]]:
    with WebshopClient(server.url, WEBSHOP_TOKEN) as shop:
        return sorted(
            (item["id"], item.get("version", 0))
            for collection in ("customers", "products", "orders")
            for page in shop.iter_changes(collection, None, include_deleted=True)
            for item in page.items
        )


def test_check_counts_what_a_first_sync_would_put_aside(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    _seed_for_preflight(reset_emulator, reset_webshop)
    before_crm = control(reset_emulator, "GET", "/stats")
    before_shop = shop_state(reset_webshop)
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    code, text = check(path, GOOD_ENV)
    assert code == EXIT_OK, text  # records to be put aside are reported, not a failure
    summary = block(text, "before the first sync")
    why = block(text, "why")
    defaults = block(text, "defaults for empty webCRM fields")
    products, crm_shop = "Products ⇄ products", "webCRM → webshop"

    # per datatype and direction: records read, would be put aside, with a default
    assert summary[products, crm_shop] == [["8", "5", "2"]]
    assert summary[products, "webshop → webCRM"] == [["0", "0", "0"]]
    assert summary["Organisations ⇄ customers", crm_shop] == [["2", "1", "0"]]
    assert summary["Organisations ⇄ customers", "webshop → webCRM"] == [["2", "1", "0"]]
    assert summary["Opportunities ⇄ orders", crm_shop] == [["2", "1", "1"]]
    assert summary["Quotation lines ⇄ order lines", crm_shop] == [["2", "0", "1"]]

    # why: the most frequent first, every reason complete, with record ids and labels
    reasons = why[products, crm_shop]
    assert reasons[0][:2] == ["2", "ProductPrice: is empty, and the webshop requires a unit_price"]
    assert "NOPRICE-1" in reasons[0][2] and "NOPRICE-2" in reasons[0][2]
    texts = {r[1]: r for r in reasons[1:]}
    assert all(r[0] == "1" for r in reasons[1:])
    assert set(texts) == {
        "ProductCustom1: is empty, and the webshop requires a sku",  # one record, two reasons
        "ProductStockStatus: 'Maybe' is not in mapping.stock_status ('In stock', "
        "'Out of stock', 'Backorder')",
        "ProductVatCode: VAT code 'S' is not a number and mapping.vat_codes lists no codes",
        "ProductPrice: the webshop contract refuses unit_price: '-5.00' is not a non-negative "
        "amount as a decimal string, at most 13 digits before and 2 after the point",
    }
    assert "NEGATIVE" in texts[next(t for t in texts if "'-5.00'" in t)][2]
    assert why["Organisations ⇄ customers", crm_shop] == [
        ["1", "OrganisationName: is empty, and the webshop requires a name", "2"]
    ]
    (long_city,) = why["Organisations ⇄ customers", "webshop → webCRM"]
    assert long_city[:2] == ["1", "OrganisationCity: is 60 characters; webCRM allows at most 50"]
    assert long_city[2].endswith("(Lang By GmbH)")
    assert why["Opportunities ⇄ orders", crm_shop] == [
        ["1", f"OpportunityOrganisationId: is empty; {ORDER_NEEDS_CUSTOMER}", "2 (no customer)"]
    ]
    assert ("Quotation lines ⇄ order lines", crm_shop) not in why  # a text line syncs

    # the defaults that stood in for empty webCRM fields
    assert sorted(defaults[products, crm_shop]) == [
        ["1", "ProductVatCode is empty → 25 % (mapping.vat_codes)"],
        ["2", "ProductStockStatus is empty → in_stock (mapping.stock_status)"],
    ]
    assert sorted(defaults["Quotation lines ⇄ order lines", crm_shop]) == [
        ["1", "QuotationLinePrice is empty → 0.00 (empty is 0)"],
        ["1", "QuotationLineQuantity is empty → 0 (empty is 0)"],
    ]
    # reading is all it did
    assert control(reset_emulator, "GET", "/stats") == before_crm
    assert shop_state(reset_webshop) == before_shop


def test_check_json_and_a_clean_catalogue(
    tmp_path: Path, reset_emulator: RunningServer, reset_webshop: RunningServer
) -> None:
    control(reset_emulator, "POST", "/seed", n=20, seed=3, reset=True)
    control(reset_webshop, "POST", "/seed", n=5, seed=3, reset=True)
    path = write_config(tmp_path, reset_emulator.url, reset_webshop.url)
    result = CliRunner().invoke(app, ["check", "-c", str(path), "--json"], env=GOOD_ENV)
    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.stdout)
    assert data["exit_status"] == EXIT_OK
    assert [s["name"] for s in data["systems"]] == ["webCRM", "webshop"]
    assert data["systems"][0]["datatypes"]["customers"]["records"] == 20
    tallies = {(t["datatype"], t["from"]): t for t in data["put_aside"]}
    assert len(tallies) == 8
    customers = tallies["customers", "webcrm"]
    assert customers["records"] == 20 and customers["to"] == "webshop"
    # the seed data is what the demo syncs: nothing of it would be put aside
    assert {k: t["put_aside"] for k, t in tallies.items() if t["put_aside"]} == {}
    assert (
        "[green]" not in result.stdout
        and "✓" in data["systems"][0]["datatypes"]["customers"]["read"]
    )
    # a datatype not shared is said so, not counted
    disabled = write_config(
        tmp_path, reset_emulator.url, reset_webshop.url,
        "[products]\nto_webshop = { enabled = false, full_sync = true }\n",
    )  # fmt: skip
    code, text = check(disabled, GOOD_ENV)
    assert code == EXIT_OK
    assert "not shared ([products] to_webshop.enabled = false)" in text


def test_preflight_keeps_counts_only_and_follows_the_configuration() -> None:
    """No server: the counting itself. Memory stays bounded however many distinct
    reasons the data has; selective sync leaves opportunities out rather than aside."""
    cfg = Config(selective=SelectiveConfig(only_won_opportunities=True))
    pre = Preflight(cfg)
    pre.webcrm_records(
        Datatype.products,
        (
            {
                "ProductId": i,
                "ProductCustom1": f"S-{i}",
                "ProductCustom2": "x",
                "ProductPrice": 1.0,
                "ProductVatCode": f"code {i}",
            }
            for i in range(MAX_REASONS + 50)
        ),
    )
    products = pre.tally(Datatype.products, System.webcrm)
    assert products.read == products.put_aside == MAX_REASONS + 50
    assert len(products.reasons) == MAX_REASONS and products.other_reasons == 50
    assert all(len(r.examples) <= 3 for r in products.reasons.values())
    assert products.defaults == {}  # a record put aside is written with no default
    pre.webcrm_records(
        Datatype.orders,
        [
            {"OpportunityId": 1, "OpportunityOrganisationId": 7, "OpportunityPercent": 50},
            {"OpportunityId": 2, "OpportunityOrganisationId": 7, "OpportunityPercent": 100},
        ],
    )
    orders = pre.tally(Datatype.orders, System.webcrm)
    assert orders.read == 2 and orders.put_aside == 0
    assert orders.not_created == {"selective sync: only won opportunities become orders": 1}
    as_json = orders.to_json()
    assert as_json["not_created"] == [
        {"reason": "selective sync: only won opportunities become orders", "records": 1}
    ]
    assert json.loads(json.dumps(products.to_json()))["other_reasons"] == 50
