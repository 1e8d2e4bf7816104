"""1. Licences of one month for all workspaces, as the month close counts them, against SQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from plugin.services.licences import count_licences
from plugin.services.periods import Month
from plugin.services.quotes import MonthWindow

from . import sql
from .databases import RULES, Scale
from .harness import Figure, check, interleaved, ratio, seconds


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    month = Month.of(now, RULES.zoneinfo).previous()
    window = MonthWindow.at(month, RULES, now)
    engine = create_engine(data.url)

    def plugin():
        with Session(engine) as session:
            return count_licences(session, window.start, window.end)

    def baseline():
        with engine.connect() as connection:
            return sql.licence_counts(connection, window.start, window.end)

    times = interleaved({"plugin": plugin, "sql": baseline}, runs)
    engine.dispose()
    teams, users = times["plugin"].result
    check(times["plugin"].result == times["sql"].result, f"licence counts of {month}")
    check(len(teams) > 0 and len(users) > 0, "nothing billed")
    return [
        Figure.of_ratio(
            f"licences of {month}, {len(teams) + len(users):,} counts, vs hand-written SQL",
            data.name,
            ratio(times, "plugin", "sql"),
            key="licences_vs_sql",
            plugin=seconds(times["plugin"].median),
            baseline=seconds(times["sql"].median),
        )
    ]
