"""9. E-invoices: the whole pipeline for one invoice (HTML → PDF → PDF/A-3 → embed →
XSD + Schematron) against today's plain PDF, where its time goes, and the month close
with e-invoices side by side with the plain path."""

from __future__ import annotations

import statistics
from datetime import datetime

from sqlalchemy import create_engine, update
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.einvoice import (
    GhostscriptPool,
    HybridOutcome,
    HybridRenderer,
    WarmStarts,
    build_cii,
    embed_xml,
    extract_xml,
    missing_pdfa_markers,
    validate,
    warm_up,
)
from plugin.models import Invoice
from plugin.pdf import PdfRenderer
from plugin.services.einvoices import einvoice_of
from plugin.services.invoice_pdfs import invoice_document, pending_invoices
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .close import once, plain_renderer
from .databases import RULES, Scale
from .harness import Figure, check, interleaved, ratio, seconds


def _documents(data, now: datetime, count: int) -> list[dict]:
    """``count`` real e-invoice documents: last month closed on a copy, nothing rendered."""
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        close_month(session, RULES, Month.of(now, RULES.zoneinfo).previous(), now, actor="bench")
        session.commit()
        documents = []
        for row in pending_invoices(session, limit=count):
            document = invoice_document(
                row, credits_number=row.credits_number,
                credits_issued_at=row.credits_issued_at, tz=RULES.zoneinfo,
            )
            documents.append({**document, "einvoice": einvoice_of(row, tz=RULES.zoneinfo)})
    engine.dispose()
    data.drop(url)
    return documents


def _one_invoice(data, now: datetime, runs: int) -> list[Figure]:
    documents = _documents(data, now, 10)
    check(bool(documents), "no invoice to render")
    document = max(documents, key=lambda d: len(d["lines"]))
    invoice = document["einvoice"]
    plain_renderer = PdfRenderer.from_config({}, workers=1)
    hybrid_renderer = HybridRenderer.from_config({}, workers=1)
    fresh_renderer = HybridRenderer.from_config({"BILLING_PDFA_LONG_RUNNING": False}, workers=1)
    converter = hybrid_renderer.converter
    assert converter is not None
    plain = {key: value for key, value in document.items() if key != "einvoice"}
    warm_up()  # the stylesheets compile once per process (about a second), not per invoice

    both = interleaved(
        {
            "einvoice": lambda: hybrid_renderer.render_or_error(document),
            "plain": lambda: plain_renderer.render(plain),
            "fresh": lambda: fresh_renderer.render_or_error(document),
        },
        max(runs, 9),
    )
    for name in ("einvoice", "fresh"):
        outcome = both[name].result
        check(isinstance(outcome, HybridOutcome) and outcome.pdf is not None, f"{outcome!r}")
        check(outcome.validation.ok, outcome.validation.summary())
        check(not missing_pdfa_markers(outcome.pdf), "the hybrid PDF lacks a PDF/A-3 marker")
        check(extract_xml(outcome.pdf) == outcome.xml == build_cii(invoice), "the embedded XML")

    pdf = both["plain"].result
    xml = build_cii(invoice)
    pdfa = converter.convert(pdf)
    warm = WarmStarts(converter)
    pool = GhostscriptPool(converter)
    steps = interleaved(
        {
            "1. HTML → PDF (wkhtmltopdf)": lambda: plain_renderer.render(plain),
            "2. CII XML": lambda: build_cii(invoice),
            "3. XSD + Schematron (saxonche)": lambda: validate(xml),
            "4. PDF/A-3b (Ghostscript, started for it)": lambda: converter.convert(pdf),
            "4. PDF/A-3b (Ghostscript, started ahead)": lambda: warm.take().finish(pdf),
            "4. PDF/A-3b (long-running Ghostscript)": lambda: pool.convert(pdf),
            "5. embed XML + XMP (factur-x)": lambda: embed_xml(
                pdfa, xml, number=invoice.number, seller=invoice.seller.name,
                issue_date=invoice.issue_date, language=invoice.language,
            ),
        },
        # Medians of each step, not ratios: no extra pairs, and no step repeated as
        # often as the shortest would need (the XML takes a millisecond, Ghostscript 100).
        max(runs, 9),
        max_runs=max(runs, 9),
        min_unit=0,
    )
    warm.close()
    pool.close()
    hybrid_renderer.close()
    fresh_renderer.close()
    figures = [
        Figure.of_ratio(
            "one e-invoice (HTML → PDF → PDF/A-3 → embed → XSD + Schematron) vs the plain PDF",
            "-",
            ratio(both, "einvoice", "plain"),
            key="einvoice_vs_pdf",
            plugin=seconds(both["einvoice"].median),
            baseline=seconds(both["plain"].median),
        ),
        Figure.of_ratio(
            "the same with a fresh Ghostscript per document (BILLING_PDFA_LONG_RUNNING = False)",
            "-",
            ratio(both, "fresh", "plain"),
            plugin=seconds(both["fresh"].median),
            baseline=seconds(both["plain"].median),
        ),
    ]
    figures += [
        Figure(f"e-invoice step {name}", "-", timing.median, plugin=seconds(timing.median),
               unit="s")
        for name, timing in steps.items()
    ]
    return figures


def _as_issued_before_einvoices(session: Session) -> PdfRenderer:
    """The plain path: the invoices made to look issued before e-invoices (untimed), so
    that today's renderer renders them as plain PDFs."""
    session.execute(update(Invoice).values(buyer=None))
    session.commit()
    return plain_renderer(session)


def _close_once(data, month: Month, now: datetime, *, einvoices: bool) -> tuple[float, int]:
    renderer_for = (lambda _: HybridRenderer.from_config({})) if einvoices else (
        _as_issued_before_einvoices)
    issue_seconds, pdf_seconds, count = once(data, month, now, renderer_for)
    return issue_seconds + pdf_seconds, count


def _close(data, now: datetime, runs: int) -> list[Figure]:
    month = Month.of(now, RULES.zoneinfo).previous()
    results = {True: [], False: []}
    for _ in range(runs):  # alternate, so a noisy neighbour slows both alike
        for einvoices in (True, False):
            results[einvoices].append(_close_once(data, month, now, einvoices=einvoices))
    counts = {count for runs_ in results.values() for _, count in runs_}
    check(len(counts) == 1, f"runs issued different numbers of invoices: {counts}")
    count = counts.pop()
    with_einvoices = statistics.median(total for total, _ in results[True])
    plain = statistics.median(total for total, _ in results[False])
    return [
        Figure(
            f"month close {month}, {count:,} invoices as e-invoices (plain PDFs: "
            f"{count / plain:.3g} invoices/s)",
            data.name,
            count / with_einvoices,
            key="close_einvoices_per_s",
            plugin=seconds(with_einvoices),
            baseline=seconds(plain),
            unit="invoices/s",
        ),
    ]


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    return _one_invoice(data, now, runs)


def run_close(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    return _close(data, now, runs)
