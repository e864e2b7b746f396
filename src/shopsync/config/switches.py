"""Sharing switches changed in the console, and the configuration a run gets.

The engine reads rule 8's switches from the :class:`Config` it is given
(``config.datatype(dt).to_webshop.enabled`` …, ``config.selective``). The console keeps
the switches a person changed in the state database (``console_switches``), and every
run (``shopsync sync`` as well as the service's, ``runtime.Installation.sync``) gets the
file's configuration with those applied (:func:`effective`): nothing in the engine
changes, a switch takes effect at the next run without a restart, and it survives one.

Which wins: a switch stored by the console wins over the config file's value until it
is reset in the console ("use the file's value"), which deletes the stored row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shopsync.config.model import Config, Datatype, ShareConfig

DIRECTIONS = ("to_webshop", "to_webcrm")
SHARE_FIELDS = ("enabled", "full_sync")
WON_ONLY = "selective.only_won_opportunities"


def share_key(dt: Datatype, direction: str, name: str) -> str:
    return f"{dt.value}.{direction}.{name}"


KEYS: tuple[str, ...] = (
    *(share_key(dt, d, n) for dt in Datatype for d in DIRECTIONS for n in SHARE_FIELDS),
    WON_ONLY,
)
"""Every switch the console can change."""


def file_value(config: Config, key: str) -> bool:
    """The switch's value in the configuration file (or its default)."""
    if key == WON_ONLY:
        return config.selective.only_won_opportunities
    dt, direction, name = key.split(".")
    share: ShareConfig = getattr(config.datatype(Datatype(dt)), direction)
    return bool(getattr(share, name))


def effective(config: Config, stored: Mapping[str, bool]) -> Config:
    """``config`` with the stored switches applied (a copy; ``config`` is unchanged).
    Unknown keys (from a later version) are ignored."""
    update: dict[str, object] = {}
    for dt in Datatype:
        dt_cfg = config.datatype(dt)
        shares: dict[str, ShareConfig] = {}
        for direction in DIRECTIONS:
            changes = {
                name: stored[key]
                for name in SHARE_FIELDS
                if (key := share_key(dt, direction, name)) in stored
            }
            if changes:
                shares[direction] = getattr(dt_cfg, direction).model_copy(update=changes)
        if shares:
            update[dt.value] = dt_cfg.model_copy(update=shares)
    if WON_ONLY in stored:
        update["selective"] = config.selective.model_copy(
            update={"only_won_opportunities": stored[WON_ONLY]}
        )
    return config.model_copy(update=update) if update else config


@dataclass(frozen=True)
class Switch:
    key: str
    value: bool
    """In effect now."""
    file: bool
    """The configuration file's value."""
    stored: bool
    """Whether the console's value is in effect (it wins over the file)."""


def listing(config: Config, stored: Mapping[str, bool]) -> list[Switch]:
    """Every switch with its value in effect and where that comes from."""
    return [
        Switch(
            key, stored.get(key, file_value(config, key)), file_value(config, key), key in stored
        )
        for key in KEYS
    ]
