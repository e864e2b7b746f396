"""A deliberately broken webshop: the reference server with two contract rules cut off.

An ASGI wrapper drops the ``Idempotency-Key`` and ``If-Match`` request headers before
the reference app sees them, so retried creates make duplicates and stale updates
overwrite newer ones — exactly what ``shopsync check-webshop`` must catch.

Run as a script (the conformance tests start it as a real process):
``python broken_shop.py --port P --db PATH --token T``.
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from shopsync.emulators.webshop.app import create_app

DROPPED = {b"idempotency-key", b"if-match"}


class DropHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = [(k, v) for k, v in scope["headers"] if k.lower() not in DROPPED]
            scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    app = DropHeaders(create_app(args.db, args.token))
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
