"""The console: see and steer the sync in a browser (docs/console.md).

Served by ``shopsync serve`` on its ``listen`` address: ``/`` (overview), ``/activity``,
``/problems``, ``/links``. :func:`mount` is the one call the service makes; it wraps the
service's runs (:class:`.state.Console`) and adds the routes (:mod:`.routes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

if TYPE_CHECKING:
    from shopsync.service.app import Service


def mount(app: FastAPI, service: Service) -> None:
    """Add the console to the service's app, and have every run report to it."""
    from shopsync.logs import register_secret
    from shopsync.service.console.routes import mount as mount_routes
    from shopsync.service.console.state import Console

    token = service.config.serve.admin_token
    if token is not None:
        register_secret(token.get_secret_value())
    console = Console(service)
    console.attach()
    mount_routes(app, console)
