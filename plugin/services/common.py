"""Small helpers the domain services share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from itertools import islice
from typing import TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

#: Rows per statement for IN lists and bulk writes: well under SQLite's
#: 32,766 bound parameters and PostgreSQL's 65,535.
CHUNK = 5000


def chunked(items: Iterable[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    iterator = iter(items)
    while chunk := tuple(islice(iterator, size)):
        yield chunk


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """00:00 of ``day`` in the billing time zone, as an aware instant."""
    return datetime(day.year, day.month, day.day, tzinfo=tz)
