"""A deterministic universe of companies and catalogue items for seeding both servers.

Company ``i`` and item ``i`` of a given seed are always the same, whichever server asks
for them and in whatever order. The webCRM emulator seeds companies ``0..N-1``; the
reference webshop takes some of the *same* indices (so VAT numbers, websites and SKUs
match and the demo exercises onboarding merge) and some of its own, far-away indices.

Five locales (Danish, Norwegian, Swedish, German, English) so that æ ø å ä ö ü ß turn up
in names, streets and cities.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from faker import Faker

LOCALES = ("da_DK", "no_NO", "sv_SE", "de_DE", "en_GB")
COUNTRY = {"da_DK": "DK", "no_NO": "NO", "sv_SE": "SE", "de_DE": "DE", "en_GB": "GB"}
# Country spellings a webCRM user might type, per alpha-2: native, English.
COUNTRY_NAMES = {
    "DK": ("Danmark", "Denmark"),
    "NO": ("Norge", "Norway"),
    "SE": ("Sverige", "Sweden"),
    "DE": ("Deutschland", "Germany"),
    "GB": ("United Kingdom", "United Kingdom"),
}
STOCK = ("in_stock", "in_stock", "in_stock", "out_of_stock", "backorder")
VAT_RATES = {"DK": "25", "NO": "25", "SE": "25", "DE": "19", "GB": "20"}
PRODUCT_WORDS = (
    "Skrivebord", "Kontorstol", "Lampe", "Reol", "Skab", "Bord", "Stol", "Hylde",
    "Schreibtisch", "Bürostuhl", "Leuchte", "Regal", "Desk", "Chair", "Lamp", "Shelf",
    "Kaffemaskine", "Tastatur", "Skærm", "Mus", "Headset", "Kabel", "Dock", "Højtaler",
)  # fmt: skip
MATERIALS = ("eg", "bøg", "stål", "glas", "Öko", "Weiß", "grå", "sort", "hvid", "Ahorn")


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def _rng(seed: int, kind: str, index: int) -> random.Random:
    return random.Random(f"{seed}:{kind}:{index}")


@dataclass(frozen=True)
class Company:
    index: int
    locale: str
    name: str
    vat_number: str
    """Canonical form: country prefix and digits, no spaces (``DK12345678``)."""
    country: str
    """ISO 3166-1 alpha-2."""
    country_name: str
    """How a person typed the country in webCRM (``Danmark`` or ``Denmark``)."""
    address: str
    postal_code: str
    city: str
    region: str | None
    delivery_address: str | None
    delivery_postal_code: str | None
    delivery_city: str | None
    phone: str
    website: str
    email: str


@dataclass(frozen=True)
class Item:
    index: int
    sku: str
    name: str
    description: str
    unit_price: Decimal
    list_price: Decimal
    cost_price: Decimal
    vat_rate: Decimal
    stock_status: str


def _vat(country: str, rng: random.Random) -> str:
    digits = {"DK": 8, "NO": 9, "SE": 12, "DE": 9, "GB": 9}[country]
    number = "".join(str(rng.randint(0, 9)) for _ in range(digits))
    number = str(rng.randint(1, 9)) + number[1:]
    return f"{country}{number}" + ("MVA" if country == "NO" else "")


def company(seed: int, index: int) -> Company:
    """Company ``index`` of the universe ``seed``."""
    rng = _rng(seed, "company", index)
    locale = LOCALES[rng.randrange(len(LOCALES))]
    fake = _faker(locale)
    fake.seed_instance(rng.getrandbits(48))
    country = COUNTRY[locale]
    name = fake.company()
    # Unique-ish names: real CRMs have many "Larsen A/S"; the index keeps them apart.
    if rng.random() < 0.5:
        name = f"{name} {fake.city()}"
    domain = fake.domain_name()
    delivery = rng.random() < 0.4
    region = fake.state() if locale == "de_DE" and hasattr(fake, "state") else None
    return Company(
        index=index,
        locale=locale,
        name=name[:200],
        vat_number=_vat(country, rng),
        country=country,
        country_name=rng.choice(COUNTRY_NAMES[country]),
        address=fake.street_address().replace("\n", ", ")[:250],
        postal_code=fake.postcode(),
        city=fake.city()[:50],
        region=region,
        delivery_address=fake.street_address().replace("\n", ", ")[:250] if delivery else None,
        delivery_postal_code=fake.postcode() if delivery else None,
        delivery_city=fake.city()[:50] if delivery else None,
        phone=fake.phone_number()[:50],
        website=f"www.{index}-{domain}" if rng.random() < 0.7 else f"{index}-{domain}",
        email=f"info@{index}-{domain}",
    )


def item(seed: int, index: int) -> Item:
    """Catalogue item ``index`` of the universe ``seed``."""
    rng = _rng(seed, "item", index)
    word = rng.choice(PRODUCT_WORDS)
    material = rng.choice(MATERIALS)
    cost = Decimal(rng.randint(500, 500_000)) / 100
    price = (cost * Decimal(rng.choice(("1.25", "1.4", "1.6", "2")))).quantize(Decimal("0.01"))
    list_price = (price * Decimal("1.1")).quantize(Decimal("0.01"))
    return Item(
        index=index,
        sku=f"SKU-{seed % 1000:03d}-{index:06d}",
        name=f"{word} {material} {index}",
        description=f"{word} i {material}; varenummer {index}. Größe {rng.randint(1, 9)}.",
        unit_price=price,
        list_price=list_price,
        cost_price=cost,
        vat_rate=Decimal(rng.choice(("25", "25", "19", "20", "0"))),
        stock_status=rng.choice(STOCK),
    )


def rng_for(seed: int, kind: str, index: int) -> random.Random:
    """A deterministic RNG for anything else a seeder draws (orders, lines, dates)."""
    return _rng(seed, kind, index)
