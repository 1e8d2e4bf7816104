"""7. The billing dashboard's first view at full scale against the workspace list's.

On a fresh copy of the data set the eleven complete months before the
current one are closed (invoices issued, no PDFs rendered), as in a
back-office that closes every month; the dashboard then shows those months
from the stored invoices and the current month's licences from the counts
kept in the database (:mod:`plugin.services.month_licences`).

Both pages are first views: the process's counts cache is emptied before
every view of either, and before every view, untimed, one workspace's
history changes (its stamp is written, as by any change to its teams or
members; a workspace drawn at random, the same sequence every run), so each
dashboard view counts one workspace anew, as the first view after some work
in the back-office does.  The first view of all, on an empty table (after
the migration, or after every workspace changed at once), is timed once and
logged, not compared.  The dashboard's queries are counted too (a fixed
number, whatever the number of workspaces).
"""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import create_engine, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.models import Invoice, MonthLicences, WorkspaceStamp
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .app import LIST_PAGES, bench_app, counting_queries, dispose
from .databases import RULES, Scale
from .harness import Figure, check, interleaved, log, ratio, seconds, timed

URL = "/admin/billing_dashboard/"
CLOSED_MONTHS = 11


def close_year(url: str, now: datetime) -> int:
    """Close the complete months of the year before ``now``, oldest first: invoices issued.

    Their PDFs are marked rendered (a stand-in digest, no bytes), as the worker leaves
    them in a back-office that closes every month: rendering a year of PDFs would take
    hours here, and the dashboard reads no PDF.
    """
    month = Month.of(now, RULES.zoneinfo)
    months = []
    for _ in range(CLOSED_MONTHS):
        month = month.previous()
        months.append(month)
    engine = create_engine(url, poolclass=NullPool)
    issued = 0
    with Session(engine) as session:
        for month in reversed(months):
            issued += len(close_month(session, RULES, month, now, actor="bench").issued)
            session.commit()
        session.execute(update(Invoice).values(pdf_sha256="0" * 64))
        session.commit()
    engine.dispose()
    return issued


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    url = data.copy()
    seconds_closing, issued = timed(lambda: close_year(url, now))
    log(f"  closed {CLOSED_MONTHS} months on a copy: {issued:,} invoices, {seconds_closing:.0f} s")
    app = bench_app(url)
    client = app.test_client()
    cache = app.extensions["billing"].counts_cache(app)
    workspaces_url = LIST_PAGES["workspaces"][0]

    def get(page: str) -> bytes:
        response = client.get(page)
        check(response.status_code == 200, f"{page} answered {response.status_code}")
        return response.data

    def dashboard() -> bytes:
        cache.clear()
        page = get(URL)
        check(page.count(b'data-status="invoiced"') == CLOSED_MONTHS, "months from the invoices")
        return page

    def workspace_list() -> bytes:
        cache.clear()
        return get(workspaces_url)

    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        ids = list(session.scalars(select(WorkspaceStamp.workspace_id)))
    draw = random.Random(1)

    def one_workspace_changed() -> None:
        with Session(engine) as session, session.begin():
            changed = WorkspaceStamp.workspace_id == draw.choice(ids)
            written = WorkspaceStamp.stamp + 1
            session.execute(update(WorkspaceStamp).where(changed).values(stamp=written))

    dashboard()  # warm
    with Session(engine) as session, session.begin():
        session.execute(delete(MonthLicences))
    seconds_empty, _ = timed(dashboard)
    log(f"  dashboard, first view of all (no counts kept): {seconds(seconds_empty)}")
    one_workspace_changed()
    with counting_queries(app) as statements:
        dashboard()
    queries = len(statements)
    times = interleaved(
        {"dashboard": dashboard, "list": workspace_list},
        runs,
        warmup=0,
        before=one_workspace_changed,
    )
    engine.dispose()
    dispose(app)
    data.drop(url)
    return [
        Figure.of_ratio(
            f"dashboard first view ({queries} queries, {CLOSED_MONTHS} months invoiced, "
            f"one workspace changed) vs first view of {workspaces_url}",
            data.name,
            ratio(times, "dashboard", "list"),
            key="dashboard_vs_workspace_list",
            plugin=seconds(times["dashboard"].median),
            baseline=seconds(times["list"].median),
        )
    ]
