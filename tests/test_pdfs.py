"""Invoice PDFs: real wkhtmltopdf, read back with pdftotext, on SQLite and PostgreSQL.

No mocks: a failing renderer is a script that fails, a hostile fetch goes to
a real HTTP server on 127.0.0.1 that counts what it receives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pdfkit
import pytest
from sqlalchemy import event, select

from plugin.models import Invoice, Workspace
from plugin.pdf import PdfRenderer, PdfRenderError
from plugin.services.invoice_pdfs import render_pending
from plugin.services.invoicing import seller_snapshot
from plugin.services.rules_versions import record_rules_version
from tests.helpers import sample_document

pytestmark = pytest.mark.skipif(
    not (shutil.which("wkhtmltopdf") and shutil.which("pdftotext")),
    reason="wkhtmltopdf and pdftotext (poppler-utils) are needed",
)

MUELLER = "Müller & Söhne GmbH"
META_AND_IFRAME = (
    '<meta name="pdfkit-enable-local-file-access" content="">'
    '<iframe src="file:///etc/passwd"></iframe>'
)
SCRIPT = "<script>document.write('INJECTED')</script>"


# Helpers ---------------------------------------------------------------------


def session_of(app):
    return app.extensions["sqlalchemy"].session


def add_invoice(app, seq: int, workspace_name: str = MUELLER, **fields) -> Invoice:
    """An issued team-licence invoice for 2026-10, as the month close would store it."""
    session = session_of(app)
    rules = app.extensions["billing"].rules()
    record_rules_version(session, rules)
    workspace = Workspace(
        key=f"ws-{seq}", name=workspace_name, created_at=datetime(2024, 1, 1, tzinfo=UTC)
    )
    session.add(workspace)
    session.flush()
    values = {
        "number": f"2026-{seq:05d}",
        "year": 2026,
        "seq": seq,
        "kind": "invoice",
        "workspace_id": workspace.id,
        "workspace_key": workspace.key,
        "workspace_name": workspace_name,
        "period": "2026-10",
        "issued_at": datetime(2026, 10, 31, 23, 30, tzinfo=UTC),
        "variant": "team_licences",
        "quantity": 12,
        "currency": "EUR",
        "tax_rate": Decimal("0.19"),
        "net": Decimal("348.00"),
        "tax": Decimal("66.12"),
        "gross": Decimal("414.12"),
        "lines": [
            {
                "description": f"Team licences 2026-10 for {workspace_name}",
                "quantity": "12",
                "unit_price": "29.00",
                "amount": "348.00",
            }
        ],
        "seller": seller_snapshot(rules),
        "rules_sha256": rules.sha256,
        **fields,
    }
    invoice = Invoice(**values)
    session.add(invoice)
    session.commit()
    return invoice


def cli(app, *args: str):
    return app.test_cli_runner().invoke(args=["billing", *args])


def pdftotext(data: bytes, tmp_path: Path) -> str:
    """The PDF's text in layout order, whitespace collapsed (wrapped lines join with a space)."""
    source = tmp_path / f"{hashlib.sha256(data).hexdigest()}.pdf"
    source.write_bytes(data)
    text = subprocess.run(
        ["pdftotext", "-layout", "-enc", "UTF-8", str(source), "-"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return " ".join(text.split())


def stored(app, number: str) -> Invoice:
    session = session_of(app)
    session.expire_all()
    return session.scalars(select(Invoice).where(Invoice.number == number)).one()


def stored_bytes(app, number: str) -> bytes | None:
    return session_of(app).scalar(select(Invoice.pdf).where(Invoice.number == number))


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[str]]]:
    """A server on 127.0.0.1 that records every request it gets: (base url, paths)."""
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


# The document ------------------------------------------------------------------


def test_pdf_shows_the_invoice_and_downloads_byte_identical(app, tmp_path):
    original = add_invoice(app, 1)
    add_invoice(
        app,
        2,
        kind="credit_note",
        credits_invoice_id=original.id,
        reason="Twelve teams billed, eleven were active",
        net=Decimal("-348.00"),
        tax=Decimal("-66.12"),
        gross=Decimal("-414.12"),
        lines=[
            {
                "description": "Credit for invoice 2026-00001",
                "quantity": "12",
                "unit_price": "-29.00",
                "amount": "-348.00",
            }
        ],
    )

    result = cli(app, "render-pending", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "rendered: 2, failed: 0" in result.output
    assert "rendered: 0, failed: 0" in cli(app, "render-pending").output

    output = tmp_path / "out" / "invoice.pdf"
    output.parent.mkdir()
    result = cli(app, "invoice-pdf", "2026-00001", "--output", str(output))
    assert result.exit_code == 0, result.output
    data = output.read_bytes()
    assert hashlib.sha256(data).hexdigest() == stored(app, "2026-00001").pdf_sha256
    assert [p.name for p in output.parent.iterdir()] == ["invoice.pdf"]

    text = pdftotext(data, tmp_path)
    for expected in (
        "Invoice",
        "2026-00001",
        "Wolkenwerk Software GmbH",
        "Königstraße 12",
        "DE136695976",
        MUELLER,
        "ws-1",
        "Invoice date 1 Nov 2026",  # 23:30 UTC on 31 October is 1 November in Berlin
        "Service period 1 Oct 2026 to 31 Oct 2026",
        "Team licences",
        "12 €29.00 €348.00",
        "VAT 19% €66.12",
        "€414.12",
    ):
        assert expected in text, expected

    credit = pdftotext(stored_bytes(app, "2026-00002"), tmp_path)
    for expected in (
        "Credit note",
        "2026-00002",
        "This credit note cancels invoice 2026-00001 of 1 Nov 2026.",
        "Reason: Twelve teams billed, eleven were active",
        "-€414.12",
    ):
        assert expected in credit, expected


def test_invoice_pdf_refuses_unknown_and_unrendered_invoices(app, tmp_path):
    add_invoice(app, 1)
    output = tmp_path / "invoice.pdf"

    unknown = cli(app, "invoice-pdf", "2026-99999", "--output", str(output))
    assert unknown.exit_code == 1
    assert "no invoice numbered '2026-99999'" in unknown.output

    pending = cli(app, "invoice-pdf", "2026-00001", "--output", str(output))
    assert pending.exit_code == 1
    assert "not rendered yet" in pending.output
    assert "render-pending" in pending.output
    assert list(tmp_path.iterdir()) == []


# Hostile names -------------------------------------------------------------------


def test_hostile_workspace_names_leak_and_fetch_nothing(app, tmp_path, http_server):
    url, requests = http_server
    fetching = f'<img src="{url}/img.png"><link rel=stylesheet href="{url}/style.css">'
    names = [META_AND_IFRAME, SCRIPT, fetching]
    for seq, name in enumerate(names, start=1):
        add_invoice(app, seq, workspace_name=name)

    result = cli(app, "render-pending", "--workers", "2")
    assert result.exit_code == 0, result.output

    assert requests == []
    for seq, name in enumerate(names, start=1):
        text = pdftotext(stored_bytes(app, f"2026-{seq:05d}"), tmp_path)
        assert " ".join(name.split()) in text
        assert "root:x:0:0" not in text
        assert text.count("INJECTED") == text.count("document.write('INJECTED')")


def test_renderer_contains_raw_hostile_html_too(tmp_path, http_server):
    """Defence in depth: even HTML that escaped nothing reads no file and fetches nothing.

    The control run (plain wkhtmltopdf, no options) proves that the server
    would have seen the fetches.
    """
    url, requests = http_server
    html = (
        f'<html><head><meta charset="utf-8"><link rel="stylesheet" href="{url}/style.css">'
        f'</head><body><p>Raw</p>{META_AND_IFRAME}{SCRIPT}<img src="{url}/img.png">'
        "</body></html>"
    )
    renderer = PdfRenderer.from_config({}, workers=1)
    try:
        text = pdftotext(renderer.render_html(html), tmp_path)
    except PdfRenderError as exc:  # a blocked load aborts the render: also fine
        text = str(exc)
    assert requests == []
    assert "root:x:0:0" not in text
    assert "INJECTED" not in text

    control = [renderer.wkhtmltopdf, "--quiet", "-", "-"]
    subprocess.run(control, input=html.encode(), capture_output=True, check=False)
    assert set(requests) == {"/img.png", "/style.css"}  # QtWebKit sometimes fetches twice


def test_meta_tags_cannot_become_wkhtmltopdf_options():
    """pdfkit's default prefix reads the option out of the HTML (CVE-2025-26240); ours cannot."""
    html = '<meta name="pdfkit-enable-local-file-access" content="">'
    renderer = PdfRenderer.from_config({}, workers=1)
    default = pdfkit.configuration(wkhtmltopdf=renderer.wkhtmltopdf)
    assert (
        "--enable-local-file-access"
        in pdfkit.PDFKit(html, "string", configuration=default).command()
    )
    command = renderer.command(html)
    assert "--enable-local-file-access" not in command
    for option in ("--disable-javascript", "--disable-local-file-access", "--proxy"):
        assert option in command


# Failure and recovery --------------------------------------------------------------


def test_renderer_failure_is_recorded_and_the_next_run_recovers(app, tmp_path):
    add_invoice(app, 1)
    add_invoice(app, 2)

    app.config["BILLING_WKHTMLTOPDF"] = script(
        tmp_path, "broken", "cat >/dev/null; echo 'renderer broke' >&2; exit 1"
    )
    result = cli(app, "render-pending", "--workers", "2")
    assert result.exit_code == 1
    assert "rendered: 0, failed: 2" in result.output
    assert "2026-00001: wkhtmltopdf exited with status 1; stderr: renderer broke" in result.output
    first = stored(app, "2026-00001")
    assert (first.pdf, first.pdf_sha256, first.pdf_attempts) == (None, None, 1)
    assert "renderer broke" in first.pdf_error

    pidfile = tmp_path / "sleeper.pid"
    app.config["BILLING_WKHTMLTOPDF"] = script(
        tmp_path, "hangs", f"sleep 60 & echo $! > {pidfile}; wait"
    )
    app.config["BILLING_PDF_TIMEOUT"] = 0.5
    started = time.monotonic()
    result = cli(app, "render-pending", "--workers", "1")
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert "did not finish within 0.5 s and was killed" in result.output
    assert stored(app, "2026-00002").pdf_attempts == 2
    assert_gone(int(pidfile.read_text()))

    refused = cli(app, "invoice-pdf", "2026-00001", "--output", str(tmp_path / "x.pdf"))
    assert "failed 2 times, last error: wkhtmltopdf did not finish" in refused.output

    app.config["BILLING_WKHTMLTOPDF"] = shutil.which("wkhtmltopdf")
    app.config["BILLING_PDF_TIMEOUT"] = 30
    result = cli(app, "render-pending")
    assert result.exit_code == 0, result.output
    assert "rendered: 2, failed: 0" in result.output
    recovered = stored(app, "2026-00001")
    assert recovered.pdf_error is None
    assert recovered.pdf_attempts == 2
    assert hashlib.sha256(stored_bytes(app, "2026-00001")).hexdigest() == recovered.pdf_sha256
    assert "2026-00001" in pdftotext(stored_bytes(app, "2026-00001"), tmp_path)


def test_render_pending_refuses_a_renderer_that_is_not_there(app, tmp_path):
    """A configuration mistake is not the invoices' fault: no attempt is counted."""
    add_invoice(app, 1)
    app.config["BILLING_WKHTMLTOPDF"] = str(tmp_path / "no-such-wkhtmltopdf")
    result = cli(app, "render-pending")
    assert result.exit_code == 1
    assert "no-such-wkhtmltopdf' is not an executable file" in result.output
    assert stored(app, "2026-00001").pdf_attempts == 0


def assert_gone(pid: int) -> None:
    """The wrapper's grandchild was killed with the process group, not left running."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(FileNotFoundError):
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":  # killed, not reaped
                return
        time.sleep(0.05)
    pytest.fail(f"process {pid} outlived the renderer's timeout")


def test_render_pending_uses_one_select_and_one_update_per_batch(app):
    for seq in range(1, 6):
        add_invoice(app, seq)
    app.config["BILLING_WKHTMLTOPDF"] = shutil.which("wkhtmltopdf")
    session = session_of(app)
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement.split()[0].upper())

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        summary = render_pending(session, PdfRenderer.from_config(app.config, workers=1), batch=2)
    finally:
        event.remove(engine, "before_cursor_execute", record)

    assert (summary.rendered, summary.failures) == (5, ())
    assert statements.count("SELECT") == 1
    assert statements.count("UPDATE") == 3
    session.expire_all()
    assert session.scalar(select(Invoice.id).where(Invoice.pdf_sha256.is_(None))) is None


# Determinism -------------------------------------------------------------------------


def test_parallel_rendering_gives_the_bytes_of_sequential_rendering(tmp_path):
    """wkhtmltopdf output is reproducible once the creation date is pinned and QHash seeded.

    Without that, the creation date (second resolution) and the order of the
    embedded fonts (Qt's per-process random hash seed) differ between runs.
    """
    documents = [sample_document(n) for n in range(1, 7)]
    sequential = PdfRenderer.from_config({}, workers=1).render_many(documents)
    parallel = PdfRenderer.from_config({}, workers=3).render_many(documents)
    assert all(isinstance(pdf, bytes) for pdf in sequential)
    assert parallel == sequential
    assert len(set(sequential)) == len(documents)
    assert f"Team {MUELLER} 6" in pdftotext(parallel[5], tmp_path)
