"""Is a record as read readable at all? Checked before it is staged.

The live APIs sometimes answer values no conversion can use: a name cut inside an
emoji (.NET cuts UTF-16, leaving a lone surrogate that no UTF-8 request can carry), a
date-time that is no date (``"yesterday"``) or lies outside what a datetime can hold
(:func:`problem`), a number that is ``NaN`` or ``Infinity`` (:func:`not_finite`: not
JSON, yet Python's parser accepts it; no database column holds it as JSON, and a price
of NaN is no price).
Such a record is put aside when it is read, with a reason naming the field, so that
it fails only itself: it never reaches a request body, a snapshot or a cursor, and the
records after it sync in the same run. Once fixed at its source its next version
reads cleanly and syncs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from shopsync.engine.streams import Stream, parse_time

WEBCRM, WEBSHOP = "webcrm", "webshop"
_SURROGATE = re.compile("[\ud800-\udfff]")


def problem(stream: Stream, system: str, record: Mapping[str, Any]) -> str | None:
    """Why ``record`` cannot be synced as read (naming the field), or None."""
    if system == WEBCRM:
        times = (stream.webcrm_updated_field, stream.webcrm_created_field)
    else:
        times = ("updated_at", "created_at")
    for name in times:
        value = record.get(name)
        try:
            parse_time(value)
        except (ValueError, TypeError, OverflowError):
            return f"{name}: {value!r} is not a date-time"
    if _encodable(record):
        return None  # the common case: no string to walk
    for path, text in _strings(record):
        found = _SURROGATE.search(text)
        if found is not None:
            return (
                f"{path}: holds a broken character (a lone UTF-16 surrogate "
                f"U+{ord(found.group()):04X} at position {found.start()}, as left by text "
                "cut inside an emoji); it cannot be sent anywhere until it is corrected"
            )
    return None


def _encodable(record: Mapping[str, Any]) -> bool:
    """Whether every string of ``record`` is valid UTF-8 text, in one C-speed pass
    (orjson refuses a lone surrogate); :func:`_strings` then names the field only when
    one is not."""
    try:
        orjson.dumps(record, default=str)
    except TypeError:
        return False
    return True


def not_finite(record: Mapping[str, Any]) -> str | None:
    """Why ``record`` cannot be stored as read: a number in it is NaN or Infinity
    (naming the field), or None.

    Asked only of the records about to be staged (:meth:`Stager.flush`), after the
    unchanged ones were dropped: the walk costs a few microseconds a record, a sixth
    of what an unchanged record costs otherwise, and an unchanged record is never
    stored.
    """
    if _finite(record):
        return None
    path, number = next(_non_finite(record))
    return f"{path}: {number} is not a number (NaN or Infinity)"


def _finite(value: Mapping[str, Any] | list[Any]) -> bool:
    """Whether every float in ``value`` is finite: looks only at floats, descends only
    into dicts and lists."""
    items: Iterable[Any] = value.values() if type(value) is dict else value
    for v in items:
        kind = type(v)
        if kind is float:
            if not math.isfinite(v):
                return False
        elif (kind is dict or kind is list) and not _finite(v):
            return False
    return True


def _non_finite(value: Any, path: str = "") -> Iterator[tuple[str, float]]:
    if isinstance(value, float) and not math.isfinite(value):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _non_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _non_finite(item, f"{path}[{index}]")


def cleaned(value: Any) -> Any:
    """``value`` with each lone surrogate replaced by U+FFFD, for storing and showing."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {str(k): cleaned(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cleaned(v) for v in value]
    return value


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            yield from _strings(name, path)  # a key can be broken too
            yield from _strings(item, f"{path}.{name}" if path else name)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")
