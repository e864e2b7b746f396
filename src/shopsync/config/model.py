"""The configuration model: every key of ``shopsync.toml`` and what it allows.

Loading (file + environment, errors that name the key, file and line) lives in
``loader.py``; this module only says what a valid configuration is. The *config* items
of ``dataflow.md`` are here with their defaults, so an installation that writes nothing
gets the documented behaviour.
"""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from string import Formatter
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shopsync.connectors.webcrm.schema import ENTITIES


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def http_url(value: str) -> str:
    """A base URL must be absolute http(s) with a host; a trailing slash is dropped.

    Checked at load time so a typo fails with the key's name instead of as a connection
    error in the middle of a sync.
    """
    v = value.strip()
    try:
        parts = urlsplit(v)
    except ValueError as exc:  # e.g. an unclosed "[" (IPv6)
        raise ValueError(f"{_shown_url(value)} is not an http(s) URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{_shown_url(value)} is not an http(s) URL; allowed: e.g. 'https://host[:port]'"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"{_shown_url(value)} must not carry a query or fragment")
    return v.rstrip("/")


def _shown_url(value: str) -> str:
    """A URL for an error message: its password masked; text before an ``@`` hidden when
    the URL is too broken for that (``http//user:pw@host``)."""
    from shopsync.logs import MASK, mask_url

    shown = mask_url(value)
    if "@" in shown and f":{MASK}@" not in shown:
        shown = MASK + shown[shown.rindex("@") :]
    return repr(shown)


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
    timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="a request is abandoned after this; it also bounds how long a create "
        "interrupted by a crash may still land (it is resolved once this has passed)",
    )
    max_retries: int = Field(6, ge=0, le=20)
    overlap_seconds: float = Field(5.0, ge=0, description="incremental-read overlap window")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return http_url(v)


class WebshopConfig(Strict):
    base_url: str = "http://127.0.0.1:8082"
    token: SecretStr | None = None
    page_size: int = Field(1000, ge=1, le=1000)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(6, ge=0, le=20)
    webhook_secret: SecretStr | None = None
    """The secret the shop signs webhook calls with; unset: ``shopsync serve`` makes one
    and keeps it in the state database."""

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return http_url(v)

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: SecretStr | None) -> SecretStr | None:
        # The contract's subscriptions take 16..256 characters; checked here so a short
        # secret fails at load time, naming the key, not at every start of the service.
        if v is not None and not 16 <= len(v.get_secret_value()) <= 256:
            raise ValueError(
                f"has {len(v.get_secret_value())} characters; allowed: 16 to 256 "
                "(or leave it unset: shopsync serve makes one)"
            )
        return v


STATE_DIALECTS = ("sqlite", "postgresql")


class StateConfig(Strict):
    url: str | None = None
    """SQLAlchemy URL; default: ``sqlite:///<dir of the config>/shopsync-state.sqlite``.

    The loader always fills it in, so after ``load_config`` it is never None."""
    lock_lease_seconds: float = Field(
        60.0,
        ge=1,
        le=3600,
        description="the sync lock is a lease renewed every quarter of this while a run "
        "lives; another process may take it over only after it lapsed",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(v)
        except ArgumentError:
            raise ValueError(
                "not a database URL; allowed: 'sqlite:///path/to/file.sqlite' or "
                "'postgresql+psycopg://user@host/db'"
            ) from None
        if url.get_backend_name() not in STATE_DIALECTS:
            raise ValueError(
                f"database {url.get_backend_name()!r} is not supported; allowed: "
                + ", ".join(STATE_DIALECTS)
            )
        return v


class FieldsConfig(Strict):
    """Which webCRM free fields hold what (dataflow.md *config* names)."""

    product_sku: str = "ProductCustom1"
    product_name: str = "ProductCustom2"
    line_sku: str = "QuotationLineData1"
    line_description: str = "QuotationLineData2"
    organisation_email: str | None = None
    """e.g. ``OrganisationExtraCustom1``; email is not synced when unset."""

    @field_validator("product_sku", "product_name")
    @classmethod
    def _product_field(cls, v: str) -> str:
        return _check_text_field("Product", v)

    @field_validator("line_sku", "line_description")
    @classmethod
    def _line_field(cls, v: str) -> str:
        return _check_text_field("QuotationLine", v)

    @field_validator("organisation_email")
    @classmethod
    def _organisation_field(cls, v: str | None) -> str | None:
        return None if v is None else _check_text_field("Organisation", v)

    @model_validator(mode="after")
    def _distinct(self) -> FieldsConfig:
        """One free field cannot hold two things."""
        if self.product_sku == self.product_name:
            raise ValueError(f"product_sku and product_name are both {self.product_sku!r}")
        if self.line_sku == self.line_description:
            raise ValueError(f"line_sku and line_description are both {self.line_sku!r}")
        return self


def text_fields(entity: str) -> list[str]:
    """The writable string fields of a webCRM entity (free fields and the like)."""
    spec = ENTITIES[entity]
    return [
        f.name
        for f in spec.fields
        if f.type == "string" and f.format is None and f.name not in spec.server_fields
    ]


def compact_names(names: list[str]) -> str:
    """``ProductCustom1, ProductCustom2, …`` → ``ProductCustom1..15`` for error messages."""
    groups: dict[str, list[int]] = {}
    plain: list[str] = []
    for n in names:
        m = re.fullmatch(r"(.*?)(\d+)", n)
        if m:
            groups.setdefault(m.group(1), []).append(int(m.group(2)))
        else:
            plain.append(n)
    parts = [
        f"{prefix}{min(nums)}..{max(nums)}" if len(nums) > 1 else f"{prefix}{nums[0]}"
        for prefix, nums in groups.items()
    ]
    return ", ".join(parts + plain)


def _check_text_field(entity: str, name: str) -> str:
    """Each name must be a writable text field of its webCRM entity."""
    allowed = text_fields(entity)
    if name not in allowed:
        raise ValueError(
            f"{name!r} is not a writable text field of webCRM {entity}; "
            f"allowed: {compact_names(allowed)}"
        )
    return name


OrderStatus = Literal["pending", "confirmed", "completed", "cancelled"]
ORDER_STATUSES: tuple[OrderStatus, ...] = ("pending", "confirmed", "completed", "cancelled")


class StatusRule(Strict):
    """One row of the opportunity status table.

    webCRM → webshop: the first row whose conditions hold gives the status (``lost``
    must equal "the opportunity has a lost date"; ``percent`` must equal the
    opportunity's percent, or is unset = any). Webshop → webCRM: the first row for the
    status gives the percent to write (unset = the lowest percent that reads back as
    that status, or left as it is when every percent does) and whether to set a lost date.
    """

    status: OrderStatus
    percent: int | None = Field(None, ge=0, le=100)
    lost: bool = False


def default_status_table(won_percent: int = 100) -> list[StatusRule]:
    """dataflow.md's default: lost → cancelled, won → confirmed, else pending."""
    return [
        StatusRule(status="cancelled", lost=True),
        StatusRule(status="confirmed", percent=won_percent),
        StatusRule(status="completed", percent=won_percent),
        StatusRule(status="pending"),
    ]


StockStatus = Literal["in_stock", "out_of_stock", "backorder"]


def _default_stock_table() -> dict[str, StockStatus]:
    """The texts a webCRM user is offered, and ``""``: stock not tracked in webCRM (most
    products) is sellable, as the webshop contract's own default for a new product."""
    return {
        "": "in_stock",
        "In stock": "in_stock",
        "Out of stock": "out_of_stock",
        "Backorder": "backorder",
    }


DEFAULT_VAT_RATE = Decimal(25)
"""The rate of a product with no VAT code: the standard rate of Denmark (and of Norway
and Sweden), matching the default currency DKK."""


def _default_vat_codes() -> dict[str, Decimal]:
    return {"": DEFAULT_VAT_RATE}


class MappingConfig(Strict):
    """Value tables and defaults used by the conversions."""

    vat_codes: dict[str, Decimal] = Field(default_factory=_default_vat_codes)
    """webCRM ``ProductVatCode`` → webshop ``vat_rate`` percent. The key ``""`` is the
    rate of an empty code (default 25; without it such a product is put aside). No other
    key: a numeric code is that rate (``"25"`` ⇄ ``25.00``)."""
    stock_status: dict[str, StockStatus] = Field(default_factory=_default_stock_table)
    """webCRM ``ProductStockStatus`` text → webshop ``stock_status``; the first key for a
    value is used the other way. The key ``""`` is the value of an empty field (default
    ``in_stock``; without it such a product is put aside)."""
    won_percent: int = Field(100, ge=0, le=100)
    """Opportunity percent that means a confirmed order (status table default)."""
    default_currency: str = Field("DKK", min_length=3, max_length=3)
    order_number_pattern: str = "WC-{id:06d}"
    """Number given to a new webCRM opportunity that has none; ``{id}`` is its id."""
    status_table: list[StatusRule] = Field(default_factory=list)
    """Opportunity percent/lost date ⇄ order status; empty means
    :func:`default_status_table` at ``won_percent`` (the loader fills it in)."""

    @model_validator(mode="before")
    @classmethod
    def _default_status_table(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("status_table"):
            won = data.get("won_percent", 100)
            if isinstance(won, int) and 0 <= won <= 100:
                data = {**data, "status_table": default_status_table(won)}
        return data

    @field_validator("vat_codes")
    @classmethod
    def _vat_codes(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        blank = [code for code in v if not code.strip()]
        if len(blank) > 1:
            raise ValueError(
                'one row for an empty VAT code: "" (rows that are only spaces count as "")'
            )
        for code, rate in v.items():
            if not Decimal(0) <= rate <= Decimal(100):
                raise ValueError(f"rate {rate} for code {code!r} is outside 0..100 (percent)")
        return v

    @field_validator("stock_status")
    @classmethod
    def _stock_status(cls, v: dict[str, StockStatus]) -> dict[str, StockStatus]:
        blank = [text for text in v if not text.strip()]
        if len(blank) > 1:
            raise ValueError(
                'one row for an empty field: "" (rows that are only spaces count as "")'
            )
        written = {value for text, value in v.items() if text.strip()}
        missing = [s for s in ("in_stock", "out_of_stock", "backorder") if s not in written]
        if missing:
            raise ValueError(
                "every webshop stock status needs a webCRM text (used when writing to "
                f"webCRM); missing: {', '.join(missing)}"
            )
        return v

    @field_validator("order_number_pattern")
    @classmethod
    def _pattern(cls, v: str) -> str:
        allowed = "allowed: text with one {id} placeholder, e.g. 'WC-{id:06d}'"
        try:
            names = {name for _, name, _, _ in Formatter().parse(v) if name is not None}
        except ValueError as exc:
            raise ValueError(f"{v!r} is not a valid pattern ({exc}); {allowed}") from None
        if names != {"id"}:
            used = ", ".join("{" + n + "}" for n in sorted(names)) or "no placeholder"
            raise ValueError(f"{v!r} uses {used}; {allowed}")
        try:
            example = v.format(id=1)
        except (ValueError, KeyError, IndexError) as exc:
            raise ValueError(f"{v!r} cannot format an id ({exc}); {allowed}") from None
        if not example.strip():
            raise ValueError(f"{v!r} gives an empty order number")
        return v

    @field_validator("status_table")
    @classmethod
    def _status_table(cls, v: list[StatusRule]) -> list[StatusRule]:
        missing = [s for s in ORDER_STATUSES if not any(r.status == s for r in v)]
        if missing:
            raise ValueError(
                "the status table needs a row for every order status; missing: "
                + ", ".join(missing)
            )
        if not any(r.percent is None and not r.lost for r in v):
            raise ValueError(
                "the status table needs a catch-all row (no percent, lost = false) so every "
                "opportunity gets a status"
            )
        return v

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


OnAmbiguous = Literal["put_aside", "create"]


class MatchingConfig(Strict):
    """Onboarding merge (rule 2; docs/mapping.md, merge criteria)."""

    on_ambiguous: OnAmbiguous = "put_aside"
    """A record whose merge key is held by more than one record (on the other side, or
    also on its own: two branches with one VAT number) and that no other key merges:
    ``put_aside`` keeps it out of the sync, with the key in the reason, until someone
    resolves it and runs ``shopsync retry``; ``create`` creates it on the other side as
    a new record (at worst a duplicate, never a wrong merge)."""


class DeletesConfig(Strict):
    """How deletes that no change feed reports are found (rule 5; docs/sync-engine.md).

    webCRM's API does not report deleted products and quotation lines: only reading all
    of them and missing one shows a delete. That read is the *delete sweep*; between
    sweeps a run reads only what changed, and a quotation line deleted together with an
    edit of its opportunity is still seen at once.
    """

    sweep_interval_minutes: float = Field(60.0, ge=0, le=7 * 24 * 60)
    """Minutes between delete sweeps per datatype (0: every run). ``sync --sweep`` and
    ``sync --full`` sweep now; the last sweep's time is kept in the state database and
    shown by ``shopsync status``."""


def listen_address(value: str) -> str:
    """``host:port`` (``[::1]:8765`` for IPv6): where ``shopsync serve`` listens.

    Checked at load time, so a typo fails naming ``serve.listen`` instead of as a bind
    error after the service has started its first sync.
    """
    v = value.strip()
    host, sep, port = v.rpartition(":")
    allowed = "allowed: 'host:port', e.g. '127.0.0.1:8765' or '0.0.0.0:8765' or '[::1]:8765'"
    if not sep or not host or not port.isdigit():
        raise ValueError(f"{value!r} is not host:port; {allowed}")
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is outside 1..65535; {allowed}")
    if host.startswith("[") != host.endswith("]") or any(c.isspace() for c in host):
        raise ValueError(f"{value!r} has no valid host; {allowed}")
    return v


class ServeConfig(Strict):
    """The always-on service (``shopsync serve``; docs/deploy.md).

    Without ``public_url`` nothing calls back: the service polls every ``poll_seconds``.
    With it, webCRM hooks and the shop's webhooks make changes cross in seconds and the
    polls remain the safety net for a hook that never came.
    """

    listen: str = "127.0.0.1:8765"
    """Address the HTTP endpoints (hooks, health, metrics) listen on."""
    public_url: str | None = None
    """The address webCRM and the shop call back (``https://sync.example.com``): the
    listen address as seen from them, through a reverse proxy or a tunnel."""
    poll_seconds: float = Field(30.0, ge=1, le=24 * 3600)
    """Seconds between polls of every datatype (each costs about one webCRM request per
    datatype when nothing changed)."""
    admin_token: SecretStr | None = None
    """The console's sign-in token (docs/console.md). Required when ``listen`` is not a
    loopback address: the console can change what is synced, so anyone who can reach
    the port must prove who they are; on 127.0.0.1 only this machine can."""
    activity_retention_days: int = Field(30, ge=1, le=3650)
    """Days the console keeps each run's actions (its Activity page) in the state
    database; older rows are removed after each run."""

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        return listen_address(v)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else http_url(v)

    @model_validator(mode="after")
    def _admin_token_off_loopback(self) -> ServeConfig:
        if self.admin_token is None and not self.loopback:
            raise ValueError(
                f"listen = {self.listen!r} is reachable from other machines, so the console "
                "needs a sign-in token: set [serve] admin_token (or SHOPSYNC_SERVE_ADMIN_TOKEN) "
                "to a long random value, or listen on 127.0.0.1"
            )
        if self.admin_token is not None and len(self.admin_token.get_secret_value()) < 16:
            raise ValueError("admin_token must have at least 16 characters")
        return self

    @property
    def loopback(self) -> bool:
        """Whether only this machine can reach ``listen`` (127.0.0.0/8, ::1, localhost)."""
        import ipaddress

        host = self.host
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


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
    matching: MatchingConfig = MatchingConfig()
    deletes: DeletesConfig = DeletesConfig()
    serve: ServeConfig = ServeConfig()

    def datatype(self, dt: Datatype) -> DatatypeConfig:
        result: DatatypeConfig = getattr(self, dt.value)
        return result
