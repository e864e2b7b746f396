"""Hooks: every write posts to matching targets in the background, with retries."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from shopsync.emulators.launch import RunningServer

from .conftest import Receiver


def _deliveries(server: RunningServer) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(server.url + "/_emulator/hook-deliveries", timeout=30).json()
    return body


def _settled(server: RunningServer, receiver: Receiver, timeout: float = 30) -> None:
    """Wait until nothing is queued and every logged attempt has reached the receiver."""
    deadline = time.monotonic() + timeout
    while True:
        state = _deliveries(server)
        with receiver.lock:
            received = len(receiver.calls)
        if state["pending"] == 0 and len(state["attempts"]) == received:
            return
        assert time.monotonic() < deadline, f"deliveries not settled in {timeout}s: {state}"
        time.sleep(0.05)


def test_every_write_event_reaches_matching_hooks(
    crm: httpx.Client, reset_emulator: RunningServer, receiver: Receiver
) -> None:
    all_events = crm.post(
        "/Products/Hooks", json={"TargetUrl": receiver.url + "/all", "IsEnabled": True,
                                 "Filter": ["All"]},
    ).json()  # fmt: skip
    deletes = crm.post(
        "/Products/Hooks", json={"TargetUrl": receiver.url + "/del", "EventType": "Delete",
                                 "IsEnabled": True, "Filter": ["All"]},
    ).json()  # fmt: skip
    crm.post(
        "/Products/Hooks", json={"TargetUrl": receiver.url + "/off", "IsEnabled": False,
                                 "Filter": ["All"]},
    )  # fmt: skip
    crm.post("/Organisations/Hooks", json={"TargetUrl": receiver.url + "/org", "IsEnabled": True})
    crm.post("/Opportunities/Hooks", json={"TargetUrl": receiver.url + "/last", "IsEnabled": True})

    pid = crm.post("/Products", json={"ProductCustom1": "SKU-H"}).json()
    crm.put(f"/Products/{pid}", json={"ProductCustom1": "SKU-H2"})
    ids = crm.patch("/Products", json=[{"ProductId": pid}, {"ProductCustom1": "new"}]).json()
    crm.delete(f"/Products/{pid}")
    crm.post("/Opportunities", json={"OpportunityDescription": "the last event"})

    # Readiness, not a pause: the dispatcher takes deliveries up in the order they were
    # queued, so once the last event's delivery is in, every delivery queued before it
    # (a wrong match among them) was taken up first; then wait until each one the
    # emulator has logged has reached the receiver.
    receiver.wait_for(lambda calls: len(calls) >= 6 and any(c["path"] == "/last" for c in calls))
    _settled(reset_emulator, receiver)
    calls = receiver.calls
    assert [c["path"] for c in calls].count("/last") == 1
    on_all = sorted(
        ((c["body"]["EventType"], c["body"]["Id"]) for c in calls if c["path"] == "/all"),
        key=str,
    )
    assert on_all == sorted(
        [("Create", pid), ("Update", pid), ("Update", pid), ("Create", int(ids[1])),
         ("Delete", pid)],
        key=str,
    )  # fmt: skip
    on_delete = [c["body"] for c in calls if c["path"] == "/del"]
    assert len(on_delete) == 1
    body = on_delete[0]
    assert body["HookId"] == deletes and body["EntityType"] == "Product"
    assert body["ProductId"] == pid and body["Attempt"] == 1 and body["Timestamp"].endswith("Z")
    assert not [c for c in calls if c["path"] in ("/off", "/org")]
    assert {c["body"]["HookId"] for c in calls if c["path"] == "/all"} == {all_events}


def test_failed_deliveries_are_retried_with_backoff(
    crm: httpx.Client, reset_emulator: RunningServer, receiver: Receiver
) -> None:
    receiver.fail[0] = 2
    crm.post("/Organisations/Hooks", json={"TargetUrl": receiver.url + "/h", "IsEnabled": True})
    crm.post("/Organisations", json={"OrganisationName": "Retry ApS"})
    receiver.wait_for(lambda calls: any(c["answered"] == 200 for c in calls))
    calls = receiver.calls
    assert [c["answered"] for c in calls] == [500, 500, 200]
    assert [c["body"]["Attempt"] for c in calls] == [1, 2, 3]
    assert len({c["body"]["DeliveryId"] for c in calls}) == 1

    log = _deliveries(reset_emulator)["attempts"]
    assert [(a["Attempt"], a["Ok"], a["Status"]) for a in log] == [
        (1, False, 500), (2, False, 500), (3, True, 200)
    ]  # fmt: skip
    waits = [a["RetryInSeconds"] for a in log[:2]]
    assert waits[1] == 2 * waits[0] > 0  # exponential backoff


def test_unreachable_target_is_given_up_after_bounded_attempts(
    crm: httpx.Client, reset_emulator: RunningServer
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()  # nothing listens there now
    r = httpx.put(reset_emulator.url + "/_emulator/hook-retry",
                  json={"backoff": 0.05, "max_attempts": 4}, timeout=30)  # fmt: skip
    assert r.status_code == 200
    crm.post("/Opportunities/Hooks", json={"TargetUrl": f"http://127.0.0.1:{port}/x",
                                           "IsEnabled": True})  # fmt: skip
    crm.post("/Opportunities", json={"OpportunityDescription": "no listener"})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log = _deliveries(reset_emulator)["attempts"]
        if log and log[-1]["GaveUp"]:
            break
        time.sleep(0.2)
    assert [a["Attempt"] for a in log] == [1, 2, 3, 4]
    assert [a["RetryInSeconds"] for a in log] == [0.05, 0.1, 0.2, None]
    assert all(not a["Ok"] and a["Error"] for a in log)
    assert _deliveries(reset_emulator)["pending"] == 0


def test_api_calls_do_not_wait_for_slow_targets(
    crm: httpx.Client, reset_emulator: RunningServer
) -> None:
    """A target that does not answer does not hold up the writes that trigger it."""
    release = threading.Event()
    seen: list[float] = []

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(time.monotonic())
            release.wait(20)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/slow"
        crm.post("/Products/Hooks", json={"TargetUrl": url, "IsEnabled": True})
        assert crm.post("/Products", json={"ProductCustom1": "S0"}).status_code == 200
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen, "the first delivery never arrived"
        # The target now holds that delivery (until released); writes still go through.
        for i in range(1, 10):
            assert crm.post("/Products", json={"ProductCustom1": f"S{i}"}).status_code == 200
        assert not release.is_set()
        assert len(crm.get("/Products").json()) == 10
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_hook_input_is_checked(crm: httpx.Client) -> None:
    for body, field in (
        ({}, "TargetUrl"),
        ({"TargetUrl": "ftp://x/y"}, "TargetUrl"),
        ({"TargetUrl": "http://x/y", "EventType": "Upsert"}, "EventType"),
        ({"TargetUrl": "http://x/y", "Filter": ["Responsible"]}, "Filter"),
        ({"TargetUrl": "http://x/y", "IsEnabled": "yes"}, "IsEnabled"),
    ):
        r = crm.post("/Organisations/Hooks", json=body)
        assert r.status_code == 400 and r.json()["Field"] == field, (body, r.text)
    ok = crm.post("/Opportunities/Hooks", json={"TargetUrl": "http://x/y",
                                                "Filter": ["Responsible"]})  # fmt: skip
    assert ok.status_code == 200
    assert crm.get("/Organisations/Hooks/12345").status_code == 404
    assert crm.put("/Organisations/Hooks/12345", json={"TargetUrl": "http://x"}).status_code == 404
