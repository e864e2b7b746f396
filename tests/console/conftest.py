"""The console in a real browser: Debian's Chromium driven by Playwright.

Every part is a real process, as in ``tests/service``: the webCRM emulator, the
reference webshop and ``shopsync serve`` (which serves the console). The browser is
``/usr/bin/chromium`` (installed by ``make install``), never a build Playwright would
download; without it the browser tests are skipped with the reason.

Screenshots of each page are written to ``$SHOPSYNC_CONSOLE_SCREENSHOTS`` (default
``.pytest_cache/console-screenshots`` in the repository), one PNG per page and test.
Accessibility is checked with axe-core (``axe.min.js`` beside this file, vendored from
the npm package ``axe-core`` 4.14.1, MPL-2.0).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.service.conftest import World, wait_for
from tests.service.conftest import world as world  # the fixture, re-exported

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).with_name("axe.min.js")
REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(
    os.environ.get("SHOPSYNC_CONSOLE_SCREENSHOTS") or REPO / ".pytest_cache" / "console-screenshots"
)
ADMIN_TOKEN = "console-admin-token-0123456789abcdef"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            "no /usr/bin/chromium: `make install` installs Debian's chromium package "
            "(apt-get install chromium); the console's browser tests need it"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    context.set_default_timeout(60_000)
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


def shot(page: Any, name: str) -> Path:
    """A full-page screenshot as a test artifact (see the module doc for where)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of serious or critical impact on the page as shown."""
    page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
            .map(v => ({id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def state(world: World) -> Session:
    return Session(create_engine(world.state_url))


def served(world: World, **config: Any) -> Any:
    """A service whose start-up run has finished and which is idle."""
    service = world.serve_started(**config)
    service.wait_idle()
    return service


__all__ = ["ADMIN_TOKEN", "serious_violations", "served", "shot", "state", "wait_for", "world"]
