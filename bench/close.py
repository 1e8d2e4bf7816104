"""6. Month close end to end (licences, invoices, numbering, PDFs) for all workspaces,
as ``flask billing close-month`` does it, each run on a fresh copy of the data set."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.pdf import PdfRenderer
from plugin.services.invoice_pdfs import render_pending
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .databases import RULES, Scale
from .harness import Figure, check, seconds, timed


def plain_renderer(session: Session) -> PdfRenderer:
    return PdfRenderer.from_config({})


def once(
    data, month: Month, now: datetime, renderer_for: Callable[[Session], Any] = plain_renderer
) -> tuple[float, float, int]:
    """Issue and render ``month`` on a fresh copy: (issue seconds, render seconds, invoices).

    ``renderer_for(session)`` makes the renderer once the invoices are issued (untimed);
    one with a ``close`` is closed after the run.
    """
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:

        def issue():
            summary = close_month(session, RULES, month, now, actor="bench")
            session.commit()
            return summary

        issue_seconds, summary = timed(issue)
        renderer = renderer_for(session)
        pdf_seconds, pdfs = timed(lambda: render_pending(session, renderer, tz=RULES.zoneinfo))
        if hasattr(renderer, "close"):
            renderer.close()
    engine.dispose()
    data.drop(url)
    check(pdfs.failed == 0, f"{pdfs.failed} PDFs failed: {pdfs.failures[:3]}")
    check(pdfs.rendered == len(summary.issued) > 0, "every issued invoice gets its PDF")
    return issue_seconds, pdf_seconds, len(summary.issued)


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    month = Month.of(now, RULES.zoneinfo).previous()
    results = [once(data, month, now) for _ in range(runs)]
    issued = {count for _, _, count in results}
    check(len(issued) == 1, f"runs issued different numbers of invoices: {issued}")
    count = issued.pop()
    total = statistics.median(issue + pdf for issue, pdf, _ in results)
    issue = statistics.median(issue for issue, _, _ in results)
    return [
        Figure(
            f"month close {month}, {count:,} invoices with PDFs (issue {seconds(issue)})",
            data.name,
            count / total,
            key="close_invoices_per_s",
            plugin=seconds(total),
            unit="invoices/s",
        )
    ]
