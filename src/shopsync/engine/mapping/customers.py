"""Organisations ⇄ Customer: the first table of ``dataflow.md``, row by row.

webCRM's maximum lengths (``OrganisationName`` 200, ``OrganisationCity`` 50, ...) are not
repeated here: every body built by ``to_webcrm`` is checked against the generated schema
(``connectors/webcrm/schema.py``), and a value that is too long puts the record aside.
"""

from __future__ import annotations

from shopsync.config.model import Config, Datatype
from shopsync.engine.mapping.base import FieldMap, LinkMapping, both, require_webcrm_field
from shopsync.engine.mapping.conversions import COUNTRY, TEXT, required


def customer_mapping(cfg: Config) -> LinkMapping:
    """The Organisations ⇄ Customer link; ``OrganisationId`` ⇄ ``id`` is the link itself."""
    # fmt: off
    rows: list[FieldMap] = [
        both("OrganisationName",             "name",                         required(TEXT, "a name")),
        both("OrganisationAddress",          "billing_address.line1",        TEXT),
        both("OrganisationPostCode",         "billing_address.postal_code",  TEXT),
        both("OrganisationCity",             "billing_address.city",         TEXT),
        both("OrganisationState",            "billing_address.region",       TEXT),
        both("OrganisationCountry",          "billing_address.country",      COUNTRY),
        both("OrganisationDeliveryAddress",  "shipping_address.line1",       TEXT),
        both("OrganisationDeliveryPostCode", "shipping_address.postal_code", TEXT),
        both("OrganisationDeliveryCity",     "shipping_address.city",        TEXT),
        both("OrganisationTelephone",        "phone",                        TEXT),
        both("OrganisationWww",              "website",                      TEXT),
        both("OrganisationVatNumber",        "vat_number",                   TEXT),
    ]
    # fmt: on
    if cfg.fields.organisation_email:
        require_webcrm_field(
            "Organisation", cfg.fields.organisation_email, "fields.organisation_email"
        )
        rows.append(both(cfg.fields.organisation_email, "email", TEXT))
    return LinkMapping(
        Datatype.customers,
        tuple(rows),
        webcrm_entity="Organisation",
        id_fields=("OrganisationId", "id"),
    )
