"""``shopsync webshop-server``: run the reference webshop as a real HTTP server."""

from __future__ import annotations

import logging
import sys

import uvicorn
from sqlalchemy.engine import make_url

from .app import create_app
from .db import database_url


def describe_db(db: str) -> str:
    """The database for a log line, with any password hidden."""
    return make_url(database_url(db)).render_as_string(hide_password=True)


def serve(host: str, port: int, db: str, token: str, seed: int | None) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app(db, token, seed=seed)
    print(
        f"reference webshop on http://{host}:{port} (contract at /openapi.json, "
        f"controls at /_webshop), database {describe_db(db)}",
        file=sys.stderr,
        flush=True,
    )
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
