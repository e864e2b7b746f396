"""Fingerprints: short digests of a record's values, computed without the database.

``values_fingerprint`` is what a snapshot stores per side, so a record read back is
known unchanged without decoding the snapshot's JSON; the older forms are here so
those stored by earlier releases are still recognised. ``fingerprint`` digests a whole
record for the put-aside table. The snapshot columns that hold them are read and
written in :mod:`shopsync.store.repo.snapshots`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import orjson


def fingerprint(data: Any) -> str:
    raw = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    # surrogatepass: a value read with a lone surrogate still has a fingerprint
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


FINGERPRINT_FORM = "v2:"
"""How the current form of :func:`values_fingerprint` begins. Fingerprints stored by
older releases (hex digits only) never do, so a stored fingerprint that has this mark
and differs from a record's is a change, decided without reading the snapshot's values;
one without it is compared value by value and rewritten."""


def values_fingerprint(values: Mapping[str, Any]) -> str:
    """A short digest of one side's mapped values (``{property: value}``), the same for
    equal values whatever their order: stored per side with each snapshot, compared with
    the fingerprint of a record read back (:func:`agreed_fingerprints`).

    The text hashed is orjson's (a record written costs three of these); what orjson
    refuses (a lone surrogate, an integer past 64 bits) is written by ``json``. It is
    :data:`FINGERPRINT_FORM` and 28 hex digits (112 bits), 31 characters in all.
    """
    return FINGERPRINT_FORM + _digest(_orjson_text(values), 14)


def is_current_fingerprint(fp: str | None) -> bool:
    """Whether ``fp`` is in the form :func:`values_fingerprint` computes now."""
    return fp is not None and fp.startswith(FINGERPRINT_FORM)


def older_values_fingerprints(values: Mapping[str, Any]) -> tuple[str, str]:
    """The two forms older releases stored, until rewritten: ``json``'s text with
    non-ASCII escaped, and (one release) orjson's text without the form's mark."""
    text = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return _digest(text.encode(), 16), _digest(_orjson_text(values), 16)


def _orjson_text(values: Mapping[str, Any]) -> bytes:
    try:
        return orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    except TypeError:
        return json.dumps(
            values, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False
        ).encode("utf-8", "surrogatepass")


def _digest(text: bytes, size: int) -> str:
    return hashlib.blake2b(text, digest_size=size).hexdigest()
