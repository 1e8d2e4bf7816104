"""6. Month close end to end (licences, invoices, numbering, PDFs) for all workspaces,
as ``flask billing close-month`` does it, each run on a fresh copy of the data set."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.einvoice import HybridRenderer
from plugin.pdf import PdfRenderer
from plugin.services.invoice_pdfs import render_pending
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .databases import RULES, Scale
from .harness import Figure, check, seconds, timed


def plain_renderer(session: Session) -> PdfRenderer:
    return PdfRenderer.from_config({})


def einvoice_renderer(session: Session) -> HybridRenderer:
    """What ``flask billing close-month`` renders with: invoices with billing details are
    e-invoices, which the plain renderer refuses."""
    return HybridRenderer.from_config({})


class StatementClock:
    """Seconds the database spends on the statements that start with ``prefix``.

    How much of the issue step storing the licence holders takes
    (``INSERT INTO billing_invoice_holder``), measured inside the same run.
    """

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.prefix = prefix
        self.seconds = 0.0
        self._started: list[float] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith(self.prefix):
            self._started.append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith(self.prefix):
            self.seconds += time.perf_counter() - self._started.pop()


HOLDERS = "INSERT INTO billing_invoice_holder"


def once(
    data, month: Month, now: datetime, renderer_for: Callable[[Session], Any] = plain_renderer
) -> tuple[float, float, int]:
    """Issue and render ``month`` on a fresh copy: (issue seconds, render seconds, invoices).

    ``renderer_for(session)`` makes the renderer once the invoices are issued (untimed);
    one with a ``close`` is closed after the run.
    """
    issue_seconds, pdf_seconds, count, _ = once_with_holders(data, month, now, renderer_for)
    return issue_seconds, pdf_seconds, count


def once_with_holders(
    data, month: Month, now: datetime, renderer_for: Callable[[Session], Any] = plain_renderer
) -> tuple[float, float, int, float]:
    """:func:`once`, and the seconds of the issue step that stored the licence holders."""
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    clock = StatementClock(engine, HOLDERS)
    with Session(engine) as session:

        def issue():
            summary = close_month(session, RULES, month, now, actor="bench")
            session.commit()
            return summary

        issue_seconds, summary = timed(issue)
        holders_seconds = clock.seconds
        renderer = renderer_for(session)
        pdf_seconds, pdfs = timed(lambda: render_pending(session, renderer, tz=RULES.zoneinfo))
        if hasattr(renderer, "close"):
            renderer.close()
    engine.dispose()
    data.drop(url)
    check(pdfs.failed == 0, f"{pdfs.failed} PDFs failed: {pdfs.failures[:3]}")
    check(pdfs.rendered == len(summary.issued) > 0, "every issued invoice gets its PDF")
    return issue_seconds, pdf_seconds, len(summary.issued), holders_seconds


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    month = Month.of(now, RULES.zoneinfo).previous()
    results = [once_with_holders(data, month, now, einvoice_renderer) for _ in range(runs)]
    issued = {count for _, _, count, _ in results}
    check(len(issued) == 1, f"runs issued different numbers of invoices: {issued}")
    count = issued.pop()
    total = statistics.median(issue + pdf for issue, pdf, _, _ in results)
    issue = statistics.median(issue for issue, _, _, _ in results)
    # Per run: the issue step over the issue step without the holders' statements.
    factor = statistics.median(issue / (issue - held) for issue, _, _, held in results)
    holders = statistics.median(held for _, _, _, held in results)
    return [
        Figure(
            f"month close {month}, {count:,} invoices with PDFs (issue {seconds(issue)})",
            data.name,
            count / total,
            key="close_invoices_per_s",
            plugin=seconds(total),
            unit="invoices/s",
        ),
        Figure(
            f"month close {month}: storing the licence holders, of the issue step "
            f"{seconds(issue)} (issue / issue without them: {factor:.2f}×)",
            data.name,
            holders,
            key="close_holders_s",
            plugin=seconds(holders),
            unit="s",
        ),
    ]
