"""The published Custom Webshop API contract (OpenAPI 3.1) and the rules it fixes.

The YAML document lives inside the package so that an installed shopsync can serve it
(the reference server's ``/openapi.json``) and check other servers against it
(``shopsync check-webshop``); ``openapi/webshop-api.yaml`` in the repository is a link
to it. ``money`` and ``signature`` hold the two rules every party must compute alike:
decimal formats with the order total, and the webhook signature.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

CONTRACT_FILE = "webshop-api.yaml"


def contract_text() -> str:
    """The contract as written (YAML)."""
    return resources.files(__name__).joinpath(CONTRACT_FILE).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _parsed() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: 20× faster
    data = yaml.load(contract_text(), Loader=loader)  # a safe loader either way
    if not isinstance(data, dict):
        raise ValueError(f"{CONTRACT_FILE} is not an OpenAPI document")
    return data


def load_contract() -> dict[str, Any]:
    """The contract as a fresh dict (callers may change their copy)."""
    return copy.deepcopy(_parsed())


@lru_cache(maxsize=1)
def contract_json() -> bytes:
    """The contract as compact JSON, as ``GET /openapi.json`` serves it."""
    return json.dumps(_parsed(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def contract_version() -> str:
    return str(_parsed()["info"]["version"])
