"""One record synced on demand (``sync --record``, a service hook that names a record):
read by its id, its datatype's cursor left alone, a record that is gone seen as deleted
at once (no sweep), and our own write read back dropped like any echo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopsync.cli import app
from shopsync.config.model import Datatype
from shopsync.engine.restage import parse_target
from shopsync.store import repo
from tests.engine.conftest import Env, crm_product, customer, org
from tests.engine.test_idle import order_with_two_lines
from tests.engine.test_lines import qline, shop_line
from tests.engine.test_orders import opportunity
from tests.test_cli_output import SECRETS, shopsync, write_config

C, P, ORD, L = Datatype.customers, Datatype.products, Datatype.orders, Datatype.order_lines


def test_a_named_record_is_read_by_id_and_nothing_else_is_read(env: Env) -> None:
    named = env.crm_create("Organisation", org("Firma Navngivet", OrganisationWww="navn.dk"))
    other = env.crm_create("Organisation", org("Firma Anden", OrganisationVatNumber="DK11111111",
                                                OrganisationWww="anden.dk"))  # fmt: skip
    shop_only = env.shop_create("customers", customer("Kunde Unbekannt"))
    report = env.sync(records={C: {"webcrm": [str(named)]}})
    assert report.stats[C].created_in_webshop == 1
    assert env.link(C, webcrm=named) is not None
    assert env.link(C, webcrm=other) is None  # not named: not read
    assert env.link(C, webshop=shop_only["id"]) is None
    # webCRM: one GET of the record (a login at most besides); nothing from the shop
    # but the create and its capabilities.
    assert report.webcrm_requests <= 2, report.webcrm_requests
    with env.inst.session() as s:  # no cursor moved: the next run reads since the old one
        assert repo.get_cursor(s, C.value, "webcrm") is None
    after = env.sync()
    assert env.link(C, webcrm=other) is not None and env.link(C, webshop=shop_only["id"])
    assert after.stats[C].created_in_webshop == 1 and after.stats[C].created_in_webcrm == 1


def test_a_named_record_that_is_gone_is_deleted_without_a_sweep(env: Env) -> None:
    product = env.crm_create("Product", crm_product())
    env.sync()
    shop_id = env.link(P, webcrm=product).webshop_id
    env.crm.delete("Product", product)
    report = env.sync(records={P: {"webcrm": [str(product)]}})
    assert report.stats[P].deleted == 1
    assert env.shop_get("products", shop_id)["active"] is False
    with env.inst.session() as s:
        assert repo.get_meta(s, "sweep:products") is not None  # the first run's sweep
    # An unlinked id that is gone (or never was) is nobody's business.
    assert env.sync(records={P: {"webcrm": ["987654"]}}).writes == 0


def test_a_deleted_quotation_line_named_by_id_leaves_its_order(env: Env) -> None:
    _, keep, gone, order_id = order_with_two_lines(env)
    env.crm.delete("QuotationLine", gone)
    report = env.sync(records={L: {"webcrm": [str(gone)]}})
    assert report.stats[L].deleted == 1
    assert [x["sku"] for x in env.shop_get("orders", order_id)["lines"]] == ["SKU-1"]
    assert env.link(L, webcrm=keep).state == "active"


def test_a_shop_order_named_by_id_brings_its_line_edit_and_its_echo_is_dropped(
    env: Env,
) -> None:
    org_id = env.crm_create("Organisation", org())
    opp_id = env.crm_create("Opportunity", opportunity(org_id))
    line_id = env.crm_create("QuotationLine", qline(opp_id))
    env.sync()
    order_id = env.link(ORD, webcrm=opp_id).webshop_id
    lines = env.shop_get("orders", order_id)["lines"]
    env.shop_update("orders", order_id, lines=[{**x, "quantity": "4"} for x in lines])
    report = env.sync(records={ORD: {"webshop": [order_id]}})
    assert report.stats[L].updated_in_webcrm == 1
    assert env.crm_get("QuotationLine", line_id)["QuotationLineQuantity"] == 4.0
    # The hook of our own webCRM write names the line: read back, it is unchanged.
    echo = env.sync(records={L: {"webcrm": [str(line_id)]}})
    assert echo.writes == 0 and echo.stats[L].unchanged == 1
    assert shop_line(env, order_id, env.link(L, webcrm=line_id).webshop_id)["quantity"] == "4"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("customers:webcrm", "DATATYPE:SYSTEM:ID"),
        ("clients:webcrm:1", "'clients' is no datatype"),
        ("customers:erp:1", "'erp' is no system"),
        ("customers:webcrm:abc", "'abc' is no webCRM id"),
        ("customers:webcrm:0", "'0' is no webCRM id"),
        ("order_lines:webshop:l-1", "name its order instead"),
        ("orders:webshop:a/b", "no webshop id"),
    ],
)
def test_a_bad_record_name_is_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_target(text)
    result = CliRunner().invoke(app, ["sync", "--record", text, "--config", "/nonexistent"])
    assert result.exit_code == 2
    assert "--record" in result.output and problem.split("'")[-1] in result.output


def test_sync_record_from_the_command_line(env: Env, tmp_path: Path) -> None:
    named = env.crm_create("Organisation", org("Firma Kommando", OrganisationWww="kommando.dk"))
    other = env.crm_create("Organisation", org("Firma Ikke", OrganisationWww="ikke.dk",
                                                OrganisationVatNumber="DK22222222"))  # fmt: skip
    env.inst.close()
    config = write_config(
        tmp_path / "shopsync.toml", env.crm_server.url, env.shop_server.url, env.state_url
    )
    result = shopsync(
        "sync", "-c", str(config), "--record", f"customers:webcrm:{named}", "--json", env=SECRETS
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stats"]["customers"]["created_in_webshop"] == 1
    assert env.link(C, webcrm=named) is not None and env.link(C, webcrm=other) is None
