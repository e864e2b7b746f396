"""Ids cut into ``IN (...)`` lists of a size every supported database takes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

IN_LIST = 500
"""Values per ``IN (...)`` list: well under SQLite's and PostgreSQL's parameter limits,
and long enough that a page of 1000 records costs two statements."""


def in_chunks(values: Iterable[T], size: int = IN_LIST) -> Iterator[list[T]]:
    """``values`` as consecutive lists of at most ``size``."""
    chunk: list[T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
