"""2. Licence-holder CSV export of the largest workspace: the plugin's download against
Flask-Admin's built-in CSV export of the same rows; and its memory, 10× against 1× rows."""

from __future__ import annotations

import csv
import io
import os
import statistics
import tracemalloc
from datetime import datetime

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from plugin.models import Workspace
from plugin.services.exports import licence_holders, write_csv
from plugin.services.periods import Month
from plugin.services.quotes import MonthWindow

from .app import EXPORT_URL, bench_app, dispose, point_export_at
from .databases import RULES, Scale
from .harness import Figure, check, interleaved, ratio, seconds
from .workspaces import EXPORT_KEY, EXPORT_SMALL_KEY


def _rows(body: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[1:]


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    month = Month.of(now, RULES.zoneinfo).previous()
    window = MonthWindow.at(month, RULES, now)
    app = bench_app(data.url)
    with app.app_context():
        session = app.extensions["sqlalchemy"].session
        ws_id = session.scalar(select(Workspace.id).where(Workspace.key == EXPORT_KEY))
    point_export_at(app, ws_id, window.start, window.end)
    client = app.test_client()
    plugin_url = f"/admin/billing_workspaces/w/{EXPORT_KEY}/export?month={month}&format=csv"

    def download(url: str) -> bytes:
        response = client.get(url)
        check(response.status_code == 200, f"{url} answered {response.status_code}")
        return response.get_data()

    times = interleaved(
        {"plugin": lambda: download(plugin_url), "flask-admin": lambda: download(EXPORT_URL)},
        runs,
    )
    dispose(app)
    rows = _rows(times["plugin"].result)
    check(rows == _rows(times["flask-admin"].result), "exported rows")
    if scale.export >= 100_000:
        check(len(rows) >= 100_000, f"only {len(rows)} rows in the largest export")
    plugin_rate = len(rows) / times["plugin"].median
    baseline_rate = len(rows) / times["flask-admin"].median
    # Rows per second against rows per second: the baseline's time over the plugin's.
    speedup = ratio(times, "flask-admin", "plugin")
    peak_10x, peak_1x, rows_1x = _memory(data.url, month, now, max(3, runs // 2))
    return [
        Figure.of_ratio(
            f"CSV export of {len(rows):,} rows ({EXPORT_KEY}), rows/s vs Flask-Admin export",
            data.name,
            speedup,
            key="export_vs_flask_admin",
            plugin=f"{plugin_rate:,.0f} rows/s ({seconds(times['plugin'].median)})",
            baseline=f"{baseline_rate:,.0f} rows/s ({seconds(times['flask-admin'].median)})",
        ),
        Figure(
            f"export peak memory (tracemalloc), {len(rows):,} vs {rows_1x:,} rows",
            data.name,
            peak_10x / peak_1x,
            key="export_memory_growth",
            plugin=f"{peak_10x / 1024:,.0f} KiB",
            baseline=f"{peak_1x / 1024:,.0f} KiB",
        ),
    ]


def _memory(url: str, month: Month, now: datetime, runs: int) -> tuple[float, float, int]:
    """Median peak of Python allocations while write_csv runs, for the 10× and 1× workspace."""
    engine = create_engine(url)

    def export(key: str, traced: bool) -> tuple[int, int]:
        with Session(engine) as session, open(os.devnull, "wb") as sink:
            holders = licence_holders(session, RULES, key, month, now)
            if not traced:
                return write_csv(holders, sink), 0
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            count = write_csv(holders, sink)
            peak = tracemalloc.get_traced_memory()[1] - before
            tracemalloc.stop()
            return count, peak

    export(EXPORT_KEY, False)
    rows_1x = export(EXPORT_SMALL_KEY, False)[0]
    peaks = {EXPORT_KEY: [], EXPORT_SMALL_KEY: []}
    for _ in range(runs):
        for key, found in peaks.items():
            found.append(export(key, True)[1])
    engine.dispose()
    return statistics.median(peaks[EXPORT_KEY]), statistics.median(peaks[EXPORT_SMALL_KEY]), rows_1x
