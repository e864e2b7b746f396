"""Wiring for one installation: config → clients, state database, engine.

The CLI, the demo, the tests and the benchmarks all build an engine the same way
through :class:`Installation`, so there is one place that decides which client talks
to which system and which database holds the state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import Engine as SqlEngine
from sqlalchemy.orm import Session, sessionmaker

from shopsync.config.model import Config, Datatype, WebcrmConfig, WebshopConfig
from shopsync.connectors.webcrm.client import WebcrmClient
from shopsync.connectors.webshop.client import WebshopClient
from shopsync.engine.mapping import mappings
from shopsync.engine.report import RunReport
from shopsync.engine.restage import Targets
from shopsync.engine.sync import Engine
from shopsync.store import db


class SetupError(Exception):
    """The installation cannot run as configured (missing secret, schema mismatch…)."""


def open_webcrm(cfg: WebcrmConfig) -> WebcrmClient:
    """A webCRM client whose messages show ``base_url`` with any password masked."""
    return _shown_masked(WebcrmClient.from_config(cfg))


def open_webshop(cfg: WebshopConfig) -> WebshopClient:
    """A webshop client whose messages show ``base_url`` with any password masked."""
    return _shown_masked(WebshopClient.from_config(cfg))


_Client = TypeVar("_Client", WebcrmClient, WebshopClient)


def _shown_masked(client: _Client) -> _Client:
    # The clients put ``base_url`` into their error messages ("cannot reach webCRM at
    # …"), which reach the terminal and ``runs.error``. Their HTTP session and rate
    # limiter were built from the real URL in ``__init__``; after that ``base_url`` is
    # only shown, so the shown copy loses its password here.
    from shopsync.logs import mask_url

    client.base_url = mask_url(client.base_url)
    return client


@dataclass
class Installation:
    config: Config
    auto_upgrade: bool = True
    """Create or migrate the state schema on first use (``sync`` and ``demo`` do)."""
    _clients: list[object] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        from shopsync.logs import register_secret

        for secret in (self.config.webcrm.auth_code, self.config.webshop.token,
                       self.config.webshop.webhook_secret):  # fmt: skip
            if secret is not None:
                register_secret(secret.get_secret_value())
        for url in (self.config.webcrm.base_url, self.config.webshop.base_url,
                    self.config.state.url or ""):  # fmt: skip
            with suppress(ValueError):  # not parseable: mask_url still masks it when shown
                register_secret(urlsplit(url).password)

    @cached_property
    def state_url(self) -> str:
        url = self.config.state.url
        if not url:
            raise SetupError("[state] url is not set")
        return url

    @cached_property
    def db(self) -> SqlEngine:
        engine = db.make_engine(self.state_url)
        try:
            db.ensure_current(engine, auto_upgrade=self.auto_upgrade)
        except db.SchemaError as exc:
            raise SetupError(str(exc)) from exc
        return engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        # No autoflush: the engine flushes where a read must see its own writes (adding a
        # link), and per-record autoflushes would cost more than the sync itself.
        return sessionmaker(self.db, expire_on_commit=False, autoflush=False)

    @cached_property
    def webcrm(self) -> WebcrmClient:
        if self.config.webcrm.auth_code is None:
            raise SetupError(
                "no webCRM application token: set [webcrm] auth_code or SHOPSYNC_WEBCRM_AUTH_CODE"
            )
        client = open_webcrm(self.config.webcrm)
        self._clients.append(client)
        return client

    @cached_property
    def webshop(self) -> WebshopClient:
        if self.config.webshop.token is None:
            raise SetupError("no webshop token: set [webshop] token or SHOPSYNC_WEBSHOP_TOKEN")
        client = open_webshop(self.config.webshop)
        self._clients.append(client)
        return client

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as s:
            yield s

    def sync(
        self,
        only: Sequence[Datatype] | None = None,
        *,
        full: bool = False,
        sweep: bool = False,
        dry_run: bool = False,
        on_progress: Callable[[Datatype, str, int], None] | None = None,
        records: Targets | None = None,
    ) -> RunReport:
        """One sync run (holding the installation's sync lock); ``records`` names records
        to sync on demand (``Engine.run``)."""
        from shopsync.locking import exclusive, guarded

        lease = timedelta(seconds=self.config.state.lock_lease_seconds)
        writer = self.db.execution_options(sqlite_immediate=True)
        with (
            exclusive(self.sessions, lease=lease) as held,
            Session(writer, expire_on_commit=False, autoflush=False) as s,
        ):
            config = self.run_config(s)
            engine = Engine(
                config, s, guarded(self.webcrm, held), guarded(self.webshop, held),
                mappings=mappings(config), dry_run=dry_run, on_progress=on_progress,
            )  # fmt: skip
            return engine.run(only, full=full, sweep=sweep, records=records)

    def run_config(self, s: Session) -> Config:
        """The configuration a run gets: the file's, with the sharing switches changed
        in the console applied (they win until reset there; ``config/switches.py``)."""
        from shopsync.config.switches import effective
        from shopsync.store.console_queries import switches

        return effective(self.config, switches(s))

    def close(self) -> None:
        for client in self._clients:
            close = getattr(client, "close", None)
            if close is not None:
                close()
        self._clients.clear()
        if "db" in self.__dict__:
            self.db.dispose()

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
