"""Billing months: ``[first day 00:00, first day of next month 00:00)`` in the billing time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ..i18n import _
from .common import start_of_day

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12 or not 1900 <= self.year <= 9999:
            raise ValueError(
                _("%(month)s is not a month", month=f"{self.year:04d}-{self.month:02d}")
            )

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM``; raises ``ValueError`` with a message a person understands."""
        match = _MONTH.match(text.strip())
        if not match:
            raise ValueError(
                _("%(text)r is not a month: write it as YYYY-MM, for example 2026-10", text=text)
            )
        return cls(int(match[1]), int(match[2]))

    @classmethod
    def of(cls, instant: datetime, tz: ZoneInfo) -> Month:
        local = instant.astimezone(tz)
        return cls(local.year, local.month)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The month's first and next month's first instant, in UTC."""
        return (
            start_of_day(self.first_day, tz).astimezone(UTC),
            start_of_day(self.next().first_day, tz).astimezone(UTC),
        )

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
