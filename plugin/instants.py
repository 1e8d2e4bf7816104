"""Instants as people read them: to the minute, in one time zone, with its abbreviation.

A neutral module, free of Flask, so that the back-office pages, their flashes
and the domain services' messages all write an instant the same way
(``2026-11-30 14:05 CET``), in the billing time zone of the rules
(:attr:`plugin.rules.PricingRules.zoneinfo`) wherever the caller knows it.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo


def format_instant(value: datetime, zone: tzinfo = UTC) -> str:
    """``value`` in ``zone`` to the minute, with the zone's abbreviation (``CET``, ``CEST``).

    The abbreviation tells summer from winter time, so a reader never has to
    guess which offset a time has.  A naive value is taken as UTC, the way
    the database stores every instant.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def parse_instant(text: str) -> datetime | None:
    """An ISO 8601 instant with its offset (as the audit log stores them), else ``None``.

    Only full timestamps count: a bare date or a number stays what it is.
    """
    if len(text) < 16 or text[4:5] != "-" or "T" not in text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
