"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work).

Readiness asks the state database live (a ``SELECT 1``), but not webCRM: a probe every
few seconds would spend the 250-requests-a-minute budget that the sync needs. For the
two systems it reports what the service learned at its last contact (the start-up
hello, every run); a refused webCRM application token says how to fix it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from shopsync.logs import scrub
from shopsync.runtime import Installation
from shopsync.service.scheduler import Scheduler


def readiness(inst: Installation, scheduler: Scheduler) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, dict[str, Any]] = {}
    try:
        with inst.db.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["state_db"] = {"ok": True, "detail": "ok"}
    except Exception as exc:  # any failure: not ready, and say why (masked)
        checks["state_db"] = {"ok": False, "detail": scrub(str(exc).splitlines()[0])}
    for system, state in scheduler.systems.items():
        checks[system] = {"ok": bool(state.ok), "detail": state.reason}
    if scheduler.stopping:
        checks["service"] = {"ok": False, "detail": "stopping"}
    ready = all(c["ok"] for c in checks.values())
    return ready, {"ready": ready, "checks": checks}
