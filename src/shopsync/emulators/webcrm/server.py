"""``shopsync webcrm-emulator``: serve the emulator app with uvicorn."""

from __future__ import annotations

from pathlib import Path

import uvicorn

from shopsync.emulators.webcrm.app import EmulatorConfig, create_app


def serve(
    host: str,
    port: int,
    db: Path,
    auth_code: str,
    rate_limit: int,
    token_ttl: int,
    seed: int | None,
) -> None:
    """Run until interrupted. ``rate_limit`` 0 switches the limit off; ``seed`` is the
    number of organisations to seed into an empty store (random seed 1)."""
    app = create_app(
        EmulatorConfig(
            db=Path(db),
            auth_code=auth_code,
            rate_limit=rate_limit,
            token_ttl=token_ttl,
            seed_organisations=seed,
        )
    )
    # No access log: it would cost more than the requests it logs in benchmarks.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
