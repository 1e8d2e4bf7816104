"""5. Invoice PDFs: one invoice against bare wkhtmltopdf (same options, same HTML) and
against pdfkit's defaults; a batch in parallel against the same batch sequentially."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import datetime

import pdfkit
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from plugin.pdf import OPTIONS, PdfRenderer, render_invoice_html
from plugin.services.invoice_pdfs import invoice_document, pending_invoices
from plugin.services.invoicing import close_month
from plugin.services.periods import Month

from .databases import RULES, Scale
from .harness import Figure, check, interleaved, ratio, seconds

#: The environment the plugin runs wkhtmltopdf in (reproducible output); it changes
#: wkhtmltopdf's own speed, so the bare baseline gets it too and the ratio is the
#: plugin's overhead alone.
ENV = {**os.environ, "QT_HASH_SEED": "0", "TZ": "UTC"}


def _documents(data, now: datetime, count: int) -> list[dict]:
    """``count`` real invoices: last month closed on a copy, PDFs not rendered."""
    url = data.copy()
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        close_month(session, RULES, Month.of(now, RULES.zoneinfo).previous(), now, actor="bench")
        session.commit()
        rows = pending_invoices(session, limit=count)
        documents = [
            invoice_document(row, credits_number=row.credits_number, tz=RULES.zoneinfo)
            for row in rows
        ]
    engine.dispose()
    data.drop(url)
    return documents


def _text(pdf: bytes) -> str:
    """The PDF's words (pdftotext), whitespace-normalised."""
    if not shutil.which("pdftotext"):
        return ""
    out = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    return " ".join(out.stdout.decode("utf-8").split())


def run(data, scale: Scale, now: datetime, runs: int) -> list[Figure]:
    documents = _documents(data, now, scale.pdf_batch)
    check(len(documents) == scale.pdf_batch, "not enough invoices for the PDF batch")
    document = max(documents, key=lambda d: len(d["lines"]))
    html = render_invoice_html(document)
    # At the bench's own priority, like the baselines: the figures compare the work of
    # rendering, not the niceness a deployment gives it (BILLING_RENDER_NICE).
    renderer = PdfRenderer.from_config({"BILLING_RENDER_NICE": 0}, workers=1)
    bare = [renderer.wkhtmltopdf]
    for option, value in OPTIONS.items():
        bare += [option, value] if value else [option]

    def wkhtmltopdf() -> bytes:
        command = [*bare, "-", "-"]
        return subprocess.run(command, input=html.encode(), capture_output=True, env=ENV).stdout

    one = interleaved(
        {
            "plugin": lambda: renderer.render(document),
            "bare": wkhtmltopdf,
            "naive": lambda: pdfkit.from_string(html, False),
        },
        max(runs, 9),
    )
    words = {name: _text(t.result) for name, t in one.items()}
    # The same words: pdfkit's defaults (margins) wrap the footer's columns elsewhere,
    # which changes the order pdftotext reads them in, not what is printed.
    check(
        sorted(words["plugin"].split()) == sorted(words["bare"].split())
        == sorted(words["naive"].split()),
        "the PDFs' text",
    )
    check(document["number"] in words["plugin"] or not words["plugin"], "invoice number")

    workers = os.cpu_count() or 1
    parallel = PdfRenderer(renderer.wkhtmltopdf, workers=workers, nice=0)
    batch = interleaved(
        {
            "sequential": lambda: renderer.render_many(documents),
            "parallel": lambda: parallel.render_many(documents),
        },
        max(3, runs // 2),
        max_runs=runs,
    )
    check(
        batch["sequential"].result == batch["parallel"].result,
        "parallel PDFs are not the sequential ones byte for byte",
    )
    check(all(isinstance(pdf, bytes) for pdf in batch["parallel"].result), "a PDF failed")
    plugin, n = one["plugin"].median, len(documents)
    return [
        Figure.of_ratio(
            "one invoice PDF vs bare wkhtmltopdf, same options and HTML",
            "-",
            ratio(one, "plugin", "bare"),
            key="pdf_vs_wkhtmltopdf",
            plugin=seconds(plugin),
            baseline=seconds(one["bare"].median),
        ),
        Figure.of_ratio(
            "one invoice PDF vs pdfkit.from_string, default options",
            "-",
            ratio(one, "plugin", "naive"),
            key="pdf_vs_naive_pdfkit",
            plugin=seconds(plugin),
            baseline=seconds(one["naive"].median),
        ),
        Figure.of_ratio(
            f"{n} invoice PDFs, {workers} workers vs 1 (per invoice)",
            "-",
            ratio(batch, "sequential", "parallel"),
            key="pdf_parallel_speedup",
            plugin=seconds(batch["parallel"].median / n),
            baseline=seconds(batch["sequential"].median / n),
        ),
    ]
