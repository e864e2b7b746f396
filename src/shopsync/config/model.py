"""The configuration model: every key of ``shopsync.toml`` and what it allows.

Loading (file + environment, errors that name the key, file and line) lives in
``loader.py``; this module only says what a valid configuration is. The *config* items
of ``dataflow.md`` are here with their defaults, so an installation that writes nothing
gets the documented behaviour.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Datatype(StrEnum):
    """The four links, in the order a run works through them (rule 6)."""

    customers = "customers"
    products = "products"
    orders = "orders"
    order_lines = "order_lines"


class System(StrEnum):
    webcrm = "webcrm"
    webshop = "webshop"


class WebcrmConfig(Strict):
    base_url: str = "https://api.webcrm.com"
    auth_code: SecretStr | None = None
    """The application token (a GUID created under Configuration › Integration › API)."""
    rate_limit: int = Field(250, ge=1, le=10_000, description="requests per window")
    rate_window_seconds: float = Field(60.0, gt=0)
    page_size: int = Field(1000, ge=1, le=1000)
    batch_size: int = Field(500, ge=1, le=1000, description="records per PATCH")
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    overlap_seconds: float = Field(5.0, ge=0, description="incremental-read overlap window")


class WebshopConfig(Strict):
    base_url: str = "http://127.0.0.1:8082"
    token: SecretStr | None = None
    page_size: int = Field(1000, ge=1, le=1000)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    webhook_secret: SecretStr | None = None


class StateConfig(Strict):
    url: str | None = None
    """SQLAlchemy URL; default: ``sqlite:///<dir of the config>/shopsync-state.sqlite``."""


class FieldsConfig(Strict):
    """Which webCRM free fields hold what (dataflow.md *config* names)."""

    product_sku: str = "ProductCustom1"
    product_name: str = "ProductCustom2"
    line_sku: str = "QuotationLineData1"
    line_description: str = "QuotationLineData2"
    organisation_email: str | None = None
    """e.g. ``OrganisationExtraCustom1``; email is not synced when unset."""


class StatusRule(Strict):
    """One row of the opportunity status table."""

    status: Literal["pending", "confirmed", "completed", "cancelled"]
    percent: int | None = Field(None, ge=0, le=100)
    lost: bool = False


StockStatus = Literal["in_stock", "out_of_stock", "backorder"]


def _default_stock_table() -> dict[str, StockStatus]:
    return {"In stock": "in_stock", "Out of stock": "out_of_stock", "Backorder": "backorder"}


class MappingConfig(Strict):
    """Value tables and defaults used by the conversions."""

    vat_codes: dict[str, Decimal] = Field(default_factory=dict)
    """webCRM ``ProductVatCode`` → webshop ``vat_rate`` percent. Empty: a numeric code
    is that rate (``"25"`` ⇄ ``25.00``)."""
    stock_status: dict[str, StockStatus] = Field(default_factory=_default_stock_table)
    """webCRM ``ProductStockStatus`` text → webshop ``stock_status``; the first key for a
    value is used the other way."""
    won_percent: int = Field(100, ge=0, le=100)
    """Opportunity percent that means a confirmed order (status table default)."""
    default_currency: str = Field("DKK", min_length=3, max_length=3)
    order_number_pattern: str = "WC-{id:06d}"
    """Number given to a new webCRM opportunity that has none; ``{id}`` is its id."""

    @field_validator("default_currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        import pycountry

        if pycountry.currencies.get(alpha_3=v.upper()) is None:
            raise ValueError(f"{v!r} is not an ISO 4217 currency code")
        return v.upper()


class ShareConfig(Strict):
    """Sesam Talk's per-datatype, per-target switches (rule 8)."""

    enabled: bool = True
    """Write this datatype into this system at all."""
    full_sync: bool = True
    """Also records created before onboarding; False: only records created after it."""


class DatatypeConfig(Strict):
    to_webshop: ShareConfig = ShareConfig()
    to_webcrm: ShareConfig = ShareConfig()


class SelectiveConfig(Strict):
    only_won_opportunities: bool = False
    """Only opportunities at the won percent become orders (dataflow.md selective sync)."""


class Config(Strict):
    webcrm: WebcrmConfig = WebcrmConfig()
    webshop: WebshopConfig = WebshopConfig()
    state: StateConfig = StateConfig()
    fields: FieldsConfig = FieldsConfig()
    mapping: MappingConfig = MappingConfig()
    customers: DatatypeConfig = DatatypeConfig()
    products: DatatypeConfig = DatatypeConfig()
    orders: DatatypeConfig = DatatypeConfig()
    order_lines: DatatypeConfig = DatatypeConfig()
    selective: SelectiveConfig = SelectiveConfig()

    def datatype(self, dt: Datatype) -> DatatypeConfig:
        result: DatatypeConfig = getattr(self, dt.value)
        return result
