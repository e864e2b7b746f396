"""Schemathesis over the published contract: what a schema can check, for every operation.

Each operation is driven through Hypothesis with schemathesis' strategies (its
documented Python API: ``operation.as_strategy`` + ``case.call`` +
``case.validate_response``), a bounded number of examples, no shrinking, and a fixed
seed, so a run is quick and repeatable. Two passes:

* **positive**: valid requests; every answer must be a documented status with the
  documented content type, headers and body schema, and never a 5xx;
* **negative**: requests the schema forbids; the server must refuse them with a 4xx.

``/webhooks`` is left out: a fuzzed subscription could make the shop call arbitrary
URLs. Records the fuzzer manages to create (by ``POST /{collection}`` or in a batch)
are deleted afterwards. The optional ``/capabilities`` and ``/{collection}/batch`` are
fuzzed too: a shop without them must answer them with a documented 404 (or 405).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import requests

if TYPE_CHECKING:
    from hypothesis import settings

from shopsync.contract import load_contract

COLLECTIONS = ("customers", "products", "orders")
_SKIP_PATHS = ("/webhooks", "/openapi.json")
_ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}


@dataclass
class FuzzReport:
    mode: str
    operations: int = 0
    requests: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    """Operation label → first failure, as schemathesis describes it."""
    created: list[tuple[str, str]] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    """Answers by class (``2xx``, ``4xx``, …): a pass that never got a 2xx tested little."""


def _checks(mode: str) -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    shape = [
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    if mode == "negative":
        return [not_a_server_error, negative_data_rejection, status_code_conformance]
    return [not_a_server_error, *shape]


def describe_failure(exc: BaseException) -> str:
    """A few readable lines: each failed check's title and message, and how to reproduce."""
    parts: list[str] = []
    for failure in getattr(exc, "exceptions", None) or [exc]:
        title = getattr(failure, "title", None) or failure.__class__.__name__
        message = (getattr(failure, "message", None) or str(failure)).strip()
        lines = [line.strip() for line in message.splitlines() if line.strip()][:4]
        parts.append(f"{title}: " + " / ".join(lines))
    curl = [line.strip() for line in str(exc).splitlines() if line.strip().startswith("curl ")]
    if curl:
        command = curl[0] if len(curl[0]) <= 400 else curl[0][:400] + " …"
        parts.append("reproduce: " + command)
    return "\n".join(parts)


def run_fuzz(
    base_url: str,
    token: str,
    *,
    mode: str,
    examples: int,
    ids: dict[str, str],
    redact: Callable[[str], str],
) -> FuzzReport:
    """Fuzz every record operation (and capabilities, batches); ``ids`` gives a live
    record id per collection."""
    import schemathesis
    from schemathesis import GenerationMode

    # The token goes in as credentials for the contract's security scheme, so schemathesis
    # sends it on positive cases and, on negative ones, also tries none or a wrong one.
    config = schemathesis.Config.from_dict(
        {"auth": {"openapi": {"bearerAuth": {"bearer": token}}, "auto-signup": False}}
    )
    schema = schemathesis.openapi.from_dict(load_contract(), config=config)
    generation = GenerationMode.NEGATIVE if mode == "negative" else GenerationMode.POSITIVE
    checks = _checks(mode)
    report = FuzzReport(mode)
    session = requests.Session()
    operations = sorted(
        (cast(Any, op).ok() for op in schema.get_all_operations()),
        key=lambda op: (op.path.count("/"), _ORDER.get(op.method.upper(), 9)),
    )
    for operation in operations:
        if operation.path.startswith(_SKIP_PATHS):
            continue
        collection = operation.path.strip("/").split("/")[0]
        report.operations += 1
        path_parameters = {"id": ids[collection]} if "{id}" in operation.path else None
        strategy = operation.as_strategy(generation, path_parameters=path_parameters)
        exercise = _exercise(strategy, collection, base_url, checks, examples, report, session)
        try:
            exercise()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # failed checks come as a BaseExceptionGroup
            report.failures[operation.label] = redact(describe_failure(exc))
    return report


def quiet_settings(examples: int) -> settings:
    """Hypothesis settings for fuzzing a server: a fixed seed (a verdict, not a lottery),
    no deadline, no example database, generated cases only, nothing printed."""
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        report_multiple_bugs=False,
        print_blob=False,
    )


def _exercise(
    strategy: Any,
    collection: str,
    base_url: str,
    checks: list[Any],
    examples: int,
    report: FuzzReport,
    session: Any,
) -> Callable[[], None]:
    """A Hypothesis test for one operation (a closure: ``@given`` refuses defaults)."""
    from hypothesis import given

    @quiet_settings(examples)
    @given(case=strategy)
    def exercise(case: Any) -> None:
        response = case.call(base_url=base_url, session=session, timeout=15)
        report.requests += 1
        report.statuses[f"{response.status_code // 100}xx"] += 1
        if case.method.upper() == "POST":
            for record_id in _created_ids(response):
                report.created.append((collection, record_id))
        case.validate_response(response, checks=checks)

    return exercise  # type: ignore[no-any-return]


def _created_ids(response: Any) -> list[str]:
    """Ids of records a POST created: its own (201), or a batch's 201 results (200)."""
    if response.status_code not in (200, 201):
        return []
    try:
        body = response.json()
    except ValueError:
        return []
    if not isinstance(body, dict):
        return []
    records: list[Any]
    if response.status_code == 201:
        records = [body]
    else:  # POST /{collection}/batch
        results = body.get("results")
        records = [
            r.get("record")
            for r in (results if isinstance(results, list) else [])
            if isinstance(r, dict) and r.get("status") == 201
        ]
    ids = [r.get("id") for r in records if isinstance(r, dict)]
    return [i for i in ids if isinstance(i, str)]
