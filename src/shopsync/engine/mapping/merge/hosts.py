"""Websites as merge keys: :func:`normalize_host` (the registrable domain), and the
shared platforms that never are one (:data:`SHARED_PLATFORMS`, :func:`platform_of`).

A weak key: the Public Suffix List that the ``publicsuffixlist`` package ships (offline)
gives the registrable domain, and a host that many companies share (a social network,
free mail, a site builder, a platform's subdomain) gives no key.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

from publicsuffixlist import PublicSuffixList

from shopsync.engine.mapping.conversions.text import norm_text

SHARED_PLATFORMS: dict[str, tuple[str, ...]] = {
    "social network": (
        "facebook.com", "fb.com", "fb.me", "instagram.com", "linkedin.com", "lnkd.in",
        "x.com", "twitter.com", "t.co", "youtube.com", "youtu.be", "tiktok.com",
        "pinterest.*", "snapchat.com", "threads.net", "threads.com", "reddit.com",
        "tumblr.com", "vimeo.com", "whatsapp.com", "wa.me", "t.me", "telegram.me",
        "discord.com", "discord.gg", "twitch.tv", "bsky.app", "xing.com", "vk.com",
    ),
    "marketplace": (
        "amazon.*", "ebay.*", "etsy.com", "aliexpress.*", "alibaba.com", "zalando.*",
        "bol.com", "allegro.pl", "rakuten.*", "walmart.com", "wish.com", "temu.com",
        "shein.com", "vinted.*", "cdon.*", "fruugo.*", "miinto.*", "dba.dk",
        "guloggratis.dk", "blocket.se", "tradera.com", "finn.no", "tori.fi",
        "marktplaats.nl", "kleinanzeigen.de", "booking.com", "airbnb.*", "wolt.com",
        "just-eat.*",
    ),
    "directory, maps, reviews": (
        "google.*", "g.page", "goo.gl", "yelp.*", "tripadvisor.*", "trustpilot.*",
        "virk.dk", "cvrapi.dk", "proff.*", "krak.dk", "degulesider.dk", "eniro.*",
        "hitta.se", "allabolag.se", "gulesider.no", "brreg.no", "northdata.*",
    ),
    "free mail": (
        "gmail.com", "googlemail.com", "hotmail.*", "outlook.*", "live.*", "msn.com",
        "yahoo.*", "ymail.com", "aol.*", "icloud.com", "me.com", "mac.com", "proton.me",
        "protonmail.*", "pm.me", "gmx.*", "web.de", "mail.com", "mail.ru", "yandex.*",
        "zoho.com", "tutanota.com", "tuta.io", "fastmail.com", "mail.dk", "jubii.dk",
        "ofir.dk",
    ),
    "site builder, blog, hosting": (
        "myshopify.com", "shopify.com", "wix.com", "wixsite.com", "editorx.io",
        "squarespace.com", "wordpress.com", "wp.com", "weebly.com", "weeblysite.com",
        "jimdo.com", "jimdofree.com", "jimdosite.com", "webnode.*", "simplesite.com",
        "godaddysites.com", "business.site", "company.site", "square.site",
        "strikingly.com", "mystrikingly.com", "site123.me", "carrd.co", "webflow.io",
        "framer.website", "notion.site", "blogspot.*", "blogger.com", "medium.com",
        "substack.com", "github.io", "github.com", "gitlab.io", "netlify.app",
        "vercel.app", "herokuapp.com", "pages.dev", "web.app", "firebaseapp.com",
        "bigcartel.com", "ecwid.com",
    ),
    "link hub, shortener": (
        "linktr.ee", "beacons.ai", "lnk.bio", "linkin.bio", "taplink.cc", "about.me",
        "bio.link", "campsite.bio", "bit.ly", "tinyurl.com", "ow.ly", "buff.ly",
        "rebrand.ly", "t.ly", "cutt.ly",
    ),
}  # fmt: skip
"""Registrable domains many companies share, which are therefore never a key: the
company is in the path (``facebook.com/alphabakery``) or in a subdomain the platform
hands out (``alpha.wordpress.com``), or the domain is a mail provider's. ``name.*`` is
that name under any public suffix (``amazon.de``, ``amazon.co.uk``). Platforms listed
in the private section of the Public Suffix List (``github.io``, ``myshopify.com``,
``netlify.app``, and hundreds more) are caught by :func:`normalize_host` even when they
are missing here."""


@cache
def _platform_index() -> tuple[dict[str, str], dict[str, str]]:
    """:data:`SHARED_PLATFORMS` as ``{domain: category}`` and ``{name: category}`` (for
    the ``name.*`` entries)."""
    exact: dict[str, str] = {}
    named: dict[str, str] = {}
    for category, entries in SHARED_PLATFORMS.items():
        for entry in entries:
            if entry.endswith(".*"):
                named[entry.removesuffix(".*")] = category
            else:
                exact[entry] = category
    return exact, named


@cache
def _psl(*, only_icann: bool) -> PublicSuffixList:
    """The Public Suffix List snapshot the ``publicsuffixlist`` package ships (offline).
    Unknown top-level domains are not suffixes: ``acme.intranet`` has no key."""
    return PublicSuffixList(accept_unknown=False, only_icann=only_icann)


def platform_of(domain: str) -> str | None:
    """The :data:`SHARED_PLATFORMS` category of a registrable domain, or None."""
    exact, named = _platform_index()
    return exact.get(domain) or named.get(domain.split(".", 1)[0])


_HOSTNAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$")


def _host(text: str) -> str | None:
    """The ASCII (punycode) host name of a URL, domain or e-mail address, or None."""
    text = text.lower()
    if "://" not in text:
        text = "http://" + text.lstrip("/")
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.rstrip(".")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:  # not a valid internationalized name
        return None
    return host if _HOSTNAME.match(host) else None


def normalize_host(url: Any) -> str | None:
    """The registrable domain of a website, domain or e-mail address: its key, or None.

    Lower case, scheme, port, path and subdomains removed with the Public Suffix List:
    ``https://www.Example.com/kontakt``, ``shop.example.com`` and ``info@example.com``
    are all ``example.com``; ``shop.example.co.uk`` is ``example.co.uk``.
    Internationalized names compare in their ASCII (punycode) form.

    No key for a host that does not name one company:

    * a domain of :data:`SHARED_PLATFORMS` (social networks, marketplaces, directories,
      free mail, site builders, link hubs), with any subdomain or path;
    * any host under an entry of the list's *private* section, i.e. a subdomain handed
      out by a platform (``alpha.github.io``, ``alpha.myshopify.com``,
      ``alpha.wixsite.com``): such tenancies follow an account, not a company (Wix
      serves several sites of one account under paths, agencies build customers' shops
      on their own account, free blogs change hands), so they are not a safe key.
      Name + postal code or VAT still merge such a company;
    * an IP address, a name without a dot (``n/a``, ``localhost``), a name under an
      unknown top-level domain (``acme.intranet``, ``acme.dkk``), or not a host name.
    """
    text = norm_text(url)
    return _host_key(text) if text is not None else None


@lru_cache(maxsize=65536)
def _host_key(text: str) -> str | None:
    host = _host(text)
    if host is None:
        return None
    if host.rsplit(".", 1)[-1].isdigit():  # an IPv4 address (IPv6 is no host name)
        return None
    registrable = _psl(only_icann=True).privatesuffix(host)
    if registrable is None:
        return None
    if _psl(only_icann=False).privatesuffix(host) != registrable:
        return None  # a tenant of a platform in the list's private section
    return None if platform_of(registrable) else registrable
