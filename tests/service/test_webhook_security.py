"""The shop's webhook calls: a missing, wrong, stale or replayed signature is refused
with 401 and changes nothing; a wrong token in the address is a 404."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

from shopsync.contract.signature import DELIVERY_HEADER, SIGNATURE_HEADER, sign
from tests.service.conftest import Service, World


def _meta(service: Service, key: str) -> str:
    path = service.state_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    assert row is not None, key
    return str(row[0])


def _event(record_id: str, at: datetime) -> bytes:
    body = {"event": "customer.updated", "id": record_id, "occurred_at": at.isoformat()}
    return json.dumps(body, separators=(",", ":")).encode()


def test_unsigned_wrong_stale_and_replayed_calls_are_refused_and_change_nothing(
    world: World,
) -> None:
    # Both systems empty: the start-up run writes nothing, so no system calls back and
    # every call from here on is the test's own.
    service = world.serve_started()
    service.wait_idle()
    created = {"id": "cus_" + "0" * 32}  # a hint need not name an existing record
    token, secret = _meta(service, "serve:hook_token"), _meta(service, "serve:webshop_secret")
    path = f"/hooks/webshop/{token}"
    now = datetime.now(UTC)
    fresh = _event(created["id"], now)
    before = service.metrics()

    def post(body: bytes, headers: dict[str, str], url: str = path) -> int:
        r = service.client.post(url, content=body, headers={"Content-Type": "application/json",
                                                             **headers})  # fmt: skip
        return r.status_code

    refused = [
        post(fresh, {}),  # no signature
        post(fresh, {SIGNATURE_HEADER: "sha256=" + "0" * 64}),  # wrong signature
        post(fresh, {SIGNATURE_HEADER: sign("another-secret-of-16+", fresh)}),  # wrong key
        post(fresh + b" ", {SIGNATURE_HEADER: sign(secret, fresh)}),  # body changed
        post(  # a recording from long ago, its signature valid
            stale := _event(created["id"], now - timedelta(hours=1)),
            {SIGNATURE_HEADER: sign(secret, stale), DELIVERY_HEADER: "dlv_old"},
        ),
    ]
    assert refused == [401] * 5
    assert post(fresh, {SIGNATURE_HEADER: sign(secret, fresh)}, "/hooks/webshop/guess") == 404
    after = service.metrics()
    key_refused = 'shopsync_hook_deliveries_total{result="refused",source="webshop"}'
    key_accepted = 'shopsync_hook_deliveries_total{result="accepted",source="webshop"}'
    assert after[key_refused] - before[key_refused] == 6
    assert after[key_accepted] == before[key_accepted]
    assert after["shopsync_run_in_progress"] == 0
    assert not any(v for k, v in after.items() if k.startswith("shopsync_pending_work{"))
    runs = lambda m: sum(v for k, v in m.items() if k.startswith("shopsync_runs_total{"))  # noqa: E731
    assert runs(after) == runs(before)

    # The genuine call is accepted once; the same delivery again is a replay.
    genuine = {SIGNATURE_HEADER: sign(secret, fresh), DELIVERY_HEADER: "dlv_test_1"}
    assert post(fresh, genuine) == 202
    assert post(fresh, genuine) == 401
    assert post(fresh, {SIGNATURE_HEADER: sign(secret, fresh)}) == 202  # another delivery id
    final = service.metrics()
    assert final[key_accepted] - before[key_accepted] == 2
    assert final[key_refused] - before[key_refused] == 7
    # Neither the address's token nor the secret ever reaches the log.
    log = service.log()
    assert "serve.webhook_refused" in log
    assert token not in log and secret not in log
    assert service.terminate() < 10
